package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"time"
)

// validateDebugAddr accepts an empty address (the endpoint is off) or a
// loopback host:port: the profiles show memory contents and cost CPU, so
// they are never offered to the network.
func validateDebugAddr(addr string) error {
	if addr == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--debug-addr %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--debug-addr %q: the host must be a loopback address such as 127.0.0.1 (Try: --debug-addr 127.0.0.1:6060)", addr)
	}
	return nil
}

// debugHandler serves Go's runtime profiles under /debug/pprof/ on its own
// mux, so nothing else is reachable on the debug port and the API's mux
// never carries them.
func debugHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// heapProfileRate is the sampling rate of heap profiles the runtime started
// with (512 KiB, or GODEBUG=memprofilerate's), read before main turns
// profiling off for every command.
var heapProfileRate = runtime.MemProfileRate

// listenDebug binds --debug-addr (nil when it is empty) and turns heap
// profiling on, so the heap profile it serves covers the allocations from
// here on: before the store, the API and the pods start.
func listenDebug(addr string) (net.Listener, error) {
	if addr == "" {
		return nil, nil
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on --debug-addr %s: %w", addr, unwrapSyscall(err))
	}
	runtime.MemProfileRate = heapProfileRate
	return lis, nil
}

// serveDebug serves debugHandler on lis until ctx ends.
func serveDebug(ctx context.Context, lis net.Listener, log *slog.Logger) error {
	srv := &http.Server{
		Handler:           debugHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.With("component", "debug").Handler(), slog.LevelDebug),
	}
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	defer stop()
	log.Info("serving runtime profiles", "url", "http://"+lis.Addr().String()+"/debug/pprof/")
	if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve debug endpoint: %w", err)
	}
	return nil
}

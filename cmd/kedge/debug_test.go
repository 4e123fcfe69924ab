package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestValidateDebugAddr(t *testing.T) {
	for addr, ok := range map[string]bool{
		"": true, "127.0.0.1:6060": true, "localhost:6060": true, "[::1]:0": true,
		"0.0.0.0:6060": false, ":6060": false, "10.0.0.5:6060": false, "box:6060": false, "127.0.0.1": false,
	} {
		if err := validateDebugAddr(addr); (err == nil) != ok {
			t.Errorf("validateDebugAddr(%q) = %v, want ok=%v", addr, err, ok)
		}
	}
	if _, err := parseServerFlags([]string{"--advertise-address", "127.0.0.1", "--debug-addr", ":6060"}, io.Discard); err == nil || !strings.Contains(err.Error(), "--debug-addr") {
		t.Errorf("a non-loopback --debug-addr was accepted: %v", err)
	}
	c, err := parseServerFlags([]string{"--advertise-address", "127.0.0.1"}, io.Discard)
	if err != nil || c.DebugAddr != "" {
		t.Errorf("default debug address %q (%v), want off", c.DebugAddr, err)
	}
}

func TestServeDebugServesProfilesUntilCancelled(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveDebug(ctx, lis, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	base := "http://" + lis.Addr().String()
	for path, want := range map[string]int{"/debug/pprof/goroutine?debug=1": 200, "/debug/pprof/cmdline": 200, "/": 404, "/api": 404} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serveDebug: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("serveDebug did not return after its context ended")
	}
}

func TestListenDebugTurnsHeapProfilingOn(t *testing.T) {
	saved := runtime.MemProfileRate
	t.Cleanup(func() { runtime.MemProfileRate = saved })
	runtime.MemProfileRate = 0 // as main leaves it
	lis, err := listenDebug("")
	if lis != nil || err != nil || runtime.MemProfileRate != 0 {
		t.Fatalf("without --debug-addr: listener %v, error %v, heap profile rate %d; want none, none, 0", lis, err, runtime.MemProfileRate)
	}
	if lis, err = listenDebug("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	if runtime.MemProfileRate != heapProfileRate {
		t.Errorf("heap profile rate %d with --debug-addr, want %d", runtime.MemProfileRate, heapProfileRate)
	}
	if _, err := listenDebug(lis.Addr().String()); err == nil || !strings.Contains(err.Error(), "--debug-addr") {
		t.Errorf("a busy --debug-addr: %v, want an error naming the flag", err)
	}
}

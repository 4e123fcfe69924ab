// Package kubeletapi serves the agent's HTTPS endpoint, the part of
// kubelet's API that kedge's API server calls: container logs for
// `kubectl logs`, exec, attach and port-forward sessions, and a health check.
//
//	GET /containerLogs/{namespace}/{pod}/{container}?follow=&tailLines=&timestamps=&previous=&sinceSeconds=&sinceTime=&limitBytes=
//	GET|POST /exec/{namespace}/{pod}/{container}?command=&input=&output=&error=&tty=
//	GET|POST /attach/{namespace}/{pod}/{container}?input=&output=&error=&tty=
//	GET|POST /portForward/{namespace}/{pod}
//	GET /healthz
//
// exec and attach upgrade to SPDY/3.1 (remote command protocols v1–v5) or to
// a WebSocket (channel.k8s.io v1–v4 and v5.channel.k8s.io); port-forward to
// SPDY/3.1 (portforward.k8s.io), directly or tunnelled in a WebSocket.
//
// Every request must carry "Authorization: Bearer <token>" with the token the
// API server was given for kubelets; anything else gets 401.
package kubeletapi

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"kedge.dev/kedge/runtime/logs"
)

// ErrNotFound is wrapped by a LogLocator for an unknown pod or container;
// the endpoint answers 404.
var ErrNotFound = errors.New("not found")

// ErrInvalidConfig is returned by New for an unusable Config.
var ErrInvalidConfig = errors.New("invalid kubelet endpoint config")

// LogTarget is where a container's log is, and whether it may still grow.
type LogTarget struct {
	// Path is the CRI-format log file.
	Path string
	// Done is closed when the container instance exits, which ends a follow;
	// an already closed channel for an exited instance.
	Done <-chan struct{}
}

// LogLocator finds container logs. The agent implements it. ContainerLog
// must not block beyond looking the container up; the Done channel it
// returns must be released when ctx ends.
type LogLocator interface {
	ContainerLog(ctx context.Context, namespace, pod, container string, previous bool) (LogTarget, error)
}

// Config configures the endpoint.
type Config struct {
	// Addr is the host:port to listen on; default ":10250".
	Addr string
	// CertFile and KeyFile are the PEM serving certificate (signed by the
	// cluster CA) and its key. Required by Run.
	CertFile, KeyFile string
	// Token is the bearer token callers must present. Required.
	Token string
	// Logger is the debug log; default slog.Default().
	Logger *slog.Logger
	// Streams serves exec, attach and port-forward; nil answers 404 there.
	Streams Streamer
}

// Validate reports whether cfg can work.
func (cfg Config) Validate() error {
	if cfg.Token == "" {
		return fmt.Errorf("%w: Token is empty", ErrInvalidConfig)
	}
	if cfg.CertFile == "" || cfg.KeyFile == "" {
		return fmt.Errorf("%w: CertFile and KeyFile are required", ErrInvalidConfig)
	}
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		return fmt.Errorf("%w: Addr %q: %v", ErrInvalidConfig, cfg.Addr, err)
	}
	return nil
}

// Server is the kubelet endpoint. Run serves it; Close stops it.
type Server struct {
	cfg     Config
	logs    LogLocator
	streams Streamer
	log     *slog.Logger

	mu     sync.Mutex
	srv    *http.Server
	closed bool
}

// New validates cfg and builds the endpoint; it does not listen yet.
func New(cfg Config, locator LogLocator) (*Server, error) {
	if cfg.Addr == "" {
		cfg.Addr = ":10250"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Server{cfg: cfg, logs: locator, streams: cfg.Streams, log: cfg.Logger.With("component", "kubelet-endpoint")}, nil
}

// Handler returns the authenticated HTTP handler (for tests and embedding).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", s.containerLogs)
	if s.streams != nil {
		// POST for SPDY, GET for WebSocket upgrades.
		for _, m := range []string{"GET", "POST"} {
			mux.HandleFunc(m+" /exec/{namespace}/{pod}/{container}", s.exec)
			mux.HandleFunc(m+" /attach/{namespace}/{pod}/{container}", s.attach)
			mux.HandleFunc(m+" /portForward/{namespace}/{pod}", s.portForward)
		}
	}
	return s.authenticate(mux)
}

// Run listens on Addr with TLS and serves until ctx ends or Close is called.
func (s *Server) Run(ctx context.Context) error {
	cert, err := tls.LoadX509KeyPair(s.cfg.CertFile, s.cfg.KeyFile)
	if err != nil {
		return fmt.Errorf("load kubelet serving certificate: %w", err)
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Addr, err)
	}
	srv := &http.Server{
		Handler:           s.Handler(),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.srv = srv
	s.mu.Unlock()
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	s.log.Info("serving kubelet endpoint", "addr", ln.Addr().String())
	if err := srv.ServeTLS(ln, "", ""); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve kubelet endpoint: %w", err)
	}
	return nil
}

// Close stops the server and ends open requests (log follows included). It
// is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.srv == nil {
		return nil
	}
	err := s.srv.Close()
	s.srv = nil
	return err
}

func (s *Server) authenticate(next http.Handler) http.Handler {
	want := []byte("Bearer " + s.cfg.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="kedge-agent"`)
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// containerLogs serves one container's log like kubelet's /containerLogs.
func (s *Server) containerLogs(w http.ResponseWriter, r *http.Request) {
	opts, previous, err := parseLogOptions(r, time.Now())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ns, pod, ctr := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
	target, err := s.logs.ContainerLog(r.Context(), ns, pod, ctr, previous)
	if errors.Is(err, ErrNotFound) {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	opts.Done = target.Done
	w.Header().Set("Content-Type", "text/plain")
	out := &flushWriter{w: w}
	if f, ok := w.(http.Flusher); ok && opts.Follow {
		// Send the headers now: a follow may print nothing for a long
		// time, and the client waits for them before reading.
		w.WriteHeader(http.StatusOK)
		f.Flush()
		out.flush, out.wrote = f, true
	}
	if err := logs.ReadLogs(r.Context(), target.Path, opts, out, out); err != nil && r.Context().Err() == nil {
		if !out.wrote {
			http.Error(w, fmt.Sprintf("read log of %s/%s/%s: %v", ns, pod, ctr, err), http.StatusInternalServerError)
			return
		}
		s.log.Debug("log stream ended", "pod", ns+"/"+pod, "container", ctr, "err", err)
	}
}

// parseLogOptions reads kubelet's log query parameters.
func parseLogOptions(r *http.Request, now time.Time) (opts logs.ReadOptions, previous bool, err error) {
	q := r.URL.Query()
	boolParam := func(name string) (bool, error) {
		v := q.Get(name)
		if v == "" {
			return false, nil
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return false, fmt.Errorf("invalid %s %q", name, v)
		}
		return b, nil
	}
	intParam := func(name string) (int64, bool, error) {
		v := q.Get(name)
		if v == "" {
			return 0, false, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0, false, fmt.Errorf("invalid %s %q", name, v)
		}
		return n, true, nil
	}
	if opts.Follow, err = boolParam("follow"); err != nil {
		return opts, false, err
	}
	if opts.Timestamps, err = boolParam("timestamps"); err != nil {
		return opts, false, err
	}
	if previous, err = boolParam("previous"); err != nil {
		return opts, false, err
	}
	opts.TailLines = -1
	if n, ok, err := intParam("tailLines"); err != nil {
		return opts, false, err
	} else if ok {
		opts.TailLines = n
	}
	if n, _, err := intParam("limitBytes"); err != nil {
		return opts, false, err
	} else {
		opts.LimitBytes = n
	}
	if n, ok, err := intParam("sinceSeconds"); err != nil {
		return opts, false, err
	} else if ok {
		opts.Since = now.Add(-time.Duration(n) * time.Second)
	}
	if v := q.Get("sinceTime"); v != "" {
		if !opts.Since.IsZero() {
			return opts, false, errors.New("at most one of sinceSeconds or sinceTime may be specified")
		}
		t, err := time.Parse(time.RFC3339, strings.TrimSpace(v))
		if err != nil {
			return opts, false, fmt.Errorf("invalid sinceTime %q", v)
		}
		opts.Since = t
	}
	return opts, previous, nil
}

// flushWriter serialises writes of stdout and stderr to the response and
// flushes each one when following, so lines reach the client as they come.
type flushWriter struct {
	mu    sync.Mutex
	w     io.Writer
	flush http.Flusher
	wrote bool
}

func (f *flushWriter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.w.Write(p)
	f.wrote = f.wrote || n > 0
	if f.flush != nil {
		f.flush.Flush()
	}
	return n, err
}

// Package server is kedge's control plane on one node: the Kubernetes API
// over HTTPS (server/api with server/registry and server/openapi) on top of
// a raftstore.Store, and the control loops (scheduler, namespace
// controller) that act through that API. cmd/kedge builds the Store and the
// PKI, hands them over in Config, and runs the Server beside the node's
// agent.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/version"

	"kedge.dev/kedge/client"
	"kedge.dev/kedge/client/record"
	"kedge.dev/kedge/raftstore"
	"kedge.dev/kedge/server/api"
	"kedge.dev/kedge/server/auth"
	"kedge.dev/kedge/server/controller"
	"kedge.dev/kedge/server/openapi"
	"kedge.dev/kedge/server/pki"
	"kedge.dev/kedge/server/registry"
	"kedge.dev/kedge/server/scheduler"
)

// Config is what the server is built from. cmd/kedge fills it.
type Config struct {
	// Store holds the cluster state. Required.
	Store raftstore.Store
	// Listener accepts the API's connections; opened by the caller so that
	// a busy port is reported before anything else starts. Required.
	Listener net.Listener
	// ServingCert is the API's TLS certificate, signed by CA. Required.
	ServingCert tls.Certificate
	// CA is the cluster CA; the server trusts it for kubelet endpoints.
	CA *pki.CA
	// Tokens authenticate clients and the server's own calls. Required.
	Tokens *auth.Tokens
	// Version is what /version reports (GitVersion like v1.34.2+kedge-x).
	Version version.Info
	// ShutdownGrace bounds how long in-flight requests may finish at stop.
	ShutdownGrace time.Duration
	// Logger is required.
	Logger *slog.Logger
	// Handlers are served beside the Kubernetes API, by path prefix (the
	// cluster join and membership endpoints). Optional.
	Handlers map[string]http.Handler
	// Leadership gates the control loops: they run only while it reports
	// this server as the raft leader. nil means always (tests, one server).
	Leadership Leadership
}

// Leadership tells whether this server leads the cluster (raftkv.Store
// has it): leader is true only once the leader applied its log, changed is
// closed at the next change.
type Leadership interface {
	Leadership() (leader bool, changed <-chan struct{})
}

// Validate reports what is missing.
func (c Config) Validate() error {
	var errs []error
	if c.Store == nil {
		errs = append(errs, errors.New("Store is required"))
	}
	if c.Listener == nil {
		errs = append(errs, errors.New("Listener is required"))
	}
	if len(c.ServingCert.Certificate) == 0 {
		errs = append(errs, errors.New("ServingCert is required"))
	}
	if c.CA == nil || c.Tokens == nil || c.Logger == nil {
		errs = append(errs, errors.New("CA, Tokens and Logger are required"))
	}
	if c.Version.GitVersion == "" {
		errs = append(errs, errors.New("Version.GitVersion is required"))
	}
	return errors.Join(errs...)
}

// Server serves the API and runs the control loops.
type Server struct {
	cfg  Config
	api  *api.Server
	http *http.Server
	log  *slog.Logger
}

// New builds the server; nothing runs until Run.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("server config: %w", err)
	}
	if cfg.ShutdownGrace == 0 {
		cfg.ShutdownGrace = 10 * time.Second
	}
	resources := registry.Core()
	docs, err := openapi.Embedded()
	if err != nil {
		return nil, err
	}
	acfg := api.DefaultConfig()
	acfg.Store = cfg.Store
	acfg.Resources = resources
	acfg.Authenticator = tokenAuthenticator{cfg.Tokens}
	acfg.OpenAPI = docs
	acfg.NodeProxy.Client = &http.Client{Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: cfg.CA.Pool(), MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: 10 * time.Second,
		DisableCompression:  true,
	}}
	acfg.NodeProxy.Token = cfg.Tokens.Get(auth.Kubelet)
	acfg.Version = cfg.Version
	acfg.Logger = cfg.Logger
	a, err := api.New(acfg)
	if err != nil {
		return nil, fmt.Errorf("build API server: %w", err)
	}
	s := &Server{cfg: cfg, api: a, log: cfg.Logger}
	var handler http.Handler = a
	if len(cfg.Handlers) > 0 {
		handler = prefixRouter{routes: cfg.Handlers, next: a}
	}
	s.http = &http.Server{
		Handler:           handler,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cfg.ServingCert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}},
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.With("component", "http").Handler(), slog.LevelDebug),
	}
	return s, nil
}

// Run serves until ctx ends, then shuts down gracefully.
func (s *Server) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		err := s.http.ServeTLS(s.cfg.Listener, "", "")
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("serve API: %w", err)
	})
	g.Go(func() error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownGrace)
		defer cancel()
		// Watches never end by themselves: close them with the API first.
		s.api.Close()
		if err := s.http.Shutdown(sctx); err != nil {
			s.http.Close()
		}
		return nil
	})
	g.Go(func() error { return s.runControllers(ctx) })
	return g.Wait()
}

// LoopbackConfig is how components in this process reach the API.
func (s *Server) LoopbackConfig(token string) client.Config {
	return client.Config{
		Server:    "https://" + loopbackAddr(s.cfg.Listener.Addr()),
		Token:     token,
		CAData:    s.cfg.CA.CertPEM,
		UserAgent: "kedge/" + runtime.GOOS,
	}
}

// runControllers runs the control loops while this server leads: they
// start once leadership is established (after raft's barrier) and stop
// when it is lost (STYLE #14), so exactly one server acts at a time.
func (s *Server) runControllers(ctx context.Context) error {
	if s.cfg.Leadership == nil {
		return s.runLeaderControllers(ctx)
	}
	return runWhileLeading(ctx, s.cfg.Leadership, s.runLeaderControllers, s.log)
}

// runWhileLeading runs work whenever l reports leadership, cancels it when
// the leadership changes, and returns when ctx ends. A work that fails
// while leading is logged and started again after a second.
func runWhileLeading(ctx context.Context, l Leadership, work func(context.Context) error, log *slog.Logger) error {
	for {
		leader, changed := l.Leadership()
		if !leader {
			select {
			case <-ctx.Done():
				return nil
			case <-changed:
				continue
			}
		}
		log.Info("starting controllers and scheduler: this server leads")
		lctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- work(lctx) }()
		var err error
		select {
		case <-ctx.Done():
		case <-changed:
		case err = <-done:
			done = nil
		}
		cancel()
		if done != nil {
			err = <-done
		}
		if ctx.Err() != nil {
			return nil
		}
		if err != nil && !errors.Is(err, context.Canceled) {
			log.Error("controllers stopped", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
			continue
		}
		log.Info("controllers and scheduler stopped: leadership changed")
	}
}

// runLeaderControllers runs the control loops until ctx ends.
func (s *Server) runLeaderControllers(ctx context.Context) error {
	c, err := client.New(s.LoopbackConfig(s.cfg.Tokens.Get(auth.Admin)))
	if err != nil {
		return fmt.Errorf("loopback client: %w", err)
	}
	if err := ensureSystemNamespaces(ctx, c); err != nil {
		return err
	}
	rcfg := record.DefaultConfig(scheduler.Name)
	rcfg.Logger = s.log
	rec, err := record.New(rcfg, c)
	if err != nil {
		return fmt.Errorf("event recorder: %w", err)
	}
	var contents []client.Resource
	for _, r := range registry.Core() {
		if r.Namespaced {
			contents = append(contents, client.Resource{Group: r.Group, Version: r.Version, Resource: r.Resource})
		}
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return rec.Run(ctx) })
	g.Go(func() error { return scheduler.New(c, rec, s.log).Run(ctx) })
	g.Go(func() error { return controller.NewNamespaces(c, contents, s.log).Run(ctx) })
	return g.Wait()
}

// loopbackAddr turns a wildcard listen address into one this process can dial.
func loopbackAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// prefixRouter serves routes by path prefix and the rest with next.
type prefixRouter struct {
	routes map[string]http.Handler
	next   http.Handler
}

func (p prefixRouter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for prefix, h := range p.routes {
		if strings.HasPrefix(r.URL.Path, prefix) {
			h.ServeHTTP(w, r)
			return
		}
	}
	p.next.ServeHTTP(w, r)
}

// tokenAuthenticator adapts auth.Tokens to the API's Authenticator.
type tokenAuthenticator struct{ t *auth.Tokens }

func (a tokenAuthenticator) AuthenticateToken(_ context.Context, token string) (api.User, bool) {
	u, ok := a.t.Authenticate(token)
	return api.User{Name: u.Name, Groups: u.Groups}, ok
}

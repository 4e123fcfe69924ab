// Package api serves the Kubernetes REST API over HTTP on top of a
// raftstore.Store: discovery, CRUD, list and watch with Kubernetes'
// resourceVersion semantics, patches, graceful deletion, the status, binding,
// finalize and log subresources, and table output for kubectl.
//
// Per-kind decisions (defaults, validation, printing, field selectors) come
// from server/registry; this package holds the HTTP and storage plumbing that
// calls them. The real kubectl (1.27 and later) and client-go are the clients
// it is built for.
//
// Objects are stored as their JSON under keys laid out by Key; an object's
// metadata.resourceVersion is the store's ModRevision of its key and is never
// stored.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"

	"kedge.dev/kedge/raftstore"
	"kedge.dev/kedge/server/registry"
)

// Config is everything New needs.
type Config struct {
	// Store holds the objects. Required.
	Store raftstore.Store
	// Resources are the kinds served. At least one; (group, resource) unique.
	Resources []registry.Resource
	// Authenticator accepts or rejects bearer tokens. Required.
	Authenticator Authenticator
	// OpenAPI serves /openapi/v2 and /openapi/v3 when not nil; else 404.
	OpenAPI http.Handler
	// NodeProxy reaches kubelet endpoints for pods/log. Its Client is
	// required when a served resource has the "log" subresource.
	NodeProxy NodeProxy
	// Version is what /version reports. GitVersion is required.
	Version version.Info
	// Logger receives debug and error logs. Required.
	Logger *slog.Logger
	// WatchTimeout bounds a watch that sends no timeoutSeconds; the actual
	// bound is jittered between WatchTimeout and twice that so clients do
	// not reconnect in step. Default 30 minutes.
	WatchTimeout time.Duration
	// BookmarkInterval is how often a watch with allowWatchBookmarks sends a
	// BOOKMARK event. Default 1 minute.
	BookmarkInterval time.Duration
	// MaxBodyBytes caps request bodies (413 beyond). Default 3 MiB, as
	// Kubernetes.
	MaxBodyBytes int64
	// Now is the clock used for timestamps. Default time.Now.
	Now func() time.Time
}

// DefaultConfig returns a Config with every optional field set to its
// default; the caller fills in the required ones.
func DefaultConfig() Config {
	return Config{
		NodeProxy:        NodeProxy{BaseURL: KubeletBaseURL},
		WatchTimeout:     30 * time.Minute,
		BookmarkInterval: time.Minute,
		MaxBodyBytes:     3 << 20,
		Now:              time.Now,
	}
}

// knownSubresources are the subresources this package knows how to serve.
var knownSubresources = map[string]bool{"status": true, "log": true, "binding": true, "finalize": true,
	"exec": true, "attach": true, "portforward": true}

// Validate reports the first problem with the Config.
func (c Config) Validate() error {
	switch {
	case c.Store == nil:
		return errors.New("api config: Store is required")
	case c.Authenticator == nil:
		return errors.New("api config: Authenticator is required")
	case c.Logger == nil:
		return errors.New("api config: Logger is required")
	case c.Version.GitVersion == "":
		return errors.New("api config: Version.GitVersion is required")
	case len(c.Resources) == 0:
		return errors.New("api config: at least one Resource is required")
	case c.WatchTimeout <= 0:
		return errors.New("api config: WatchTimeout must be positive (default 30m)")
	case c.BookmarkInterval <= 0:
		return errors.New("api config: BookmarkInterval must be positive (default 1m)")
	case c.MaxBodyBytes <= 0:
		return errors.New("api config: MaxBodyBytes must be positive (default 3MiB)")
	case c.Now == nil:
		return errors.New("api config: Now is required (default time.Now)")
	}
	seen := map[schema.GroupResource]bool{}
	for _, r := range c.Resources {
		gr := schema.GroupResource{Group: r.Group, Resource: r.Resource}
		if r.Resource == "" || r.Version == "" || r.Kind == "" {
			return fmt.Errorf("api config: resource %q: Resource, Version and Kind are required", gr)
		}
		if seen[gr] {
			return fmt.Errorf("api config: resource %q listed twice", gr)
		}
		seen[gr] = true
		if r.New == nil || r.NewList == nil || r.Strategy == nil {
			return fmt.Errorf("api config: resource %q: New, NewList and Strategy are required", gr)
		}
		for _, sub := range r.Subresources {
			if !knownSubresources[sub] {
				return fmt.Errorf("api config: resource %q: subresource %q is not served by this package", gr, sub)
			}
			if (sub == "log" || streamSubresources[sub]) && (c.NodeProxy.Client == nil || c.NodeProxy.BaseURL == nil) {
				return fmt.Errorf("api config: resource %q serves %s: NodeProxy.Client and NodeProxy.BaseURL are required", gr, sub)
			}
		}
	}
	return nil
}

// Server is the API server's HTTP handler. It is safe for concurrent use.
// It starts no goroutines of its own beyond those of the requests it
// serves; Close ends the long-running ones (watches, log streams).
type Server struct {
	cfg       Config
	log       *slog.Logger
	resources map[schema.GroupVersion]map[string]*resource
	groups    []string // non-core groups, sorted
	// namespaces and nodes are the core kinds other handlers look up, nil
	// when not served.
	namespaces *resource
	nodes      *resource
	// encoded tracks the stored values this server encoded (encoded.go).
	encoded *encodedHere

	ctx    context.Context
	cancel context.CancelFunc
}

var _ http.Handler = (*Server)(nil)

// New builds a Server from a valid Config.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:       cfg,
		log:       cfg.Logger.With("component", "api"),
		resources: map[schema.GroupVersion]map[string]*resource{},
		encoded:   newEncodedHere(),
	}
	groups := map[string]bool{}
	for _, r := range cfg.Resources {
		res, err := newResource(r)
		if err != nil {
			return nil, err
		}
		gv := res.gvk.GroupVersion()
		if s.resources[gv] == nil {
			s.resources[gv] = map[string]*resource{}
		}
		s.resources[gv][r.Resource] = res
		if r.Group != "" {
			groups[r.Group] = true
		}
		if r.Group == "" && r.Resource == "namespaces" {
			s.namespaces = res
		}
		if r.Group == "" && r.Resource == "nodes" {
			s.nodes = res
		}
	}
	for g := range groups {
		s.groups = append(s.groups, g)
	}
	sort.Strings(s.groups)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Close ends running watches and log streams. It is idempotent; the Server
// still answers short requests afterwards.
func (s *Server) Close() error {
	s.cancel()
	return nil
}

// ServeHTTP routes one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/healthz", "/livez", "/readyz":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok"))
		return
	case "/version", "/version/":
		s.writeObject(w, r, http.StatusOK, &s.cfg.Version)
		return
	}
	user, err := s.authenticate(r)
	if err != nil {
		s.writeError(w, r, err, schema.GroupResource{}, "")
		return
	}
	r = r.WithContext(withUser(r.Context(), user))

	path := strings.TrimSuffix(r.URL.Path, "/")
	switch {
	case path == "/openapi" || strings.HasPrefix(path, "/openapi/"):
		if s.cfg.OpenAPI == nil {
			s.writeError(w, r, errNotServed(), schema.GroupResource{}, "")
			return
		}
		s.cfg.OpenAPI.ServeHTTP(w, r)
	case path == "/api" || path == "/apis" || strings.HasPrefix(path, "/api/") || strings.HasPrefix(path, "/apis/"):
		s.serveAPI(w, r, path)
	default:
		s.writeError(w, r, errNotServed(), schema.GroupResource{}, "")
	}
}

// requestContext is the context for a long-running request: it ends with
// the client's request or with Close, whichever comes first.
func (s *Server) requestContext(r *http.Request) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(r.Context())
	stop := context.AfterFunc(s.ctx, cancel)
	return ctx, func() { stop(); cancel() }
}

// nodeFromStore reads a Node by name.
func (s *Server) nodeFromStore(ctx context.Context, name string) (*corev1.Node, error) {
	if s.nodes == nil {
		return nil, errors.New("nodes are not served by this API server")
	}
	obj, _, err := s.getObject(ctx, s.nodes, "", name)
	if err != nil {
		return nil, err
	}
	node, ok := obj.(*corev1.Node)
	if !ok {
		return nil, fmt.Errorf("nodes resource holds %T, not *v1.Node", obj)
	}
	return node, nil
}

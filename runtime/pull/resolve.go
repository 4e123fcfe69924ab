package pull

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"kedge.dev/kedge/runtime/images"
)

// Errors checked with errors.Is. Each is joined with the registry's own
// error, whose text the caller shows to the user.
var (
	// ErrNotFound: the registry has no such repository or tag (404).
	ErrNotFound = errors.New("image not found in registry")
	// ErrUnauthorized: the registry refused the credentials or demands some
	// (401, 403).
	ErrUnauthorized = errors.New("registry denied access")
	// ErrPlatform: the image is not built for the node's platform.
	ErrPlatform = errors.New("image platform mismatch")
	// ErrRegistry: any other failure talking to the registry (5xx,
	// network, TLS, malformed manifest).
	ErrRegistry = errors.New("registry error")
)

// Resolved is an image found in a registry for the node's platform.
type Resolved struct {
	// Name is the normalized reference asked for
	// ("docker.io/library/nginx:latest").
	Name string
	// Endpoint is the host that served it (a mirror or the registry).
	Endpoint string
	// Image is lazy: its layers are fetched when read, and verified
	// against their digests by the reader.
	Image v1.Image
	// ManifestDigest is the digest of the platform manifest; Manifest is
	// its raw content.
	ManifestDigest string
	Manifest       []byte
}

// Resolver resolves references against registries. It is safe for
// concurrent use and holds no state besides its HTTP transports.
type Resolver struct {
	cfg        Config
	log        *slog.Logger
	transports map[string]http.RoundTripper // per configured host
	base       http.RoundTripper
}

// New builds a Resolver.
func New(cfg Config) (*Resolver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	base := cfg.Transport
	if base == nil {
		base = http.DefaultTransport.(*http.Transport).Clone()
	}
	r := &Resolver{cfg: cfg, log: log.With("component", "pull"), transports: map[string]http.RoundTripper{}, base: base}
	for host, hc := range cfg.Registries.Configs {
		if hc.TLS == nil {
			continue
		}
		t := base.Clone()
		t.TLSClientConfig = hc.TLS.Clone()
		r.transports[host] = &forceHTTPS{host: host, next: t}
	}
	return r, nil
}

// forceHTTPS makes requests to host use HTTPS: go-containerregistry picks
// plain HTTP for loopback and private addresses, but a host with TLS
// settings speaks TLS.
type forceHTTPS struct {
	host string
	next http.RoundTripper
}

func (f *forceHTTPS) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && req.URL.Host == f.host {
		req = req.Clone(req.Context())
		req.URL.Scheme = "https"
	}
	return f.next.RoundTrip(req)
}

// endpoint is one place to look for an image.
type endpoint struct {
	host, scheme string
}

// endpoints lists where to look for images of registry host: its mirrors,
// the "*" mirrors, then the registry itself.
func (r *Resolver) endpoints(host string) []endpoint {
	var out []endpoint
	for _, key := range []string{host, "*"} {
		for _, ep := range r.cfg.Registries.Mirrors[key].Endpoints {
			h, s, err := parseEndpoint(ep)
			if err == nil && h != host {
				out = append(out, endpoint{host: h, scheme: s})
			}
		}
	}
	return append(out, endpoint{host: host})
}

// Resolve finds ref for the node's platform, trying the mirrors of its
// registry first. creds, from the pod's pull secrets, win over the node's
// configured credentials for the same host. The error of the registry
// itself is returned when no endpoint has the image; a platform mismatch
// is returned at once.
func (r *Resolver) Resolve(ctx context.Context, ref string, creds Credentials) (Resolved, error) {
	norm, err := images.Normalize(ref)
	if err != nil {
		return Resolved{}, err
	}
	host, rest, _ := strings.Cut(norm, "/")
	var last error
	for _, ep := range r.endpoints(host) {
		res, err := r.resolveAt(ctx, ep, rest, creds)
		if err == nil {
			res.Name = norm
			r.log.Debug("image resolved", "ref", norm, "endpoint", ep.host, "digest", res.ManifestDigest)
			return res, nil
		}
		if errors.Is(err, ErrPlatform) || ctx.Err() != nil {
			return Resolved{}, fmt.Errorf("resolve %s: %w", norm, err)
		}
		r.log.Debug("endpoint failed", "ref", norm, "endpoint", ep.host, "err", err)
		last = err
	}
	return Resolved{}, fmt.Errorf("resolve %s: %w", norm, last)
}

func (r *Resolver) resolveAt(ctx context.Context, ep endpoint, rest string, creds Credentials) (Resolved, error) {
	var nopts []name.Option
	if ep.scheme == "http" {
		nopts = append(nopts, name.Insecure)
	}
	nref, err := name.ParseReference(ep.host+"/"+rest, nopts...)
	if err != nil {
		return Resolved{}, fmt.Errorf("%w: %s: %w", ErrRegistry, ep.host, err)
	}
	tr := r.base
	if t, ok := r.transports[ep.host]; ok {
		tr = t
	} else if ep.scheme == "https" {
		tr = &forceHTTPS{host: ep.host, next: r.base}
	}
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithTransport(tr),
		remote.WithAuth(r.authFor(ep.host, creds)),
		remote.WithRetryBackoff(remote.Backoff{Duration: r.cfg.RetryBackoff, Factor: 3, Jitter: 0.1, Steps: 3}),
		remote.WithUserAgent("kedge"),
	}
	desc, err := remote.Get(nref, opts...)
	if err != nil {
		return Resolved{}, classify(ep.host, err)
	}
	img, err := r.platformImage(ep.host, desc)
	if err != nil {
		return Resolved{}, err
	}
	raw, err := img.RawManifest()
	if err != nil {
		return Resolved{}, classify(ep.host, err)
	}
	d, err := img.Digest()
	if err != nil {
		return Resolved{}, classify(ep.host, err)
	}
	return Resolved{Endpoint: ep.host, Image: img, ManifestDigest: d.String(), Manifest: raw}, nil
}

// platformImage picks the node's image from an index, or checks a single
// image's platform.
func (r *Resolver) platformImage(host string, desc *remote.Descriptor) (v1.Image, error) {
	want := v1.Platform{OS: r.cfg.OS, Architecture: r.cfg.Architecture, Variant: r.cfg.Variant}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, classify(host, err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, classify(host, err)
		}
		var have []string
		for _, m := range im.Manifests {
			if m.Platform == nil {
				continue
			}
			if m.Platform.Satisfies(want) && m.MediaType.IsImage() {
				img, err := idx.Image(m.Digest)
				if err != nil {
					return nil, classify(host, err)
				}
				return img, nil
			}
			have = append(have, platformString(*m.Platform))
		}
		return nil, fmt.Errorf("%w: image index has no manifest for node platform %s (it has %s)",
			ErrPlatform, platformString(want), strings.Join(have, ", "))
	}
	img, err := desc.Image()
	if err != nil {
		return nil, classify(host, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, classify(host, err)
	}
	got := v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
	if cf.OS == "" && cf.Architecture == "" {
		return img, nil // some hand-made images name no platform; let them run
	}
	if got.OS != want.OS || got.Architecture != want.Architecture ||
		(want.Variant != "" && got.Variant != "" && got.Variant != want.Variant) {
		return nil, fmt.Errorf("%w: image platform %s does not match node %s", ErrPlatform, platformString(got), platformString(want))
	}
	return img, nil
}

func platformString(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// authFor returns the credential for host: the pod's, then the node's,
// then anonymous.
func (r *Resolver) authFor(host string, creds Credentials) authn.Authenticator {
	a, ok := creds[host]
	if !ok {
		hc := r.cfg.Registries.Configs[host]
		if hc.Auth == nil {
			return authn.Anonymous
		}
		a = *hc.Auth
	}
	return authn.FromConfig(authn.AuthConfig{Username: a.Username, Password: a.Password, Auth: a.Auth,
		IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken})
}

// classify joins err with the sentinel for its kind.
func classify(host string, err error) error {
	var te *transport.Error
	if errors.As(err, &te) {
		switch {
		case te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden:
			return fmt.Errorf("%w: %s: %w", ErrUnauthorized, host, err)
		case te.StatusCode == http.StatusNotFound:
			return fmt.Errorf("%w: %s: %w", ErrNotFound, host, err)
		}
		for _, d := range te.Errors {
			switch d.Code {
			case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode:
				return fmt.Errorf("%w: %s: %w", ErrNotFound, host, err)
			case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
				return fmt.Errorf("%w: %s: %w", ErrUnauthorized, host, err)
			}
		}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%w: %s: %w", ErrRegistry, host, err)
}

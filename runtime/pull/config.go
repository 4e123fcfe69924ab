package pull

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	goruntime "runtime"
	"strings"
	"time"
)

// Registries is the node's registry configuration, the typed form of k3s'
// registries.yaml (cmd/kedge reads the file and the TLS files it names).
type Registries struct {
	// Mirrors maps a registry host as it appears in image names
	// ("docker.io", "registry.k8s.io", or "*" for every registry) to the
	// endpoints tried first, in order. The registry itself is tried last.
	Mirrors map[string]Mirror
	// Configs maps a host ("host:port" as in image names or mirror
	// endpoints) to its credentials and TLS settings.
	Configs map[string]HostConfig
}

// Mirror lists endpoints serving a registry's content.
type Mirror struct {
	// Endpoints are URLs ("https://mirror.local:5000", "http://10.0.0.5")
	// or bare hosts (HTTPS, or HTTP for loopback and private addresses as
	// go-containerregistry decides).
	Endpoints []string
}

// HostConfig holds the settings of one registry host.
type HostConfig struct {
	// Auth is used for this host unless a pod's pull secret names it too.
	Auth *Auth
	// TLS, when set, is the client TLS configuration for this host (CA,
	// client certificate, insecure_skip_verify). Setting it also makes
	// kedge speak HTTPS to the host even where go-containerregistry would
	// guess plain HTTP (loopback and private addresses).
	TLS *tls.Config
}

// Auth is a registry credential, as in a docker config.json.
type Auth struct {
	Username, Password string
	// Auth is base64("user:password"), used when Username is empty.
	Auth string
	// IdentityToken is an OAuth2 refresh token; RegistryToken a bearer
	// token sent as is.
	IdentityToken, RegistryToken string
}

// Credentials maps a registry host to the credential to use there; it is
// what a pod's imagePullSecrets give.
type Credentials map[string]Auth

// Config configures a Resolver.
type Config struct {
	// Registries are the node's mirrors and host settings.
	Registries Registries
	// OS, Architecture and Variant are the node's platform; an index is
	// resolved to the manifest for it. Default: the running binary's.
	OS, Architecture, Variant string
	// Transport is the base HTTP transport; default a clone of
	// http.DefaultTransport. TLS settings of Registries.Configs are
	// applied on top of it per host.
	Transport *http.Transport
	// RetryBackoff is the first wait between retries of a temporary
	// registry error (5xx, 429); each later wait is three times longer,
	// three tries in all. Default 1s.
	RetryBackoff time.Duration
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns a configuration for the running platform without
// mirrors.
func DefaultConfig() Config {
	c := Config{OS: "linux", Architecture: goruntime.GOARCH, RetryBackoff: time.Second}
	if c.Architecture == "arm" {
		c.Variant = "v7" // kedge's 32-bit ARM build is armv7 (GOARM=7)
	}
	return c
}

// Validate reports the first problem of the configuration.
func (c Config) Validate() error {
	if c.OS == "" || c.Architecture == "" {
		return errors.New("pull config: OS and Architecture are required")
	}
	for host, m := range c.Registries.Mirrors {
		if host == "" {
			return errors.New("pull config: mirror for an empty registry name")
		}
		for _, ep := range m.Endpoints {
			if _, _, err := parseEndpoint(ep); err != nil {
				return fmt.Errorf("pull config: mirror of %s: %w", host, err)
			}
		}
	}
	return nil
}

// parseEndpoint returns the host and scheme ("" when the URL named none)
// of a mirror endpoint. A path other than "/" or "/v2" is not supported.
func parseEndpoint(ep string) (host, scheme string, err error) {
	if !strings.Contains(ep, "://") {
		ep = "//" + ep
	}
	u, err := url.Parse(ep)
	if err != nil || u.Host == "" {
		return "", "", fmt.Errorf("endpoint %q is not a URL or host[:port]", ep)
	}
	if p := strings.TrimSuffix(u.Path, "/"); p != "" && p != "/v2" {
		return "", "", fmt.Errorf("endpoint %q: paths are not supported", ep)
	}
	switch u.Scheme {
	case "", "http", "https":
	default:
		return "", "", fmt.Errorf("endpoint %q: scheme must be http or https", ep)
	}
	return u.Host, u.Scheme, nil
}

package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"sigs.k8s.io/yaml"

	"kedge.dev/kedge/runtime/pull"
)

// registriesFile is k3s' registries.yaml: mirrors per registry and, per
// host, credentials and TLS files.
//
//	mirrors:
//	  docker.io:
//	    endpoint: ["https://mirror.local:5000"]
//	configs:
//	  "mirror.local:5000":
//	    auth: {username: u, password: p}
//	    tls: {ca_file: /etc/kedge/ca.crt, cert_file: ..., key_file: ..., insecure_skip_verify: false}
type registriesFile struct {
	Mirrors map[string]struct {
		Endpoint []string `json:"endpoint"`
	} `json:"mirrors"`
	Configs map[string]struct {
		Auth *struct {
			Username      string `json:"username"`
			Password      string `json:"password"`
			Auth          string `json:"auth"`
			IdentityToken string `json:"identitytoken"`
		} `json:"auth"`
		TLS *struct {
			CAFile             string `json:"ca_file"`
			CertFile           string `json:"cert_file"`
			KeyFile            string `json:"key_file"`
			InsecureSkipVerify bool   `json:"insecure_skip_verify"`
		} `json:"tls"`
	} `json:"configs"`
}

// registriesPath returns the registries.yaml to use: the one given, else
// <data-dir>/registries.yaml, else /etc/kedge/registries.yaml, else ""
// (none: anonymous pulls straight from each registry).
func registriesPath(given, dataDir string) string {
	if given != "" {
		return given
	}
	for _, p := range []string{filepath.Join(dataDir, "registries.yaml"), "/etc/kedge/registries.yaml"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// loadRegistries reads a registries.yaml and the TLS files it names. An
// empty path gives an empty configuration.
func loadRegistries(path string) (pull.Registries, error) {
	var out pull.Registries
	if path == "" {
		return out, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return out, fmt.Errorf("read registries file: %w", err)
	}
	var f registriesFile
	if err := yaml.UnmarshalStrict(b, &f); err != nil {
		return out, fmt.Errorf("registries file %s: %w", path, err)
	}
	out.Mirrors = map[string]pull.Mirror{}
	for host, m := range f.Mirrors {
		out.Mirrors[host] = pull.Mirror{Endpoints: m.Endpoint}
	}
	out.Configs = map[string]pull.HostConfig{}
	for host, c := range f.Configs {
		var hc pull.HostConfig
		if c.Auth != nil {
			hc.Auth = &pull.Auth{Username: c.Auth.Username, Password: c.Auth.Password, Auth: c.Auth.Auth, IdentityToken: c.Auth.IdentityToken}
		}
		if c.TLS != nil {
			tc := &tls.Config{InsecureSkipVerify: c.TLS.InsecureSkipVerify} //nolint:gosec // the operator asked for it
			if c.TLS.CAFile != "" {
				pem, err := os.ReadFile(c.TLS.CAFile)
				if err != nil {
					return out, fmt.Errorf("registries file %s: %s: ca_file: %w", path, host, err)
				}
				tc.RootCAs = x509.NewCertPool()
				if !tc.RootCAs.AppendCertsFromPEM(pem) {
					return out, fmt.Errorf("registries file %s: %s: ca_file %s holds no PEM certificate", path, host, c.TLS.CAFile)
				}
			}
			if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
				return out, fmt.Errorf("registries file %s: %s: cert_file and key_file go together", path, host)
			}
			if c.TLS.CertFile != "" {
				cert, err := tls.LoadX509KeyPair(c.TLS.CertFile, c.TLS.KeyFile)
				if err != nil {
					return out, fmt.Errorf("registries file %s: %s: client certificate: %w", path, host, err)
				}
				tc.Certificates = []tls.Certificate{cert}
			}
			hc.TLS = tc
		}
		out.Configs[host] = hc
	}
	cfg := pull.DefaultConfig()
	cfg.Registries = out
	if err := cfg.Validate(); err != nil {
		return out, errors.Join(fmt.Errorf("registries file %s", path), err)
	}
	return out, nil
}

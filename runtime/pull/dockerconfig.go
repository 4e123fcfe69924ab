package pull

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
)

// ParseDockerConfigJSON reads the content of a kubernetes.io/dockerconfigjson
// secret (or a docker config.json) into credentials keyed by registry host.
// Keys such as "https://index.docker.io/v1/" become "docker.io".
func ParseDockerConfigJSON(b []byte) (Credentials, error) {
	var f struct {
		Auths map[string]struct {
			Username      string `json:"username"`
			Password      string `json:"password"`
			Auth          string `json:"auth"`
			IdentityToken string `json:"identitytoken"`
			RegistryToken string `json:"registrytoken"`
		} `json:"auths"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("parse docker config: %w", err)
	}
	out := Credentials{}
	for key, a := range f.Auths {
		c := Auth{Username: a.Username, Password: a.Password, IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken}
		if c.Username == "" && a.Auth != "" {
			dec, err := base64.StdEncoding.DecodeString(a.Auth)
			if err != nil {
				return nil, fmt.Errorf("parse docker config: auth of %s is not base64: %w", key, err)
			}
			u, p, ok := strings.Cut(string(dec), ":")
			if !ok {
				return nil, fmt.Errorf("parse docker config: auth of %s is not user:password", key)
			}
			c.Username, c.Password = u, p
		}
		out[RegistryHost(key)] = c
	}
	return out, nil
}

// RegistryHost reduces a docker config key or registry URL to the host as
// image names spell it ("https://index.docker.io/v1/" → "docker.io").
func RegistryHost(key string) string {
	h := key
	if _, after, ok := strings.Cut(h, "://"); ok {
		h = after
	}
	h, _, _ = strings.Cut(h, "/")
	switch h {
	case "index.docker.io", "registry-1.docker.io":
		return "docker.io"
	}
	return h
}

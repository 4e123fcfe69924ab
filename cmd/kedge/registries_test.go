package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadRegistries(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.crt")
	os.WriteFile(ca, selfSignedPEM(t), 0o600)
	tests := []struct {
		name, yaml, err string
	}{
		{name: "mirrors and configs", yaml: `
mirrors:
  docker.io:
    endpoint: ["http://127.0.0.1:5000", "mirror.local"]
configs:
  "127.0.0.1:5000":
    auth: {username: alice, password: s3cret}
    tls: {ca_file: ` + ca + `, insecure_skip_verify: false}
`},
		{name: "unknown field", yaml: "mirrors: {docker.io: {endpoints: [x]}}", err: "unknown field"},
		{name: "bad endpoint", yaml: "mirrors: {docker.io: {endpoint: [\"ftp://x\"]}}", err: "scheme must be http or https"},
		{name: "missing CA", yaml: "configs: {x: {tls: {ca_file: /nonexistent}}}", err: "ca_file"},
		{name: "cert without key", yaml: "configs: {x: {tls: {cert_file: " + ca + "}}}", err: "go together"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "registries.yaml")
			os.WriteFile(p, []byte(tt.yaml), 0o600)
			r, err := loadRegistries(p)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Mirrors["docker.io"].Endpoints; len(got) != 2 || got[0] != "http://127.0.0.1:5000" {
				t.Errorf("mirrors %+v", r.Mirrors)
			}
			hc := r.Configs["127.0.0.1:5000"]
			if hc.Auth == nil || hc.Auth.Username != "alice" || hc.Auth.Password != "s3cret" || hc.TLS == nil || hc.TLS.RootCAs == nil {
				t.Errorf("config %+v", hc)
			}
		})
	}
	if r, err := loadRegistries(""); err != nil || len(r.Mirrors) != 0 {
		t.Errorf("no file: %+v %v", r, err)
	}
}

func TestRegistriesPath(t *testing.T) {
	dir := t.TempDir()
	if got := registriesPath("/x.yaml", dir); got != "/x.yaml" {
		t.Errorf("given path: %q", got)
	}
	os.WriteFile(filepath.Join(dir, "registries.yaml"), nil, 0o600)
	if got := registriesPath("", dir); got != filepath.Join(dir, "registries.yaml") {
		t.Errorf("data dir file: %q", got)
	}
}

// selfSignedPEM returns a throwaway CA certificate in PEM.
func selfSignedPEM(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

package kubeletapi

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeLocator serves two log files of container "c" of pod default/web.
type fakeLocator struct {
	current, previous string
	done              chan struct{}
	gotPrevious       bool
}

func (f *fakeLocator) ContainerLog(_ context.Context, ns, pod, ctr string, previous bool) (LogTarget, error) {
	if ns != "default" || pod != "web" || ctr != "c" {
		return LogTarget{}, fmt.Errorf("container %s/%s/%s: %w", ns, pod, ctr, ErrNotFound)
	}
	f.gotPrevious = previous
	if previous {
		closed := make(chan struct{})
		close(closed)
		return LogTarget{Path: f.previous, Done: closed}, nil
	}
	return LogTarget{Path: f.current, Done: f.done}, nil
}

func writeLog(t testing.TB, path string, lines ...string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, l := range lines {
		if _, err := io.WriteString(f, l+"\n"); err != nil {
			t.Fatal(err)
		}
	}
}

func newTestServer(t *testing.T) (*httptest.Server, *fakeLocator) {
	t.Helper()
	dir := t.TempDir()
	loc := &fakeLocator{current: filepath.Join(dir, "1.log"), previous: filepath.Join(dir, "0.log"), done: make(chan struct{})}
	writeLog(t, loc.previous, "2026-01-01T00:00:00.000000000Z stdout F old run")
	writeLog(t, loc.current,
		"2026-01-01T00:00:01.000000000Z stdout F one",
		"2026-01-01T00:00:02.000000000Z stderr F two",
		"2026-01-01T00:00:03.000000000Z stdout P thr",
		"2026-01-01T00:00:03.000000000Z stdout F ee")
	s, err := New(Config{Token: "secret", CertFile: "x", KeyFile: "y"}, loc)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv, loc
}

func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestContainerLogs(t *testing.T) {
	srv, loc := newTestServer(t)
	close(loc.done) // the container has exited: follow ends at end of file
	tests := []struct {
		name     string
		path     string
		token    string
		wantCode int
		wantBody string
	}{
		{"no token", "/containerLogs/default/web/c", "", 401, "Unauthorized\n"},
		{"wrong token", "/containerLogs/default/web/c", "nope", 401, "Unauthorized\n"},
		{"healthz", "/healthz", "secret", 200, "ok"},
		{"all", "/containerLogs/default/web/c", "secret", 200, "one\ntwo\nthree\n"},
		{"tail counts file lines, partials too", "/containerLogs/default/web/c?tailLines=2", "secret", 200, "three\n"},
		{"timestamps", "/containerLogs/default/web/c?previous=true&timestamps=true", "secret", 200, "2026-01-01T00:00:00Z old run\n"},
		{"since time", "/containerLogs/default/web/c?sinceTime=2026-01-01T00:00:02Z", "secret", 200, "two\nthree\n"},
		{"limit bytes", "/containerLogs/default/web/c?limitBytes=5", "secret", 200, "one\nt"},
		{"previous", "/containerLogs/default/web/c?previous=true", "secret", 200, "old run\n"},
		{"follow of exited container ends", "/containerLogs/default/web/c?follow=true", "secret", 200, "one\ntwo\nthree\n"},
		{"unknown container", "/containerLogs/default/web/x", "secret", 404, ""},
		{"bad tailLines", "/containerLogs/default/web/c?tailLines=x", "secret", 400, ""},
		{"both since", "/containerLogs/default/web/c?sinceSeconds=1&sinceTime=2026-01-01T00:00:02Z", "secret", 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := get(t, srv.URL+tt.path, tt.token)
			if code != tt.wantCode {
				t.Fatalf("code %d, want %d (%s)", code, tt.wantCode, body)
			}
			if tt.wantBody != "" && body != tt.wantBody {
				t.Errorf("body %q, want %q", body, tt.wantBody)
			}
		})
	}
}

func TestFollowStreamsUntilExit(t *testing.T) {
	srv, loc := newTestServer(t)
	// No tailLines=0: the response headers are flushed before the reader has
	// found the end of the file, so a line written right after Do returns
	// could count as "already there". Reading the whole log first and only
	// then appending makes the test independent of that timing.
	req, _ := http.NewRequest("GET", srv.URL+"/containerLogs/default/web/c?follow=true", nil)
	req.Header.Set("Authorization", "Bearer secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	for _, want := range []string{"one", "two", "three"} {
		select {
		case l := <-lines:
			if l != want {
				t.Fatalf("got %q, want %q", l, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("existing lines not streamed")
		}
	}
	writeLog(t, loc.current, "2026-01-01T00:00:04.000000000Z stdout F live")
	select {
	case l := <-lines:
		if l != "live" {
			t.Fatalf("got %q", l)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("followed line not streamed")
	}
	writeLog(t, loc.current, "2026-01-01T00:00:05.000000000Z stdout F last words")
	close(loc.done)
	var rest []string
	timeout := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				if strings.Join(rest, "|") != "last words" {
					t.Fatalf("rest %q", rest)
				}
				return
			}
			rest = append(rest, l)
		case <-timeout:
			t.Fatal("follow did not end when the container exited")
		}
	}
}

// TestRunTLS serves over TLS from certificate files and stops on Close.
func TestRunTLS(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM := selfSigned(t)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, certPEM, 0o600)
	os.WriteFile(keyFile, keyPEM, 0o600)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s, err := New(Config{Addr: addr, Token: "secret", CertFile: certFile, KeyFile: keyFile}, &fakeLocator{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- s.Run(context.Background()) }()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	var resp *http.Response
	for i := 0; i < 100; i++ {
		req, _ := http.NewRequest("GET", "https://"+addr+"/healthz", nil)
		req.Header.Set("Authorization", "Bearer secret")
		if resp, err = c.Do(req); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz %d", resp.StatusCode)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestValidate(t *testing.T) {
	for _, cfg := range []Config{{CertFile: "a", KeyFile: "b"}, {Token: "t"}, {Token: "t", CertFile: "a", KeyFile: "b", Addr: "nope"}} {
		if _, err := New(cfg, &fakeLocator{}); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("New(%+v) = %v", cfg, err)
		}
	}
}

func selfSigned(t testing.TB) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kedge-agent"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

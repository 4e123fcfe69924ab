// Package pulltest runs a real OCI registry (Debian's docker-registry) for
// tests: on a loopback address and a free port, optionally with htpasswd
// users and TLS from a CA made for the test, and pushes images to it with
// go-containerregistry. The registry process belongs to the test and is
// stopped by t.Cleanup.
package pulltest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/crypto/bcrypt"

	"kedge.dev/kedge/test/images/imagebuild"
)

// Binary is Debian's registry (package docker-registry).
const Binary = "/usr/bin/docker-registry"

// Options choose how the registry runs.
type Options struct {
	// IP to listen on; default 127.0.0.1.
	IP string
	// Users, when set, turns on htpasswd (basic) authentication.
	Users map[string]string
	// TLS serves HTTPS with a certificate from a CA made for the test.
	TLS bool
}

// Registry is a running registry.
type Registry struct {
	// Host is "ip:port", as image names spell it.
	Host string
	// Dir is the registry's storage root (blobs can be corrupted there).
	Dir string
	// CAFile is the PEM CA certificate when TLS is on; CAPool holds it.
	CAFile string
	CAPool *x509.CertPool
	opts   Options
}

// Start runs docker-registry until the test ends. It fails the test when
// the binary is missing (scripts/install-deps.sh installs it).
func Start(t testing.TB, opts Options) *Registry {
	t.Helper()
	if _, err := os.Stat(Binary); err != nil {
		t.Fatalf("%s is missing (apt-get install docker-registry; scripts/install-deps.sh does it): %v", Binary, err)
	}
	if opts.IP == "" {
		opts.IP = "127.0.0.1"
	}
	dir := t.TempDir()
	r := &Registry{Dir: filepath.Join(dir, "storage"), opts: opts}
	r.Host = net.JoinHostPort(opts.IP, freePort(t, opts.IP))
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, r.Dir, r.Host)
	if opts.TLS {
		certFile, keyFile := r.makeCerts(t, dir)
		cfg += fmt.Sprintf("  tls:\n    certificate: %s\n    key: %s\n", certFile, keyFile)
	}
	if len(opts.Users) > 0 {
		var b strings.Builder
		for u, p := range opts.Users {
			h, err := bcrypt.GenerateFromPassword([]byte(p), bcrypt.MinCost)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%s:%s\n", u, h)
		}
		pw := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(pw, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg += fmt.Sprintf("auth:\n  htpasswd:\n    realm: kedge-test\n    path: %s\n", pw)
	}
	cfgFile := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(Binary, "serve", cfgFile)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start docker-registry: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	if err := r.waitReady(exited); err != nil {
		t.Fatalf("docker-registry did not come up: %v\n%s", err, out.String())
	}
	return r
}

func freePort(t testing.TB, ip string) string {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// URL returns the registry's base URL.
func (r *Registry) URL() string {
	if r.opts.TLS {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

// Transport returns an HTTP transport trusting the registry.
func (r *Registry) Transport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if r.CAPool != nil {
		t.TLSClientConfig = &tls.Config{RootCAs: r.CAPool}
	}
	return t
}

func (r *Registry) waitReady(exited chan struct{}) error {
	c := &http.Client{Transport: r.Transport(), Timeout: time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-exited:
			return fmt.Errorf("docker-registry exited")
		default:
		}
		resp, err := c.Get(r.URL() + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
			err = fmt.Errorf("GET /v2/: %s", resp.Status)
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// makeCerts writes a CA and a server certificate for the registry's IP.
func (r *Registry) makeCerts(t testing.TB, dir string) (certFile, keyFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kedge test registry CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: r.opts.IP},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP(r.opts.IP)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	r.CAFile = filepath.Join(dir, "ca.crt")
	certFile, keyFile = filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	for f, b := range map[string][]byte{
		r.CAFile: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		certFile: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyFile:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r.CAPool = x509.NewCertPool()
	r.CAPool.AddCert(ca)
	return certFile, keyFile
}

// Push writes img to repoTag ("app:1" or "team/app:1") on the registry,
// as user (from Options.Users) when given.
func (r *Registry) Push(t testing.TB, repoTag string, img v1.Image, user string) name.Reference {
	t.Helper()
	ref := r.ref(t, repoTag)
	if err := remote.Write(ref, img, r.remoteOpts(user)...); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	return ref
}

// PushIndex writes an image index to repoTag.
func (r *Registry) PushIndex(t testing.TB, repoTag string, idx v1.ImageIndex, user string) name.Reference {
	t.Helper()
	ref := r.ref(t, repoTag)
	if err := remote.WriteIndex(ref, idx, r.remoteOpts(user)...); err != nil {
		t.Fatalf("push index %s: %v", ref, err)
	}
	return ref
}

func (r *Registry) ref(t testing.TB, repoTag string) name.Reference {
	t.Helper()
	var nopts []name.Option
	if !r.opts.TLS {
		nopts = append(nopts, name.Insecure)
	}
	ref, err := name.ParseReference(r.Host+"/"+repoTag, nopts...)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

func (r *Registry) remoteOpts(user string) []remote.Option {
	opts := []remote.Option{remote.WithTransport(&schemeFix{tls: r.opts.TLS, next: r.Transport()})}
	if user != "" {
		opts = append(opts, remote.WithAuth(&authn.Basic{Username: user, Password: r.opts.Users[user]}))
	}
	return opts
}

// schemeFix speaks HTTPS to a TLS registry on a loopback address, where
// go-containerregistry would pick HTTP.
type schemeFix struct {
	tls  bool
	next http.RoundTripper
}

func (s *schemeFix) RoundTrip(req *http.Request) (*http.Response, error) {
	if s.tls && req.URL.Scheme == "http" {
		req = req.Clone(req.Context())
		req.URL.Scheme = "https"
	}
	return s.next.RoundTrip(req)
}

// BlobPath returns where the registry stores blob digest ("sha256:...").
func (r *Registry) BlobPath(digest string) string {
	h := strings.TrimPrefix(digest, "sha256:")
	return filepath.Join(r.Dir, "docker", "registry", "v2", "blobs", "sha256", h[:2], h, "data")
}

// ShellImage returns a busybox shell image (Debian's busybox-static) with
// an extra layer holding /marker with the given content, so that callers
// get distinct images sharing the base layer.
func ShellImage(t testing.TB, marker string) v1.Image {
	t.Helper()
	base, err := imagebuild.BusyboxFiles("/usr/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	baseTar, err := imagebuild.LayerTar(base)
	if err != nil {
		t.Fatal(err)
	}
	top, err := imagebuild.LayerTar([]imagebuild.File{{Path: "marker", Body: []byte(marker)}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := imagebuild.Build(nil, imagebuild.Config{Cmd: []string{"sh"}, Env: imagebuild.DefaultEnv}, baseTar, top)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "img.tar")
	w, err := os.Create(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := imagebuild.WriteDockerArchive(w, b); err != nil {
		t.Fatal(err)
	}
	w.Close()
	img, err := tarball.ImageFromPath(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// WithPlatform returns img with its config claiming os/arch.
func WithPlatform(t testing.TB, img v1.Image, os, arch string) v1.Image {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = os, arch
	out, err := mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Index returns an index of the images, each annotated with the platform
// its config names.
func Index(t testing.TB, imgs ...v1.Image) v1.ImageIndex {
	t.Helper()
	var adds []mutate.IndexAddendum
	for _, img := range imgs {
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: cf.OS, Architecture: cf.Architecture}}})
	}
	return mutate.AppendManifests(empty.Index, adds...)
}

// Proxy runs a reverse proxy in front of the registry on another loopback
// port; fault, when it returns a status code other than 0, answers the
// request with that code instead of forwarding it (a registry that fails or
// refuses). It returns the proxy's host.
func (r *Registry) Proxy(t testing.TB, fault func(*http.Request) int) string {
	t.Helper()
	target, _ := url.Parse(r.URL())
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = r.Transport()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if code := fault(req); code != 0 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			fmt.Fprintf(w, `{"errors":[{"code":"UNKNOWN","message":"injected failure %d"}]}`, code)
			return
		}
		rp.ServeHTTP(w, req)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"kedge.dev/kedge/raftstore/raftkv"
	"kedge.dev/kedge/server/pki"
)

func TestParseToken(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	tests := []struct {
		token  string
		secret string
		ok     bool
	}{
		{"K10" + hash + "::0123456789abcdef0123", "0123456789abcdef0123", true},
		{" K10" + hash + "::0123456789abcdef0123\n", "0123456789abcdef0123", true},
		{"0123456789abcdef0123", "", false},                       // no CA pin
		{"K10" + hash + "::short", "", false},                     // short secret
		{"K10" + hash[:10] + "::0123456789abcdef0123", "", false}, // short hash
		{"K10" + strings.Repeat("zz", 32) + "::0123456789abcdef0123", "", false},
		{"K10" + hash + "0123456789abcdef0123", "", false}, // no separator
	}
	for _, tt := range tests {
		_, secret, err := ParseToken(tt.token)
		if (err == nil) != tt.ok || secret != tt.secret {
			t.Errorf("ParseToken(%q) = %q, %v; want ok=%v", tt.token, secret, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrBadToken) {
			t.Errorf("ParseToken(%q) error %v is not ErrBadToken", tt.token, err)
		}
	}
}

type fakeMembership struct{ joined []string }

func (f *fakeMembership) Join(_ context.Context, id, addr string) (string, error) {
	f.joined = append(f.joined, id+"@"+addr)
	return "voter", nil
}
func (f *fakeMembership) Remove(_ context.Context, id string) error {
	if id != "dead" {
		return raftkv.ErrUnknownServer
	}
	return nil
}
func (f *fakeMembership) Members(context.Context) ([]raftkv.Member, error) {
	return []raftkv.Member{{ID: "a", Suffrage: "voter", Leader: true}}, nil
}

func TestJoinFlow(t *testing.T) {
	dir := t.TempDir()
	ca, err := pki.LoadOrCreateCA(dir, "test-ca")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.EnsureLeaf(dir, "server", pki.LeafSpec{CommonName: "kedge", Server: true, IPs: []net.IP{net.ParseIP("127.0.0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	tokPath := filepath.Join(dir, "join")
	token, err := LoadOrCreateToken(tokPath, ca.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := LoadOrCreateToken(tokPath, ca.CertPEM); err != nil || again != token {
		t.Fatalf("token not stable: %q vs %q, %v", again, token, err)
	}
	other, _ := pki.LoadOrCreateCA(t.TempDir(), "other-ca")
	if _, err := LoadOrCreateToken(tokPath, other.CertPEM); err == nil {
		t.Fatal("a token pinning another CA was accepted")
	}
	_, secret, _ := ParseToken(token)
	mem := &fakeMembership{}
	issue := func(name string, ips []net.IP) ([]byte, []byte, error) {
		return ca.IssueLeaf(name, pki.LeafSpec{CommonName: "system:node:" + name, Server: true, IPs: ips, DNSNames: []string{name}})
	}
	h, err := NewHandler(Config{Membership: mem, JoinSecret: secret, AdminToken: "admin-token-0123456789",
		Bundle:           Bundle{CACert: ca.CertPEM, CAKey: []byte("key"), Tokens: map[string]string{"admin": "x", "node": "node-tok", "kubelet": "kubelet-tok"}},
		IssueKubeletCert: issue, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	defer srv.Close()
	ctx := context.Background()

	// A token pinning another CA stops before the secret is sent.
	badTok, _ := FormatToken(other.CertPEM, secret)
	if _, _, err := Discover(ctx, srv.URL, badTok); !errors.Is(err, ErrCAMismatch) {
		t.Fatalf("Discover with a foreign CA hash: %v, want ErrCAMismatch", err)
	}
	caPEM, c, err := Discover(ctx, srv.URL, token)
	if err != nil {
		t.Fatal(err)
	}
	if string(caPEM) != string(ca.CertPEM) {
		t.Fatal("discovered CA differs")
	}
	b, err := c.Bundle(ctx)
	if err != nil || string(b.CAKey) != "key" || b.Tokens["admin"] != "x" {
		t.Fatalf("bundle = %+v, %v", b, err)
	}
	if suf, err := c.Join(ctx, "n2", "127.0.0.2:6444"); err != nil || suf != "voter" || mem.joined[0] != "n2@127.0.0.2:6444" {
		t.Fatalf("join = %q, %v, %v", suf, err, mem.joined)
	}
	// An agent-only node gets a kubelet certificate for its name and
	// addresses, signed by the cluster CA, and the node and kubelet
	// tokens; never the CA key or the admin token.
	cr, err := c.Agent(ctx, "edge-7", []string{"10.0.0.7"})
	if err != nil {
		t.Fatal(err)
	}
	if cr.NodeToken != "node-tok" || cr.KubeletToken != "kubelet-tok" || string(cr.CACert) != string(ca.CertPEM) {
		t.Fatalf("agent credentials %+v", cr)
	}
	kp, err := tls.X509KeyPair(cr.KubeletCert, cr.KubeletKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(kp.Certificate[0])
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "edge-7", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil ||
		len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.ParseIP("10.0.0.7")) {
		t.Fatalf("kubelet certificate %v %v", leaf.IPAddresses, err)
	}
	for _, bad := range []struct{ name, addr string }{{"Not_A_Name", "10.0.0.8"}, {"edge-8", "nowhere"}} {
		if _, err := c.Agent(ctx, bad.name, []string{bad.addr}); err == nil {
			t.Fatalf("agent %q at %q was accepted", bad.name, bad.addr)
		}
	}
	// The join secret does not list or remove members; a wrong secret
	// gets nothing.
	if _, err := c.Members(ctx); err == nil {
		t.Fatal("members with the join secret succeeded")
	}
	wrong, _ := NewClient(srv.URL, caPEM, "wrong-secret-0123456789")
	if _, err := wrong.Bundle(ctx); err == nil {
		t.Fatal("bundle with a wrong secret succeeded")
	}
	if _, err := wrong.Agent(ctx, "edge-9", nil); err == nil {
		t.Fatal("agent credentials with a wrong secret")
	}
	admin, _ := NewClient(srv.URL, caPEM, "admin-token-0123456789")
	if m, err := admin.Members(ctx); err != nil || len(m) != 1 || !m[0].Leader {
		t.Fatalf("members = %+v, %v", m, err)
	}
	if err := admin.Remove(ctx, "dead"); err != nil {
		t.Fatal(err)
	}
	if err := admin.Remove(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("remove unknown: %v, want ErrNotFound", err)
	}
}

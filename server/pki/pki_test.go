package pki

import (
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"testing"
)

func TestCAPersistsAndSignsLeaves(t *testing.T) {
	dir := t.TempDir()
	ca, err := LoadOrCreateCA(dir, "kedge-ca")
	if err != nil {
		t.Fatal(err)
	}
	again, err := LoadOrCreateCA(dir, "kedge-ca")
	if err != nil {
		t.Fatal(err)
	}
	if !ca.Cert.Equal(again.Cert) {
		t.Fatal("second load created a new CA")
	}
	spec := LeafSpec{CommonName: "kedge", DNSNames: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}, Server: true}
	leaf, err := ca.EnsureLeaf(dir, "server", spec)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(leaf.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "localhost"}); err != nil {
		t.Fatalf("leaf does not verify against CA: %v", err)
	}
	same, err := ca.EnsureLeaf(dir, "server", spec)
	if err != nil {
		t.Fatal(err)
	}
	if string(same.Certificate[0]) != string(leaf.Certificate[0]) {
		t.Fatal("unchanged spec re-issued the certificate")
	}
	spec.DNSNames = append(spec.DNSNames, "box.example")
	grown, err := ca.EnsureLeaf(dir, "server", spec)
	if err != nil {
		t.Fatal(err)
	}
	if string(grown.Certificate[0]) == string(leaf.Certificate[0]) {
		t.Fatal("new SAN did not re-issue the certificate")
	}
	st, err := os.Stat(filepath.Join(dir, "server.key"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v, want 0600", st.Mode().Perm())
	}
}

func TestHalfPresentCAIsAnError(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadOrCreateCA(dir, "kedge-ca"); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "ca.key")); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateCA(dir, "kedge-ca"); err == nil {
		t.Fatal("a CA without its key was accepted or replaced")
	}
}

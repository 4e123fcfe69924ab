package auth

import (
	"os"
	"path/filepath"
	"testing"
)

func TestTokens(t *testing.T) {
	dir := t.TempDir()
	tok, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	again, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{Admin, Node, Kubelet} {
		if tok.Get(name) == "" || tok.Get(name) != again.Get(name) {
			t.Fatalf("token %s not stable across loads", name)
		}
	}
	tests := []struct {
		token string
		user  string
		ok    bool
	}{
		{tok.Get(Admin), "kedge-admin", true},
		{tok.Get(Node), "system:node", true},
		{"", "", false},
		{tok.Get(Admin)[:10], "", false},
		{"wrong-token-wrong-token", "", false},
	}
	for _, tc := range tests {
		u, ok := tok.Authenticate(tc.token)
		if ok != tc.ok || u.Name != tc.user {
			t.Errorf("Authenticate(%q) = %v,%v want %v,%v", tc.token, u.Name, ok, tc.user, tc.ok)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, Admin), []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreate(dir); err == nil {
		t.Fatal("short token accepted")
	}
}

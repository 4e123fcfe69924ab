// Package auth holds the cluster's bearer tokens and turns a presented token
// into a user. Tokens are random, generated at first start and kept one per
// file (mode 0600) so an operator can rotate one by replacing its file.
package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"kedge.dev/kedge/server/pki"
)

// Well-known token names, each a file in the token directory.
const (
	// Admin is the cluster-admin token written into kubeconfig.yaml.
	Admin = "admin"
	// Node is the token agents use to talk to the API server.
	Node = "node"
	// Kubelet is the token the API server presents to agents' kubelet endpoints.
	Kubelet = "kubelet"
)

// User is an authenticated identity.
type User struct {
	Name   string
	Groups []string
}

// identities maps each token file to who holds it, in Kubernetes' terms.
// No authorizer sits behind authentication: every identity may use every
// verb on every kind. In particular the node identity reads the
// imagePullSecrets of the pods it runs (any secret, where Kubernetes' node
// authorizer allows only the secrets of pods bound to that node). Today
// every node is a server whose token directory also holds the admin token
// (tokens/ is the same on all servers), so limiting the node identity would
// protect nothing; a node without the admin token would need Kubernetes'
// rule.
var identities = map[string]User{
	Admin:   {Name: "kedge-admin", Groups: []string{"system:masters", "system:authenticated"}},
	Node:    {Name: "system:node", Groups: []string{"system:nodes", "system:authenticated"}},
	Kubelet: {Name: "system:kube-apiserver", Groups: []string{"system:masters", "system:authenticated"}},
}

// Tokens is the set of tokens loaded from one directory. It is immutable
// after LoadOrCreate and safe for concurrent use.
type Tokens struct {
	byName map[string]string
}

// LoadOrCreate reads the admin, node and kubelet tokens from dir, generating
// any that are missing.
func LoadOrCreate(dir string) (*Tokens, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create token dir: %w", err)
	}
	t := &Tokens{byName: map[string]string{}}
	for name := range identities {
		path := filepath.Join(dir, name)
		b, err := os.ReadFile(path)
		switch {
		case err == nil:
			tok := strings.TrimSpace(string(b))
			if len(tok) < 16 {
				return nil, fmt.Errorf("token file %s holds %d characters; want at least 16 (delete it to generate a new one)", path, len(tok))
			}
			t.byName[name] = tok
		case errors.Is(err, fs.ErrNotExist):
			raw := make([]byte, 24)
			if _, err := rand.Read(raw); err != nil {
				return nil, fmt.Errorf("generate %s token: %w", name, err)
			}
			tok := hex.EncodeToString(raw)
			if err := pki.WriteFileAtomic(path, []byte(tok+"\n"), 0o600); err != nil {
				return nil, err
			}
			t.byName[name] = tok
		default:
			return nil, fmt.Errorf("read token %s: %w", path, err)
		}
	}
	return t, nil
}

// Get returns the token with the given name (Admin, Node or Kubelet).
func (t *Tokens) Get(name string) string { return t.byName[name] }

// Authenticate returns the user holding token. The comparison is constant
// time per token so the response time does not reveal prefixes.
func (t *Tokens) Authenticate(token string) (User, bool) {
	var found User
	ok := false
	for name, want := range t.byName {
		if subtle.ConstantTimeCompare([]byte(token), []byte(want)) == 1 {
			found, ok = identities[name], true
		}
	}
	return found, ok
}

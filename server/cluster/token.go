// Package cluster lets servers join a kedge cluster and lets the operator
// see and change its membership, over the API port:
//
//   - The join token (<data-dir>/tokens/join, made at the first server's
//     first start) has the form K10<sha256 of the CA certificate>::<secret>,
//     as k3s's. A joining server fetches the CA certificate without trust,
//     checks its hash against the token (kubeadm's discovery-token-ca-cert-hash),
//     and from then on verifies the server with that CA.
//   - With the secret it fetches the bundle every server needs (the CA's
//     certificate and key, the cluster's tokens) and asks to be added to raft.
//   - With the admin token the operator lists members and removes dead ones.
//
// The Handler serves these endpoints on any server; Client calls them.
package cluster

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"kedge.dev/kedge/server/pki"
)

// tokenPrefix marks a version-1 join token (the same shape as k3s's).
const tokenPrefix = "K10"

// ErrBadToken: the join token is malformed.
var ErrBadToken = errors.New("malformed join token")

// FormatToken builds the join token for a CA certificate and a secret.
func FormatToken(caCertPEM []byte, secret string) (string, error) {
	h, err := caHash(caCertPEM)
	if err != nil {
		return "", err
	}
	return tokenPrefix + hex.EncodeToString(h) + "::" + secret, nil
}

// ParseToken splits a join token into the CA hash it pins and the secret.
func ParseToken(token string) (caSHA256 []byte, secret string, err error) {
	token = strings.TrimSpace(token)
	rest, ok := strings.CutPrefix(token, tokenPrefix)
	if !ok {
		return nil, "", fmt.Errorf("%w: it does not start with %s; Try: copy it from <data-dir>/tokens/join of a server", ErrBadToken, tokenPrefix)
	}
	hash, secret, ok := strings.Cut(rest, "::")
	if !ok || len(secret) < 16 {
		return nil, "", fmt.Errorf("%w: want K10<ca-sha256>::<secret> with a secret of at least 16 characters", ErrBadToken)
	}
	h, err := hex.DecodeString(hash)
	if err != nil || len(h) != sha256.Size {
		return nil, "", fmt.Errorf("%w: the CA hash is not 64 hex digits", ErrBadToken)
	}
	return h, secret, nil
}

// LoadOrCreateToken returns the join token stored at path, creating it with
// a new random secret when it is missing. A stored token whose CA hash does
// not match caCertPEM is an error (the CA was replaced).
func LoadOrCreateToken(path string, caCertPEM []byte) (string, error) {
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		tok := strings.TrimSpace(string(b))
		h, _, err := ParseToken(tok)
		if err != nil {
			return "", fmt.Errorf("join token %s: %w", path, err)
		}
		want, err := caHash(caCertPEM)
		if err != nil {
			return "", err
		}
		if subtle.ConstantTimeCompare(h, want) != 1 {
			return "", fmt.Errorf("join token %s pins another CA than this server's; Try: delete it to make a new one", path)
		}
		return tok, nil
	case errors.Is(err, fs.ErrNotExist):
		raw := make([]byte, 24)
		if _, err := rand.Read(raw); err != nil {
			return "", fmt.Errorf("generate join secret: %w", err)
		}
		tok, err := FormatToken(caCertPEM, hex.EncodeToString(raw))
		if err != nil {
			return "", err
		}
		if err := pki.WriteFileAtomic(path, []byte(tok+"\n"), 0o600); err != nil {
			return "", err
		}
		return tok, nil
	default:
		return "", fmt.Errorf("read join token: %w", err)
	}
}

// caHash is the SHA-256 of the first certificate's DER in caCertPEM.
func caHash(caCertPEM []byte) ([]byte, error) {
	block, _ := pem.Decode(caCertPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("CA certificate: no PEM certificate found")
	}
	h := sha256.Sum256(block.Bytes)
	return h[:], nil
}

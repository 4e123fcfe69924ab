package content

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const helloDigest = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824" // sha256("hello")

func TestWriteVerifies(t *testing.T) {
	tests := []struct {
		name    string
		digest  string
		content string
		wantErr error
	}{
		{"good", helloDigest, "hello", nil},
		{"mismatch", helloDigest, "hellO", ErrDigestMismatch},
		{"bad digest", "sha256:xyz", "hello", ErrInvalidDigest},
		{"other algorithm", "sha512:" + strings.Repeat("0", 64), "hello", ErrInvalidDigest},
		{"upper hex", strings.ToUpper(helloDigest), "hello", ErrInvalidDigest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			s, err := New(root)
			if err != nil {
				t.Fatal(err)
			}
			created, err := s.Write(tc.digest, strings.NewReader(tc.content))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr != nil {
				assertEmpty(t, filepath.Join(root, "ingest"))
				assertEmpty(t, filepath.Join(root, "blobs", "sha256"))
				return
			}
			if !created || !s.Has(tc.digest) {
				t.Fatal("blob not stored")
			}
			b, err := s.ReadBytes(tc.digest)
			if err != nil || string(b) != tc.content {
				t.Fatalf("read back %q %v", b, err)
			}
			created, err = s.Write(tc.digest, strings.NewReader(tc.content))
			if err != nil || created {
				t.Fatalf("second write: created=%v err=%v", created, err)
			}
			if err := s.Delete(tc.digest); err != nil {
				t.Fatal(err)
			}
			if _, err := s.ReadBytes(tc.digest); !errors.Is(err, ErrNotFound) {
				t.Fatalf("after delete: %v", err)
			}
		})
	}
}

func TestWriteBytes(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d, created, err := s.WriteBytes([]byte("hello"))
	if err != nil || !created || d != helloDigest {
		t.Fatalf("WriteBytes = %s %v %v", d, created, err)
	}
}

func assertEmpty(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		t.Fatalf("%s not empty: %v", dir, ents)
	}
}

package rootfs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"kedge.dev/kedge/runtime/content"
)

// ErrDigestMismatch is wrapped when a layer does not hash to its diff ID;
// it is the content store's error so callers check one sentinel.
var ErrDigestMismatch = content.ErrDigestMismatch

// ErrNotFound is wrapped when a snapshot does not exist.
var ErrNotFound = errors.New("snapshot not found")

// Snapshots keeps unpacked layers under Root/<chain hex>/fs, with a small
// meta.json beside fs. A snapshot directory appears complete or not at all:
// layers are unpacked into a temporary directory that is renamed into place.
// Snapshots is safe for concurrent use; unpacking the same chain ID twice at
// once wastes work but leaves one snapshot.
type Snapshots struct {
	root string
}

// snapshotMeta is stored beside each snapshot's fs directory.
type snapshotMeta struct {
	DiffID string `json:"diffID"`
	Size   int64  `json:"size"` // bytes of regular file content
}

// NewSnapshots returns the snapshot store rooted at root, creating it and
// removing temporary directories left by an interrupted unpack.
func NewSnapshots(root string) (*Snapshots, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("create snapshot store: %w", err)
	}
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("read snapshot store: %w", err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			if err := os.RemoveAll(filepath.Join(root, e.Name())); err != nil {
				return nil, fmt.Errorf("remove stale unpack %s: %w", e.Name(), err)
			}
		}
	}
	return &Snapshots{root: root}, nil
}

// ChainIDs returns the OCI chain IDs of a layer stack given bottom-first
// diff IDs: ChainID(L0) = DiffID(L0), ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)).
func ChainIDs(diffIDs []string) []string {
	out := make([]string, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d
			continue
		}
		sum := sha256.Sum256([]byte(out[i-1] + " " + d))
		out[i] = "sha256:" + hex.EncodeToString(sum[:])
	}
	return out
}

func (s *Snapshots) dir(chainID string) (string, error) {
	h, ok := strings.CutPrefix(chainID, "sha256:")
	if !ok || len(h) != 64 || strings.ContainsAny(h, "/.") {
		return "", fmt.Errorf("invalid chain ID %q", chainID)
	}
	return filepath.Join(s.root, h), nil
}

// Dir returns the directory holding the snapshot's files, for an overlay lowerdir.
func (s *Snapshots) Dir(chainID string) (string, error) {
	d, err := s.dir(chainID)
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "fs"), nil
}

// Has reports whether the snapshot exists.
func (s *Snapshots) Has(chainID string) bool {
	d, err := s.dir(chainID)
	if err != nil {
		return false
	}
	_, err = os.Stat(filepath.Join(d, "meta.json"))
	return err == nil
}

// Size returns the bytes of file content of the snapshot's layer.
func (s *Snapshots) Size(chainID string) (int64, error) {
	d, err := s.dir(chainID)
	if err != nil {
		return 0, err
	}
	b, err := os.ReadFile(filepath.Join(d, "meta.json"))
	if errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("snapshot %s: %w", chainID, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("read snapshot %s: %w", chainID, err)
	}
	var m snapshotMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return 0, fmt.Errorf("read snapshot %s: %w", chainID, err)
	}
	return m.Size, nil
}

// Unpack extracts the uncompressed layer tar r as snapshot chainID,
// verifying that r hashes to diffID. It reports whether the snapshot was
// created (false when it already existed; r is then not read). On error
// nothing is left behind.
func (s *Snapshots) Unpack(ctx context.Context, chainID, diffID string, r io.Reader) (created bool, err error) {
	final, err := s.dir(chainID)
	if err != nil {
		return false, err
	}
	if s.Has(chainID) {
		return false, nil
	}
	tmp, err := os.MkdirTemp(s.root, ".tmp-")
	if err != nil {
		return false, fmt.Errorf("unpack layer %s: %w", diffID, err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	fs := filepath.Join(tmp, "fs")
	if err := os.Mkdir(fs, 0o755); err != nil {
		return false, fmt.Errorf("unpack layer %s: %w", diffID, err)
	}
	h := sha256.New()
	tee := io.TeeReader(r, h)
	size, err := unpackTar(ctx, fs, tee)
	if err != nil {
		return false, fmt.Errorf("unpack layer %s: %w", diffID, err)
	}
	// The diff ID covers the whole tar stream, including end padding that
	// the tar reader does not consume.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return false, fmt.Errorf("unpack layer %s: %w", diffID, err)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != diffID {
		return false, fmt.Errorf("unpack layer %s: %w: content hashes to %s", diffID, ErrDigestMismatch, got)
	}
	meta, err := json.Marshal(snapshotMeta{DiffID: diffID, Size: size})
	if err != nil {
		return false, err
	}
	if err := os.WriteFile(filepath.Join(tmp, "meta.json"), meta, 0o600); err != nil {
		return false, fmt.Errorf("unpack layer %s: %w", diffID, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		if s.Has(chainID) { // a concurrent unpack won
			os.RemoveAll(tmp)
			return false, nil
		}
		return false, fmt.Errorf("unpack layer %s: %w", diffID, err)
	}
	return true, nil
}

// Remove deletes the snapshot; a missing one is not an error. The caller
// must make sure no mounted root filesystem uses it.
func (s *Snapshots) Remove(chainID string) error {
	d, err := s.dir(chainID)
	if err != nil {
		return err
	}
	// Rename first so that a crash mid-delete leaves a .tmp- directory that
	// NewSnapshots cleans rather than a snapshot missing files.
	tmp := filepath.Join(s.root, ".tmp-rm-"+filepath.Base(d))
	if err := os.Rename(d, tmp); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("remove snapshot %s: %w", chainID, err)
	}
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("remove snapshot %s: %w", chainID, err)
	}
	return nil
}

// List returns the chain IDs of all snapshots.
func (s *Snapshots) List() ([]string, error) {
	ents, err := os.ReadDir(s.root)
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	var out []string
	for _, e := range ents {
		if len(e.Name()) == 64 && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, "sha256:"+e.Name())
		}
	}
	return out, nil
}

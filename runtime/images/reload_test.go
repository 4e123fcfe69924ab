package images

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"

	"kedge.dev/kedge/test/images/imagebuild"
)

// TestOtherProcessChangesAreSeen: `kedge image import|pull|rm` work on the
// store's directory while the server's Store is open; the server must see
// their results.
func TestOtherProcessChangesAreSeen(t *testing.T) {
	server, root := newStore(t)
	cli, err := New(Config{Root: root, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	shell, _ := testImages(t)
	if _, err := server.Get("alpine"); !errors.Is(err, ErrImageNotPresent) {
		t.Fatalf("before import: %v", err)
	}
	tarball := writeArchive(t, "shell.tar", false, func(w io.Writer) error { return imagebuild.WriteDockerArchive(w, shell) })
	if _, err := cli.Import(context.Background(), tarball); err != nil {
		t.Fatal(err)
	}
	if r, err := server.Get("alpine"); err != nil || r.ID != shell.ConfigDigest {
		t.Fatalf("after import by another store: %+v %v", r, err)
	}
	if len(server.List()) != 1 {
		t.Errorf("List after import: %v", server.List())
	}
	if err := cli.Remove(shell.ConfigDigest, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Get("alpine"); !errors.Is(err, ErrImageNotPresent) {
		t.Fatalf("after removal by another store: %v", err)
	}
}

package runtime

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"kedge.dev/kedge/runtime/fifopump"
	"kedge.dev/kedge/runtime/logs"
)

// fullDisk fails every write while full is set, as a log file on a full
// disk does, and records what it accepted otherwise.
type fullDisk struct {
	mu   sync.Mutex
	full bool
	got  strings.Builder
}

func (d *fullDisk) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.full {
		return 0, unix.ENOSPC
	}
	return d.got.Write(p)
}

// TestOutputWhileTheLogCannotBeWritten: a container whose log cannot be
// written (full disk) must not block on its output. The pump keeps
// reading, drops what it cannot write and logs again once the disk has
// room.
func TestOutputWhileTheLogCannotBeWritten(t *testing.T) {
	pump, err := fifopump.New(outputChunk)
	if err != nil {
		t.Fatal(err)
	}
	defer pump.Close()
	r := &Runtime{log: slog.New(slog.NewTextHandler(io.Discard, nil)), pump: pump}
	c := &container{h: &handle{Spec: ContainerSpec{ID: "c1"}}}
	p := filepath.Join(t.TempDir(), "stdout")
	if err := unix.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	w, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	disk := &fullDisk{full: true}
	c.mu.Lock()
	err = r.pumpOutput(c, logs.Stdout, fd, logs.NewWriter(disk))
	c.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}

	// Four times the pipe's capacity: a writer nobody reads blocks.
	line := strings.Repeat("x", 1023) + "\n"
	wrote := make(chan error, 1)
	go func() {
		for range 256 {
			if _, err := w.WriteString(line); err != nil {
				wrote <- err
				return
			}
		}
		wrote <- nil
	}()
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the container's writes block while its log cannot be written")
	}

	// Once the pump has read (and dropped) everything, the disk has room.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		n, err := unix.IoctlGetInt(int(w.Fd()), unix.TIOCINQ) // FIONREAD
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes still unread", n)
		}
	}
	disk.mu.Lock()
	disk.full = false
	disk.mu.Unlock()
	if _, err := w.WriteString("back\n"); err != nil {
		t.Fatal(err)
	}
	w.Close()
	c.copiers.Wait() // EOF
	if got := disk.got.String(); !strings.HasSuffix(got, " stdout F back\n") || strings.Count(got, "\n") != 1 {
		t.Errorf("log after the disk had room again: %q", got)
	}

	c.mu.Lock()
	c.detachLogs()
	c.mu.Unlock()
}

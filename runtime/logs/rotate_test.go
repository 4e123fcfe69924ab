package logs

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRotatingFile(t *testing.T) {
	tests := []struct {
		name              string
		maxSize           int64
		maxFiles, entries int
		wantFiles         int
	}{
		{"no rotation", 0, 5, 50, 1},
		{"rotates and prunes", 300, 3, 50, 3},
		{"keeps only current", 300, 1, 50, 1},
		{"under the limit", 1 << 20, 5, 50, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "0.log")
			rf, err := OpenRotating(path, tc.maxSize, tc.maxFiles)
			if err != nil {
				t.Fatal(err)
			}
			w := NewWriter(rf)
			for i := range tc.entries {
				if err := w.Copy(Stdout, strings.NewReader(fmt.Sprintf("line %03d\n", i))); err != nil {
					t.Fatal(err)
				}
			}
			if err := rf.Close(); err != nil {
				t.Fatal(err)
			}
			rotated, err := RotatedFiles(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(rotated) + 1; got != tc.wantFiles {
				t.Errorf("%d files, want %d", got, tc.wantFiles)
			}
			// Every file holds whole entries, within the size limit, and the
			// last entry is in the current file.
			for _, f := range append(rotated, path) {
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				if tc.maxSize > 0 && int64(len(b)) > tc.maxSize {
					t.Errorf("%s has %d bytes, over %d", f, len(b), tc.maxSize)
				}
				for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
					if _, err := ParseEntry([]byte(l)); err != nil {
						t.Errorf("%s: %v", f, err)
					}
				}
			}
			var out bytes.Buffer
			if err := ReadLogs(context.Background(), path, ReadOptions{TailLines: 1}, &out, &out); err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("line %03d\n", tc.entries-1); out.String() != want {
				t.Errorf("last line %q, want %q", out.String(), want)
			}
			if _, err := rf.Write([]byte("x")); err == nil {
				t.Error("write after Close succeeded")
			}
		})
	}
}

// TestFollowAcrossRotation: a follower started before many rotations
// reads every entry exactly once, in order.
func TestFollowAcrossRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	rf, err := OpenRotating(path, 200, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer rf.Close()
	w := NewWriter(rf)
	if err := w.Copy(Stdout, strings.NewReader("first\n")); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	pr, pw := io.Pipe()
	result := make(chan error, 1)
	go func() {
		result <- ReadLogs(context.Background(), path, ReadOptions{Follow: true, TailLines: -1, Done: done}, pw, pw)
		pw.Close()
	}()
	var out bytes.Buffer
	copied := make(chan struct{})
	go func() {
		_, _ = out.ReadFrom(pr)
		close(copied)
	}()
	var want strings.Builder
	want.WriteString("first\n")
	for i := range 60 {
		line := fmt.Sprintf("entry %02d\n", i)
		want.WriteString(line)
		if err := w.Copy(Stderr, strings.NewReader(line)); err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 {
			time.Sleep(2 * followPoll) // let the reader catch up sometimes, not always
		}
	}
	time.Sleep(3 * followPoll)
	close(done)
	select {
	case err := <-result:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("follow did not end after Done")
	}
	<-copied
	if out.String() != want.String() {
		t.Fatalf("followed output:\n%s\nwant:\n%s", out.String(), want.String())
	}
	if rotated, _ := RotatedFiles(path); len(rotated) < 10 {
		t.Errorf("%d rotated files, want the log rotated at least 10 times", len(rotated))
	}
}

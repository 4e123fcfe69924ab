package logs

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2016, 10, 6, 0, 17, 9, 669794202, time.UTC)

func fixedClock() func() time.Time {
	t := t0
	return func() time.Time {
		t = t.Add(time.Second)
		return t
	}
}

func TestWriterCopy(t *testing.T) {
	tests := []struct {
		name, in string
		max      int
		want     []string // "stream tag content" without timestamps
	}{
		{"lines", "a\nb\n", 0, []string{"stdout F a", "stdout F b"}},
		{"empty line", "\n", 0, []string{"stdout F "}},
		{"trailing partial at EOF", "a\nlast", 0, []string{"stdout F a", "stdout F last"}},
		{"crlf", "win\r\n", 0, []string{"stdout F win"}},
		{"long line split", strings.Repeat("x", 40) + "\n", 16, []string{
			"stdout P " + strings.Repeat("x", 16), "stdout P " + strings.Repeat("x", 16), "stdout F " + strings.Repeat("x", 8)}},
		{"exact multiple", strings.Repeat("y", 32) + "\n", 16, []string{
			"stdout P " + strings.Repeat("y", 16), "stdout P " + strings.Repeat("y", 16), "stdout F "}},
		{"nothing", "", 0, nil},
		// Lines longer than the read buffer (readChunk) are gathered.
		{"longer than a read", strings.Repeat("m", 5000) + "\nz\n", 0, []string{"stdout F " + strings.Repeat("m", 5000), "stdout F z"}},
		{"long line split at the default maximum", strings.Repeat("L", 40*1024) + "\n", 0, []string{
			"stdout P " + strings.Repeat("L", 16*1024), "stdout P " + strings.Repeat("L", 16*1024), "stdout F " + strings.Repeat("L", 8*1024)}},
		{"exact multiple of the default maximum", strings.Repeat("E", 32*1024) + "\n", 0, []string{
			"stdout P " + strings.Repeat("E", 16*1024), "stdout P " + strings.Repeat("E", 16*1024), "stdout F "}},
		{"long trailing line at EOF", "a\n" + strings.Repeat("t", 3000), 0, []string{"stdout F a", "stdout F " + strings.Repeat("t", 3000)}},
		{"crlf across reads", strings.Repeat("c", readChunk-1) + "\r\n", 0, []string{"stdout F " + strings.Repeat("c", readChunk-1)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			w := NewWriter(&out).WithClock(fixedClock()).WithMaxLineSize(tc.max)
			if err := w.Copy(Stdout, strings.NewReader(tc.in)); err != nil {
				t.Fatal(err)
			}
			var got []string
			for i, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
				if l == "" && out.Len() == 0 {
					break
				}
				ts, rest, _ := strings.Cut(l, " ")
				want := t0.Add(time.Duration(i+1) * time.Second).Format(timestampFormat)
				if ts != want {
					t.Errorf("timestamp %q, want %q", ts, want)
				}
				got = append(got, rest)
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("got %q\nwant %q", got, tc.want)
			}
			// A LineWriter fed the same bytes in pieces of any size writes
			// the same entries.
			for _, chunk := range []int{1, 7, 100} {
				var out bytes.Buffer
				lw := NewWriter(&out).WithClock(fixedClock()).WithMaxLineSize(tc.max).Lines(Stdout)
				for in := tc.in; len(in) > 0; {
					n := min(chunk, len(in))
					if err := lw.Write([]byte(in[:n])); err != nil {
						t.Fatal(err)
					}
					in = in[n:]
				}
				if err := lw.Flush(); err != nil {
					t.Fatal(err)
				}
				var pieces []string
				for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
					if _, rest, ok := strings.Cut(l, " "); ok {
						pieces = append(pieces, rest)
					}
				}
				if strings.Join(pieces, "|") != strings.Join(tc.want, "|") {
					t.Errorf("in pieces of %d: got %.200q\nwant %.200q", chunk, pieces, tc.want)
				}
			}
		})
	}
}

func TestTimestampFormat(t *testing.T) {
	var out bytes.Buffer
	w := NewWriter(&out).WithClock(func() time.Time { return t0 })
	if err := w.Copy(Stderr, strings.NewReader("hello\n")); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "2016-10-06T00:17:09.669794202Z stderr F hello\n"; got != want {
		t.Fatalf("got %q want %q", got, want)
	}
}

func writeLog(t *testing.T, lines ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "0.log")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadLogs(t *testing.T) {
	path := writeLog(t,
		"2016-10-06T00:17:01.000000000Z stdout F one\n",
		"2016-10-06T00:17:02.000000000Z stderr F two\n",
		"2016-10-06T00:17:03.000000000Z stdout P thr\n",
		"2016-10-06T00:17:03.500000000Z stdout F ee\n",
		"garbage line\n",
		"2016-10-06T00:17:04.000000000Z stdout F four\n",
	)
	tests := []struct {
		name    string
		opts    ReadOptions
		wantOut string
		wantErr string
	}{
		{"all", ReadOptions{TailLines: -1}, "one\nthree\nfour\n", "two\n"},
		{"tail 1", ReadOptions{TailLines: 1}, "four\n", ""},
		{"tail 3 counts entries", ReadOptions{TailLines: 3}, "ee\nfour\n", ""},
		{"tail 0", ReadOptions{TailLines: 0}, "", ""},
		{"tail more than lines", ReadOptions{TailLines: 100}, "one\nthree\nfour\n", "two\n"},
		{"since", ReadOptions{TailLines: -1, Since: time.Date(2016, 10, 6, 0, 17, 2, 500, time.UTC)}, "three\nfour\n", ""},
		{"limit", ReadOptions{TailLines: -1, LimitBytes: 6}, "one\n", "tw"},
		{"timestamps", ReadOptions{TailLines: 1, Timestamps: true}, "2016-10-06T00:17:04Z four\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if err := ReadLogs(context.Background(), path, tc.opts, &out, &errb); err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.wantOut || errb.String() != tc.wantErr {
				t.Errorf("stdout %q stderr %q, want %q %q", out.String(), errb.String(), tc.wantOut, tc.wantErr)
			}
		})
	}
}

func TestTailWithoutFinalNewline(t *testing.T) {
	path := writeLog(t,
		"2016-10-06T00:17:01.000000000Z stdout F one\n",
		"2016-10-06T00:17:02.000000000Z stdout F two",
	)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	off, err := tailOffset(f, 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(len("2016-10-06T00:17:01.000000000Z stdout F one\n")); off != want {
		t.Fatalf("offset %d want %d", off, want)
	}
}

func TestReadLogsFollow(t *testing.T) {
	path := writeLog(t, "2016-10-06T00:17:01.000000000Z stdout F one\n")
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := NewWriter(f)
	done := make(chan struct{})
	var out bytes.Buffer
	result := make(chan error, 1)
	pr, pw := io.Pipe()
	go func() {
		result <- ReadLogs(context.Background(), path, ReadOptions{Follow: true, TailLines: -1, Done: done}, pw, pw)
		pw.Close()
	}()
	copied := make(chan struct{})
	go func() {
		_, _ = out.ReadFrom(pr)
		close(copied)
	}()
	if err := w.Copy(Stdout, strings.NewReader("two\nthree\n")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * followPoll)
	if err := w.Copy(Stdout, strings.NewReader("after exit\n")); err != nil {
		t.Fatal(err)
	}
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
	if got, want := out.String(), "one\ntwo\nthree\nafter exit\n"; got != want {
		t.Fatalf("got %q want %q", got, want)
	}
}

func TestReadLogsFollowContext(t *testing.T) {
	path := writeLog(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	var out bytes.Buffer
	err := ReadLogs(ctx, path, ReadOptions{Follow: true, TailLines: -1}, &out, &out)
	if err != context.DeadlineExceeded {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
}

func TestParseEntryErrors(t *testing.T) {
	for _, l := range []string{"", "notatime stdout F x", "2016-10-06T00:17:01Z stdin F x", "2016-10-06T00:17:01Z stdout X x", "2016-10-06T00:17:01Z"} {
		if _, err := ParseEntry([]byte(l)); err == nil {
			t.Errorf("ParseEntry(%q) succeeded", l)
		}
	}
}

package runtime_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kedge.dev/kedge/test/images/imagebuild"
)

// TestSecurityDefaults checks what a process sees inside a container:
// Docker's default capabilities, no_new_privs off, read-only /sys and
// /proc/sys, masked /proc/timer_list, and the default /dev.
func TestSecurityDefaults(t *testing.T) {
	e := newEnv(t)
	script := strings.Join([]string{
		"grep -E '^(CapBnd|CapEff|NoNewPrivs)' /proc/self/status",
		"touch /sys/kernel/x 2>/dev/null || echo sys-ro",
		"echo 1 2>/dev/null >/proc/sys/vm/overcommit_memory || echo procsys-ro",
		"echo timer_list=$(wc -c </proc/timer_list)",
		"ls /dev | tr '\\n' ' '; echo",
		"grep -E ' /dev/(shm|mqueue|pts) ' /proc/self/mounts | cut -d' ' -f2 | sort | tr '\\n' ' '; echo",
		"echo pid=$$",
	}, "; ")
	spec := e.spec("sec", "sh", "-c", script)
	e.run(t, spec)
	if st := e.waitExited(t, "sec", 10*time.Second); st.ExitCode != 0 {
		t.Fatalf("status %+v: %s", st, logContent(t, spec.LogPath))
	}
	out := logContent(t, spec.LogPath)
	for _, want := range []string{
		"CapBnd:\t00000000a80425fb", "CapEff:\t00000000a80425fb", "NoNewPrivs:\t0",
		"sys-ro", "procsys-ro", "timer_list=0",
		"/dev/mqueue /dev/pts /dev/shm", "pid=1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	for _, dev := range []string{"null", "zero", "full", "random", "urandom", "tty", "ptmx", "fd", "stdout"} {
		if !strings.Contains(out, " "+dev+" ") && !strings.Contains(out, "\n"+dev+" ") {
			t.Errorf("/dev/%s missing in:\n%s", dev, out)
		}
	}
}

// TestImageUser checks that the image's User is resolved through the
// image's /etc/passwd.
func TestImageUser(t *testing.T) {
	e := newEnv(t)
	img, err := imagebuild.ShellImage("/usr/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	u, err := imagebuild.Build([]string{"example.com/nobody:1"}, imagebuild.Config{User: "nobody", Cmd: []string{"id"}, Env: imagebuild.DefaultEnv}, img.Layers...)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := imagebuild.WriteOCILayout(&buf, imagebuild.OCIOptions{Gzip: true}, u); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(e.dir, "nobody.tar")
	if err := os.WriteFile(archive, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := e.rt.ImportImages(context.Background(), archive); err != nil {
		t.Fatal(err)
	}
	spec := e.spec("user")
	spec.Image = "example.com/nobody:1"
	e.run(t, spec)
	e.waitExited(t, "user", 10*time.Second)
	if got := logContent(t, spec.LogPath); !strings.HasPrefix(got, "uid=65534(nobody) gid=65534(nobody)") {
		t.Fatalf("id printed %q", got)
	}
}

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kedge.dev/kedge/runtime"
	"kedge.dev/kedge/runtime/logs"
	"kedge.dev/kedge/test/images/imagebuild"
)

// The test binary is re-executed as the container init.
func init() {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		runtime.ContainerInit()
	}
}

// TestStandIns builds every stand-in image, imports all.tar and checks that
// the images behave as shared/manifests/README.md says: nginx serves its
// versioned page on port 80 with no command given, the tags are distinct
// images, and liveness answers /healthz with 200 at first.
func TestStandIns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root to run containers")
	}
	out := t.TempDir()
	if err := run(out, "docker", "/usr/bin/busybox", io.Discard); err != nil {
		t.Fatal(err)
	}
	again := t.TempDir()
	if err := run(again, "docker", "/usr/bin/busybox", io.Discard); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(filepath.Join(out, "all.tar"))
	b, _ := os.ReadFile(filepath.Join(again, "all.tar"))
	if !bytes.Equal(a, b) {
		t.Fatal("two builds differ: images are not deterministic")
	}

	dir := t.TempDir()
	cfg := runtime.Config{
		Root: filepath.Join(dir, "root"), StateDir: filepath.Join(dir, "state"),
		CgroupRoot: fmt.Sprintf("/kedge-standins-%d", os.Getpid()),
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	rt, err := runtime.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t.Cleanup(func() {
		list, _ := rt.ListContainers(ctx)
		for _, c := range list {
			_ = rt.RemoveContainer(ctx, c.ID)
		}
		rt.Close()
	})
	imgs, err := rt.ImportImages(ctx, filepath.Join(out, "all.tar"))
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, ref := range []string{imagebuild.Busybox, imagebuild.Alpine, imagebuild.Nginx, imagebuild.Nginx1142, imagebuild.NginxStable, imagebuild.NginxSlim, imagebuild.Liveness} {
		img, err := rt.Image(ctx, ref)
		if err != nil {
			t.Fatalf("%s not imported (%d images): %v", ref, len(imgs), err)
		}
		ids[ref] = img.ID
	}
	seen := map[string]string{}
	for _, ref := range []string{imagebuild.Nginx, imagebuild.Nginx1142, imagebuild.NginxStable, imagebuild.NginxSlim} {
		if other, dup := seen[ids[ref]]; dup {
			t.Errorf("%s and %s have the same digest", ref, other)
		}
		seen[ids[ref]] = ref
	}

	ns := fmt.Sprintf("kedge-standins-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	if out, err := exec.Command("ip", "-n", ns, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up: %v %s", err, out)
	}
	netns := "/run/netns/" + ns
	start := func(id, image string, command ...string) runtime.ContainerSpec {
		t.Helper()
		spec := runtime.ContainerSpec{ID: id, Image: image, Command: command, NetNS: netns, LogPath: filepath.Join(dir, id+".log")}
		if err := rt.CreateContainer(ctx, spec); err != nil {
			t.Fatal(err)
		}
		if err := rt.StartContainer(ctx, id); err != nil {
			t.Fatal(err)
		}
		return spec
	}
	// Kubernetes' nginx examples give no command: the image must serve.
	start("web", "nginx:1.14.2")
	start("liveness", imagebuild.Liveness, "/server")
	client := start("client", imagebuild.Busybox, "sh", "-c",
		"for i in $(seq 50); do wget -qO- http://127.0.0.1/ && wget -qO- http://127.0.0.1:8080/healthz && exit 0; sleep 0.1; done; exit 1")
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := rt.ContainerStatus(ctx, "client")
		if err != nil {
			t.Fatal(err)
		}
		if st.State == runtime.StateExited {
			var buf bytes.Buffer
			_ = logs.ReadLogs(ctx, client.LogPath, logs.ReadOptions{TailLines: -1}, &buf, &buf)
			if st.ExitCode != 0 || !strings.Contains(buf.String(), "nginx/1.14.2") || !strings.HasSuffix(buf.String(), "ok\n") {
				t.Fatalf("client exit %d, output:\n%s", st.ExitCode, buf.String())
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("client did not finish")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The nginx stand-in stops at once on TERM.
	begin := time.Now()
	if err := rt.StopContainer(ctx, "web", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d > 3*time.Second {
		t.Errorf("nginx stand-in took %v to stop on TERM", d)
	}
}

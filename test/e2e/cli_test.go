package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestImageCLI: `kedge image import/ls/rm` on a node's data dir.
func TestImageCLI(t *testing.T) {
	bin := binPath(t)
	base := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		args = append(args, "--data-dir", filepath.Join(base, "data"), "--run-dir", filepath.Join(base, "run"))
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("kedge %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	out := run("image", "import", filepath.Join(imagesDir(t), "nginx_1.14.2.tar"))
	if !strings.Contains(out, "docker.io/library/nginx:1.14.2") || !strings.Contains(out, "imported 1 image(s)") {
		t.Fatalf("import output:\n%s", out)
	}
	out = run("image", "ls")
	if !regexpLine(out, `^IMAGE\s+ID\s+SIZE$`) || !regexpLine(out, `^docker.io/library/nginx:1.14.2\s+[0-9a-f]{12}\s+\S+`) {
		t.Fatalf("ls output:\n%s", out)
	}
	run("image", "rm", "nginx:1.14.2")
	if out := run("image", "ls"); strings.Contains(out, "nginx") {
		t.Fatalf("image still listed after rm:\n%s", out)
	}
	cmd := exec.Command(bin, "image", "import", "/nonexistent.tar", "--data-dir", filepath.Join(base, "data"), "--run-dir", filepath.Join(base, "run"))
	if out, err := cmd.CombinedOutput(); err == nil || !strings.HasPrefix(string(out), "kedge: ") && !strings.Contains(string(out), "kedge: import /nonexistent.tar") {
		t.Fatalf("import of a missing file: %v\n%s", err, out)
	}
}

// TestKubeconfigAndMissingImage: `kedge kubeconfig` prints the admin
// kubeconfig, and a pod whose image is on no reachable registry waits with
// ErrImagePull / ImagePullBackOff instead of crashing anything.
func TestKubeconfigAndMissingImage(t *testing.T) {
	s := newServer(t)
	out, err := exec.Command(s.bin, "kubeconfig", "--data-dir", s.dataDir).Output()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(s.kubecfg)
	if string(out) != string(want) {
		t.Fatalf("kedge kubeconfig differs from %s", s.kubecfg)
	}
	pod := `apiVersion: v1
kind: Pod
metadata:
  name: ghost
spec:
  containers:
  - name: c
    image: example.invalid/ghost:1.0
    env:
    - name: GREETING
      value: hello
`
	if out, err := s.kubectlStdin("1.32", pod, "apply", "-f", "-"); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	eventually(t, 60*time.Second, func() error {
		out, err := s.kubectlErr("1.32", "get", "pod", "ghost", "-o", "jsonpath={.status.containerStatuses[0].state.waiting.reason}")
		if err != nil || (out != "ErrImagePull" && out != "ImagePullBackOff") {
			return fmt.Errorf("waiting reason %q (%v)", out, err)
		}
		return nil
	})
	if out := s.kubectl("1.32", "get", "pod", "ghost", "--no-headers"); !strings.Contains(out, "ErrImagePull") && !strings.Contains(out, "ImagePullBackOff") {
		t.Errorf("STATUS column: %s", out)
	}
	desc := s.kubectl("1.32", "describe", "pod", "ghost")
	if !strings.Contains(desc, `Failed to pull image "example.invalid/ghost:1.0"`) {
		t.Errorf("describe does not tell why the image is missing:\n%s", desc)
	}
	// The node keeps working: a good pod next to it runs.
	good := strings.NewReplacer("ghost", "fine", "example.invalid/ghost:1.0", "alpine").Replace(pod) + "    command: [\"sh\", \"-c\", \"echo $GREETING from $(pwd); sleep 3600\"]\n    workingDir: /tmp\n"
	if out, err := s.kubectlStdin("1.32", good, "apply", "-f", "-"); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	waitPod(t, s, "1.32", "default", "fine", "Running")
	eventually(t, 20*time.Second, func() error {
		if out := s.kubectl("1.32", "logs", "fine"); !strings.Contains(out, "hello from /tmp") {
			return fmt.Errorf("logs: %q", out)
		}
		return nil
	})
}

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	"kedge.dev/kedge/runtime/pull/pulltest"
)

const pullPod = `apiVersion: v1
kind: Pod
metadata:
  name: NAME
spec:
  containers:
  - name: c
    image: IMAGE
    imagePullPolicy: POLICY
    command: ["sh", "-c", "cat /marker; echo; sleep 3600"]
`

func podWithImage(name, image, policy string) string {
	return strings.NewReplacer("NAME", name, "IMAGE", image, "POLICY", policy).Replace(pullPod)
}

// waitingReason returns the first container's waiting reason.
func waitingReason(s *server, name string) string {
	out, _ := s.kubectlErr("1.32", "get", "pod", name, "-o", "jsonpath={.status.containerStatuses[0].state.waiting.reason}")
	return out
}

// TestPullFromRegistry runs pods whose images are only in local registries
// (Debian's docker-registry started by the test): through a
// registries.yaml mirror for docker.io, by full name with htpasswd
// credentials from registries.yaml, with wrong credentials (ErrImagePull,
// then ImagePullBackOff), and an image pulled with `kedge image pull`
// while the server runs.
func TestPullFromRegistry(t *testing.T) {
	users := map[string]string{"alice": "s3cret"}
	private := pulltest.Start(t, pulltest.Options{Users: users})
	private.Push(t, "team/app:1", pulltest.ShellImage(t, "from the private registry"), "alice")
	private.Push(t, "team/app:2", pulltest.ShellImage(t, "pulled by the CLI"), "alice")
	locked := pulltest.Start(t, pulltest.Options{Users: map[string]string{"bob": "right"}})
	locked.Push(t, "team/app:1", pulltest.ShellImage(t, "never seen"), "bob")
	mirror := pulltest.Start(t, pulltest.Options{})
	mirror.Push(t, "library/mirrored:1.0", pulltest.ShellImage(t, "from the mirror"), "")
	mirror.Push(t, "library/armonly:1.0", pulltest.WithPlatform(t, pulltest.ShellImage(t, "arm"), "linux", "arm64"), "")

	s := newServer(t)
	regs := fmt.Sprintf(`mirrors:
  docker.io:
    endpoint: ["http://%s"]
configs:
  "%s":
    auth: {username: alice, password: s3cret}
  "%s":
    auth: {username: bob, password: wrong}
`, mirror.Host, private.Host, locked.Host)
	if err := os.WriteFile(filepath.Join(s.dataDir, "registries.yaml"), []byte(regs), 0o600); err != nil {
		t.Fatal(err)
	}
	s.restart() // registries.yaml is read at start

	pods := map[string]string{
		"mirrored": podWithImage("mirrored", "mirrored:1.0", "IfNotPresent"),
		"private":  podWithImage("private", private.Host+"/team/app:1", "Always"),
		"denied":   podWithImage("denied", locked.Host+"/team/app:1", "IfNotPresent"),
		"armonly":  podWithImage("armonly", "armonly:1.0", "IfNotPresent"),
		"missing":  podWithImage("missing", private.Host+"/team/nothing:1", "IfNotPresent"),
	}
	for name, p := range pods {
		if out, err := s.kubectlStdin("1.32", p, "apply", "-f", "-"); err != nil {
			t.Fatalf("apply %s: %v %s", name, err, out)
		}
	}
	waitPod(t, s, "1.32", "default", "mirrored", "Running")
	waitPod(t, s, "1.32", "default", "private", "Running")
	for name, want := range map[string]string{"mirrored": "from the mirror", "private": "from the private registry"} {
		eventually(t, 30*time.Second, func() error {
			if out := s.kubectl("1.32", "logs", name); !strings.Contains(out, want) {
				return fmt.Errorf("logs of %s: %q", name, out)
			}
			return nil
		})
	}
	events := s.kubectl("1.32", "get", "events", "--field-selector", "involvedObject.name=private", "-o", "custom-columns=REASON:.reason,MESSAGE:.message", "--no-headers")
	if !strings.Contains(events, fmt.Sprintf(`Pulling image "%s/team/app:1"`, private.Host)) ||
		!regexpLine(events, fmt.Sprintf(`^Pulled\s+Successfully pulled image "%s/team/app:1" in \S+\. Image size: \d+ bytes\.$`, regexp.QuoteMeta(private.Host))) {
		t.Errorf("events of the pulled pod:\n%s", events)
	}

	// Wrong credentials: ErrImagePull with the registry's error, then back-off.
	eventually(t, 60*time.Second, func() error {
		if r := waitingReason(s, "denied"); r != "ImagePullBackOff" {
			return fmt.Errorf("waiting reason %q", r)
		}
		return nil
	})
	events = s.kubectl("1.32", "get", "events", "--field-selector", "involvedObject.name=denied", "-o", "custom-columns=REASON:.reason,MESSAGE:.message", "--no-headers")
	for _, want := range []string{
		fmt.Sprintf(`Failed to pull image "%s/team/app:1"`, locked.Host), "registry denied access", "Error: ErrImagePull",
		fmt.Sprintf(`Back-off pulling image "%s/team/app:1"`, locked.Host), "Error: ImagePullBackOff",
	} {
		if !strings.Contains(events, want) {
			t.Errorf("events of the denied pod lack %q:\n%s", want, events)
		}
	}

	// Bad images: each gives the pod a precise reason and event.
	for name, want := range map[string]string{
		"armonly": "image platform linux/arm64 does not match node linux/" + goruntime.GOARCH,
		"missing": "image not found in registry",
	} {
		eventually(t, 60*time.Second, func() error {
			if r := waitingReason(s, name); r != "ErrImagePull" && r != "ImagePullBackOff" {
				return fmt.Errorf("%s: waiting reason %q", name, r)
			}
			ev := s.kubectl("1.32", "get", "events", "--field-selector", "involvedObject.name="+name, "-o", "custom-columns=MESSAGE:.message", "--no-headers")
			if !strings.Contains(ev, want) {
				return fmt.Errorf("%s: events lack %q:\n%s", name, want, ev)
			}
			return nil
		})
	}

	// The CLI pulls into the running node's store; the node then uses it
	// without pulling again.
	out, err := exec.Command(s.bin, "image", "pull", private.Host+"/team/app:2", "--data-dir", s.dataDir, "--run-dir", s.runDir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "pulled "+private.Host+"/team/app:2") {
		t.Fatalf("kedge image pull: %v\n%s", err, out)
	}
	if out, err := s.kubectlStdin("1.32", podWithImage("cli", private.Host+"/team/app:2", "Never"), "apply", "-f", "-"); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	waitPod(t, s, "1.32", "default", "cli", "Running")
	events = s.kubectl("1.32", "get", "events", "--field-selector", "involvedObject.name=cli", "-o", "custom-columns=REASON:.reason,MESSAGE:.message", "--no-headers")
	if !strings.Contains(events, "already present on machine") {
		t.Errorf("events of the pod using the CLI-pulled image:\n%s", events)
	}
}

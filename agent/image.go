package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"kedge.dev/kedge/agent/podsync"
	"kedge.dev/kedge/client"
	"kedge.dev/kedge/client/record"
	"kedge.dev/kedge/runtime"
	"kedge.dev/kedge/runtime/pull"
)

// imagePuller pulls images into the node's image store (runtime.Puller).
// PullImage blocks until the image is stored or ctx ends; concurrent pulls
// of one image are coalesced by the implementation.
type imagePuller interface {
	PullImage(ctx context.Context, ref string, opts runtime.PullOptions) (runtime.Image, error)
}

// Kubernetes' image pull back-off (kubelet's imageBackOff).
const (
	pullBackoffInitial = 10 * time.Second
	pullBackoffMax     = 300 * time.Second
)

// errPullBackoff is returned while a failed image's back-off runs.
var errPullBackoff = errors.New("back-off pulling image")

// imagePulls is a pod worker's image pull back-off, keyed by image; it is
// owned by the worker's goroutine.
type imagePulls struct {
	entries map[string]*pullEntry
}

type pullEntry struct {
	delay  time.Duration
	until  time.Time
	reason string // the last pull error, for ImagePullBackOff's message
}

// failed records a failed pull of image at now.
func (p *imagePulls) failed(image, reason string, now time.Time) {
	if p.entries == nil {
		p.entries = map[string]*pullEntry{}
	}
	e := p.entries[image]
	if e == nil {
		e = &pullEntry{delay: pullBackoffInitial}
		p.entries[image] = e
	} else {
		e.delay = min(2*e.delay, pullBackoffMax)
	}
	e.until, e.reason = now.Add(e.delay), reason
}

// waiting reports whether image is in back-off at now, and its last error.
func (p *imagePulls) waiting(image string, now time.Time) (bool, string) {
	e := p.entries[image]
	if e == nil || !now.Before(e.until) {
		return false, ""
	}
	return true, e.reason
}

func (p *imagePulls) succeeded(image string) { delete(p.entries, image) }

// pullAction is what the pull policy asks for an image.
type pullAction int

const (
	useStored pullAction = iota // the stored image is used as is
	pullImage                   // pull (or check the registry for a newer manifest)
	neverPull                   // missing and the policy forbids pulling: ErrImageNeverPull
)

// decidePull applies Kubernetes' pull policy; the API server has already
// defaulted an empty policy (Always for ":latest" or no tag, else
// IfNotPresent), and an empty one here is treated the same way.
func decidePull(policy corev1.PullPolicy, image string, present bool) pullAction {
	if policy == "" {
		policy = corev1.PullIfNotPresent
		if isLatest(image) {
			policy = corev1.PullAlways
		}
	}
	switch {
	case policy == corev1.PullAlways:
		return pullImage
	case present:
		return useStored
	case policy == corev1.PullNever:
		return neverPull
	default:
		return pullImage
	}
}

// isLatest reports whether image has the tag "latest" or none (and no
// digest).
func isLatest(image string) bool {
	if strings.Contains(image, "@") {
		return false
	}
	last := image[strings.LastIndex(image, "/")+1:]
	_, tag, ok := strings.Cut(last, ":")
	return !ok || tag == "latest"
}

// ensureImage makes c's image available as its pull policy says, with
// kubelet's events and waiting reasons (ErrImageNeverPull, ErrImagePull,
// ImagePullBackOff). It returns nil when the container can be created.
// Unlike kubelet, a stored image is used when the registry cannot be
// reached (pull.ErrRegistry) under policy Always: sites run offline.
func (w *podWorker) ensureImage(ctx context.Context, pod *corev1.Pod, c *corev1.Container) error {
	ref := record.PodRef(pod, c.Name)
	ev := w.a.events
	_, err := w.a.rt.Image(ctx, c.Image)
	present := err == nil
	if err != nil && !errors.Is(err, runtime.ErrImageNotPresent) {
		w.waiting[c.Name] = podsync.Waiting{Reason: "InvalidImageName", Message: err.Error()}
		ev.Event(ref, corev1.EventTypeWarning, "InspectFailed", fmt.Sprintf("Failed to apply default image tag %q: %v", c.Image, err))
		ev.Event(ref, corev1.EventTypeWarning, "Failed", "Error: InvalidImageName")
		return err
	}
	action := decidePull(c.ImagePullPolicy, c.Image, present)
	if action == pullImage && w.a.puller == nil {
		// A node without registry access behaves as if the policy were Never.
		action = neverPull
		if present {
			action = useStored
		}
	}
	switch action {
	case useStored:
		ev.Event(ref, corev1.EventTypeNormal, "Pulled", fmt.Sprintf("Container image %q already present on machine", c.Image))
		return nil
	case neverPull:
		msg := fmt.Sprintf("Container image %q is not present with pull policy of Never", c.Image)
		w.waiting[c.Name] = podsync.Waiting{Reason: "ErrImageNeverPull", Message: msg}
		ev.Event(ref, corev1.EventTypeWarning, "ErrImageNeverPull",
			msg+`; load it on the node with "kedge image import <file>"`)
		ev.Event(ref, corev1.EventTypeWarning, "Failed", "Error: ErrImageNeverPull")
		return fmt.Errorf("image %s: %w", c.Image, runtime.ErrImageNotPresent)
	}

	now := time.Now()
	if back, reason := w.pulls.waiting(c.Image, now); back {
		w.waiting[c.Name] = podsync.Waiting{Reason: "ImagePullBackOff",
			Message: fmt.Sprintf("Back-off pulling image %q: ErrImagePull: %s", c.Image, reason)}
		ev.Event(ref, corev1.EventTypeNormal, "BackOff", fmt.Sprintf("Back-off pulling image %q", c.Image))
		ev.Event(ref, corev1.EventTypeWarning, "Failed", "Error: ImagePullBackOff")
		return errPullBackoff
	}
	creds := w.pullCredentials(ctx, pod)
	ev.Event(ref, corev1.EventTypeNormal, "Pulling", fmt.Sprintf("Pulling image %q", c.Image))
	start := time.Now()
	pctx, cancel := w.pullContext(ctx)
	img, err := w.a.puller.PullImage(pctx, c.Image, runtime.PullOptions{Credentials: creds})
	stopped := pctx.Err() != nil
	cancel()
	if err != nil {
		if stopped {
			return err // the agent is stopping or the pod is being deleted
		}
		msg := fmt.Sprintf("Failed to pull image %q: %v", c.Image, err)
		if present && errors.Is(err, pull.ErrRegistry) {
			// Offline first: an edge site keeps running what it has when
			// the registry cannot be reached (Always, ":latest"). A
			// registry that answers "denied" or "not found" still fails
			// the pod, so that Always keeps guarding private images.
			ev.Event(ref, corev1.EventTypeWarning, "Failed", msg+"; using the image already present on the node")
			ev.Event(ref, corev1.EventTypeNormal, "Pulled", fmt.Sprintf("Container image %q already present on machine", c.Image))
			return nil
		}
		w.pulls.failed(c.Image, err.Error(), time.Now())
		w.waiting[c.Name] = podsync.Waiting{Reason: "ErrImagePull", Message: msg}
		ev.Event(ref, corev1.EventTypeWarning, "Failed", msg)
		ev.Event(ref, corev1.EventTypeWarning, "Failed", "Error: ErrImagePull")
		w.log.Warn("image pull failed", "image", c.Image, "err", err)
		return err
	}
	w.pulls.succeeded(c.Image)
	ev.Event(ref, corev1.EventTypeNormal, "Pulled", fmt.Sprintf("Successfully pulled image %q in %s. Image size: %d bytes.",
		c.Image, time.Since(start).Round(time.Millisecond), img.Size))
	return nil
}

// pullCheckPeriod is how often a running pull looks whether its pod was
// deleted meanwhile.
const pullCheckPeriod = 200 * time.Millisecond

// pullContext returns a context for a pull that ends with ctx or as soon as
// the pod is deleted: a pull over a slow link must not hold up the pod's
// deletion (the worker's goroutine waits for it).
func (w *podWorker) pullContext(ctx context.Context) (context.Context, context.CancelFunc) {
	pctx, cancel := context.WithCancel(ctx)
	go func() {
		t := time.NewTicker(pullCheckPeriod)
		defer t.Stop()
		for {
			select {
			case <-pctx.Done():
				return
			case <-t.C:
			}
			w.mu.Lock()
			deleted := w.gone || (w.pending != nil && w.pending.DeletionTimestamp != nil)
			w.mu.Unlock()
			if deleted {
				cancel()
				return
			}
		}
	}()
	return pctx, cancel
}

// pullCredentials reads the pod's imagePullSecrets
// (kubernetes.io/dockerconfigjson). A secret that cannot be read, or a
// server that does not serve Secrets yet, gives kubelet's warning and the
// pull goes on with the node's registries configuration.
func (w *podWorker) pullCredentials(ctx context.Context, pod *corev1.Pod) pull.Credentials {
	if len(pod.Spec.ImagePullSecrets) == 0 {
		return nil
	}
	creds := pull.Credentials{}
	var missing []string
	res := client.Resource{Version: "v1", Resource: "secrets", Namespace: pod.Namespace}
	for _, s := range pod.Spec.ImagePullSecrets {
		var sec corev1.Secret
		if err := w.a.api.Get(ctx, res, s.Name, &sec); err != nil {
			missing = append(missing, s.Name)
			continue
		}
		data := sec.Data[corev1.DockerConfigJsonKey]
		if sec.Type != corev1.SecretTypeDockerConfigJson || len(data) == 0 {
			missing = append(missing, s.Name)
			continue
		}
		c, err := pull.ParseDockerConfigJSON(data)
		if err != nil {
			missing = append(missing, s.Name)
			continue
		}
		for host, a := range c {
			if _, ok := creds[host]; !ok { // the first secret naming a host wins
				creds[host] = a
			}
		}
	}
	if len(missing) > 0 {
		w.a.events.Event(record.PodRef(pod, ""), corev1.EventTypeWarning, "FailedToRetrieveImagePullSecret",
			fmt.Sprintf("Unable to retrieve some image pull secrets (%s); attempting to pull the image may not succeed.", strings.Join(missing, ", ")))
	}
	return creds
}

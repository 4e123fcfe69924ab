package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"kedge.dev/kedge/client"
	"kedge.dev/kedge/netpolicy/podnet"
	"kedge.dev/kedge/runtime"
	"kedge.dev/kedge/runtime/sandbox"
)

// The real implementations satisfy the agent's interfaces.
var (
	_ podRuntime   = (*runtime.Runtime)(nil)
	_ podSandboxes = (*sandbox.Manager)(nil)
	_ podNetwork   = (*podnet.Network)(nil)
	_ apiClient    = (*client.Client)(nil)
)

// fakeRuntime keeps containers in memory. A container whose command is
// ["fail-start"] fails to start; exit makes a running one exit.
type fakeRuntime struct {
	mu         sync.Mutex
	images     map[string]bool
	containers map[string]*runtime.ContainerStatus
	specs      map[string]runtime.ContainerSpec
	created    int
	stopGrace  map[string]time.Duration
	cgroups    map[string]runtime.Resources // pod cgroups made by EnsureCgroup
}

func newFakeRuntime(images ...string) *fakeRuntime {
	r := &fakeRuntime{images: map[string]bool{}, containers: map[string]*runtime.ContainerStatus{},
		specs: map[string]runtime.ContainerSpec{}, stopGrace: map[string]time.Duration{},
		cgroups: map[string]runtime.Resources{}}
	for _, i := range images {
		r.images[i] = true
	}
	return r
}

func (r *fakeRuntime) Image(_ context.Context, ref string) (runtime.Image, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.images[ref] {
		return runtime.Image{}, fmt.Errorf("image %q: %w", ref, runtime.ErrImageNotPresent)
	}
	return runtime.Image{Names: []string{ref}, ID: "sha256:" + ref}, nil
}

func (r *fakeRuntime) CreateContainer(_ context.Context, spec runtime.ContainerSpec) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.images[spec.Image] {
		return runtime.ErrImageNotPresent
	}
	if _, ok := r.containers[spec.ID]; ok {
		return runtime.ErrContainerExists
	}
	r.created++
	r.specs[spec.ID] = spec
	r.containers[spec.ID] = &runtime.ContainerStatus{ID: spec.ID, Labels: spec.Labels, State: runtime.StateCreated,
		CreatedAt: time.Now(), Image: spec.Image, ImageID: "sha256:" + spec.Image}
	return nil
}

func (r *fakeRuntime) StartContainer(_ context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.containers[id]
	if !ok {
		return runtime.ErrContainerNotFound
	}
	if cmd := r.specs[id].Command; len(cmd) > 0 && cmd[0] == "fail-start" {
		c.State, c.ExitCode, c.Reason, c.Message, c.FinishedAt = runtime.StateExited, 128, runtime.ReasonStartError,
			`exec: "fail-start": executable file not found in $PATH`, time.Now()
		return fmt.Errorf("start %s: %w", id, runtime.ErrStartFailed)
	}
	c.State, c.StartedAt = runtime.StateRunning, time.Now()
	return nil
}

func (r *fakeRuntime) StopContainer(_ context.Context, id string, grace time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.containers[id]
	if !ok {
		return runtime.ErrContainerNotFound
	}
	r.stopGrace[id] = grace
	if c.State == runtime.StateRunning {
		c.State, c.ExitCode, c.Reason, c.FinishedAt = runtime.StateExited, 137, runtime.ReasonError, time.Now()
	}
	return nil
}

func (r *fakeRuntime) RemoveContainer(_ context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.containers, id)
	return nil
}

func (r *fakeRuntime) ContainerStatus(_ context.Context, id string) (runtime.ContainerStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.containers[id]
	if !ok {
		return runtime.ContainerStatus{}, runtime.ErrContainerNotFound
	}
	return *c, nil
}

func (r *fakeRuntime) ListContainers(context.Context) ([]runtime.ContainerStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []runtime.ContainerStatus
	for _, c := range r.containers {
		out = append(out, *c)
	}
	return out, nil
}

// exit makes a running container exit with code.
func (r *fakeRuntime) exit(id string, code int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.containers[id]
	if !ok || c.State != runtime.StateRunning {
		return false
	}
	c.State, c.ExitCode, c.FinishedAt = runtime.StateExited, code, time.Now()
	c.Reason = runtime.ReasonCompleted
	if code != 0 {
		c.Reason = runtime.ReasonError
	}
	return true
}

func (r *fakeRuntime) ids() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for id := range r.containers {
		out = append(out, id)
	}
	return out
}

// fakeSandboxes and fakeNetwork keep what exists in maps.
type fakeSandboxes struct {
	mu  sync.Mutex
	sbs map[string]sandbox.Sandbox
}

func (s *fakeSandboxes) Ensure(_ context.Context, spec sandbox.Spec) (sandbox.Sandbox, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sb := sandbox.Sandbox{PodUID: spec.PodUID, IPCNS: "/run/sb/" + spec.PodUID + "/ipc"}
	if !spec.HostNetwork {
		sb.NetNS, sb.UTSNS = "/run/sb/"+spec.PodUID+"/net", "/run/sb/"+spec.PodUID+"/uts"
	}
	s.sbs[spec.PodUID] = sb
	return sb, nil
}

func (s *fakeSandboxes) Remove(_ context.Context, uid string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sbs, uid)
	return nil
}

func (s *fakeSandboxes) List(context.Context) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for uid := range s.sbs {
		out = append(out, uid)
	}
	return out, nil
}

func (s *fakeSandboxes) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sbs)
}

type fakeNetwork struct {
	mu   sync.Mutex
	ips  map[string]net.IP
	next byte
}

func (n *fakeNetwork) Attach(_ context.Context, uid, netns string) (net.IP, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if netns == "" {
		return nil, fmt.Errorf("attach %s: no netns", uid)
	}
	if ip, ok := n.ips[uid]; ok {
		return ip, nil
	}
	n.next++
	ip := net.IPv4(10, 42, 0, 1+n.next)
	n.ips[uid] = ip
	return ip, nil
}

func (n *fakeNetwork) Detach(_ context.Context, uid, _ string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.ips, uid)
	return nil
}

func (n *fakeNetwork) count() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.ips)
}

// fakeEvents records events as "Reason: message".
type fakeEvents struct {
	mu     sync.Mutex
	events []string
}

func (e *fakeEvents) Event(_ corev1.ObjectReference, _, reason, message string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.events = append(e.events, reason+": "+message)
}

func (e *fakeEvents) has(s string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range e.events {
		if ev == s {
			return true
		}
	}
	return false
}

// fakeAPI is an in-memory API server for pods and nodes with a pod watch.
type fakeAPI struct {
	mu       sync.Mutex
	rv       int
	pods     map[string]*corev1.Pod // ns/name
	nodes    map[string]*corev1.Node
	watchers []chan client.WatchEvent
	history  []client.WatchEvent // every pod event, replayed to a watch from a resourceVersion
	deletes  []metav1.DeleteOptions
	down     bool // every call fails as if the server were unreachable
}

func newFakeAPI() *fakeAPI {
	return &fakeAPI{pods: map[string]*corev1.Pod{}, nodes: map[string]*corev1.Node{}}
}

var errDown = fmt.Errorf("connection refused")

func (f *fakeAPI) bump() string { f.rv++; return strconv.Itoa(f.rv) }

// notify sends a pod event to every watcher; callers hold f.mu.
func (f *fakeAPI) notify(t watch.EventType, pod *corev1.Pod) {
	f.history = append(f.history, client.WatchEvent{Type: t, Object: pod.DeepCopy()})
	for _, w := range f.watchers {
		select {
		case w <- client.WatchEvent{Type: t, Object: pod.DeepCopy()}:
		default: // a slow watcher is cut off, as a real server does
			close(w)
			f.watchers = removeWatcher(f.watchers, w)
		}
	}
}

func removeWatcher(ws []chan client.WatchEvent, w chan client.WatchEvent) []chan client.WatchEvent {
	for i := range ws {
		if ws[i] == w {
			return append(ws[:i], ws[i+1:]...)
		}
	}
	return ws
}

func (f *fakeAPI) addPod(pod *corev1.Pod) {
	f.mu.Lock()
	defer f.mu.Unlock()
	pod = pod.DeepCopy()
	pod.ResourceVersion = f.bump()
	f.pods[pod.Namespace+"/"+pod.Name] = pod
	f.notify(watch.Added, pod)
}

func (f *fakeAPI) pod(ns, name string) *corev1.Pod {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p := f.pods[ns+"/"+name]; p != nil {
		return p.DeepCopy()
	}
	return nil
}

// markDeleted sets the deletion timestamp like a graceful DELETE does.
func (f *fakeAPI) markDeleted(ns, name string, grace int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.pods[ns+"/"+name]
	now := metav1.Now()
	p.DeletionTimestamp, p.DeletionGracePeriodSeconds = &now, &grace
	p.ResourceVersion = f.bump()
	f.notify(watch.Modified, p)
}

// removePod removes a pod at once (as if force-deleted elsewhere).
func (f *fakeAPI) removePod(ns, name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.pods[ns+"/"+name]
	delete(f.pods, ns+"/"+name)
	p.ResourceVersion = f.bump()
	f.notify(watch.Deleted, p)
}

func notFound(res, name string) error {
	return apierrors.NewNotFound(schema.GroupResource{Resource: res}, name)
}

func (f *fakeAPI) Get(_ context.Context, r client.Resource, name string, out any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return errDown
	}
	if r.Resource != "nodes" || f.nodes[name] == nil {
		return notFound(r.Resource, name)
	}
	*out.(*corev1.Node) = *f.nodes[name].DeepCopy()
	return nil
}

func (f *fakeAPI) Create(_ context.Context, r client.Resource, obj client.Object, _ any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return errDown
	}
	if r.Resource != "nodes" {
		return fmt.Errorf("fake: create %s", r.Resource)
	}
	n := obj.(*corev1.Node).DeepCopy()
	if f.nodes[n.Name] != nil {
		return apierrors.NewAlreadyExists(schema.GroupResource{Resource: "nodes"}, n.Name)
	}
	n.ResourceVersion = f.bump()
	f.nodes[n.Name] = n
	return nil
}

func (f *fakeAPI) Update(_ context.Context, r client.Resource, obj client.Object, _ any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return errDown
	}
	n := obj.(*corev1.Node).DeepCopy()
	n.ResourceVersion = f.bump()
	f.nodes[n.Name] = n
	return nil
}

func (f *fakeAPI) Patch(_ context.Context, r client.Resource, name string, pt types.PatchType, data []byte, _ any, sub ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return errDown
	}
	if pt != types.MergePatchType || len(sub) != 1 || sub[0] != "status" {
		return fmt.Errorf("fake: patch %s %v %v", r.Resource, pt, sub)
	}
	var obj any
	switch r.Resource {
	case "nodes":
		obj = f.nodes[name]
	case "pods":
		if p := f.pods[r.Namespace+"/"+name]; p != nil {
			obj = p
		}
	}
	if obj == nil {
		return notFound(r.Resource, name)
	}
	orig, _ := json.Marshal(obj)
	merged, err := jsonpatch.MergePatch(orig, data)
	if err != nil {
		return err
	}
	switch r.Resource {
	case "nodes":
		n := &corev1.Node{}
		if err := json.Unmarshal(merged, n); err != nil {
			return err
		}
		f.nodes[name].Status = n.Status
	case "pods":
		p := &corev1.Pod{}
		if err := json.Unmarshal(merged, p); err != nil {
			return err
		}
		cur := f.pods[r.Namespace+"/"+name]
		if p.UID != cur.UID {
			return apierrors.NewConflict(schema.GroupResource{Resource: "pods"}, name, fmt.Errorf("uid mismatch"))
		}
		cur.Status = p.Status
		cur.ResourceVersion = f.bump()
		f.notify(watch.Modified, cur)
	}
	return nil
}

func (f *fakeAPI) List(_ context.Context, r client.Resource, opts metav1.ListOptions, out any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return errDown
	}
	list := out.(*corev1.PodList)
	for _, p := range f.pods {
		if "spec.nodeName="+p.Spec.NodeName == opts.FieldSelector {
			list.Items = append(list.Items, *p.DeepCopy())
		}
	}
	list.ResourceVersion = strconv.Itoa(f.rv)
	return nil
}

func (f *fakeAPI) Watch(ctx context.Context, r client.Resource, opts metav1.ListOptions, _ func() any) (<-chan client.WatchEvent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, errDown
	}
	// Like a real server, a watch from a list's resourceVersion first sees
	// what changed since the list; without that an event between the two
	// calls would be lost.
	var replay []client.WatchEvent
	if opts.ResourceVersion != "" {
		from, err := strconv.Atoi(opts.ResourceVersion)
		if err != nil {
			return nil, fmt.Errorf("fake watch: bad resourceVersion %q", opts.ResourceVersion)
		}
		for _, ev := range f.history {
			if rv, _ := strconv.Atoi(ev.Object.(*corev1.Pod).ResourceVersion); rv > from {
				replay = append(replay, client.WatchEvent{Type: ev.Type, Object: ev.Object.(*corev1.Pod).DeepCopy()})
			}
		}
	}
	ch := make(chan client.WatchEvent, 100+len(replay))
	for _, ev := range replay {
		ch <- ev
	}
	f.watchers = append(f.watchers, ch)
	context.AfterFunc(ctx, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, w := range f.watchers {
			if w == ch {
				f.watchers = removeWatcher(f.watchers, ch)
				close(ch)
			}
		}
	})
	return ch, nil
}

func (f *fakeAPI) Delete(_ context.Context, r client.Resource, name string, opts metav1.DeleteOptions) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return errDown
	}
	f.deletes = append(f.deletes, opts)
	p := f.pods[r.Namespace+"/"+name]
	if p == nil {
		return notFound("pods", name)
	}
	if opts.Preconditions != nil && opts.Preconditions.UID != nil && *opts.Preconditions.UID != p.UID {
		return apierrors.NewConflict(schema.GroupResource{Resource: "pods"}, name, fmt.Errorf("uid precondition"))
	}
	delete(f.pods, r.Namespace+"/"+name)
	p.ResourceVersion = f.bump()
	f.notify(watch.Deleted, p)
	return nil
}

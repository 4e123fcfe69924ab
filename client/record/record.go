// Package record posts core/v1 Events for kedge's components, the way
// Kubernetes' event recorder does: an event that repeats one already sent
// (same source, involved object, type, reason and message) is aggregated
// into the existing Event by bumping its count and lastTimestamp.
//
// Recording never blocks the caller: events are queued and written by the
// goroutine that runs Run. When the queue is full, or the API server cannot
// be reached after a few tries, events are dropped and logged, since events
// are best-effort diagnostics and must not stall pod work.
package record

import (
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"kedge.dev/kedge/client"
)

// eventWriter is the part of *client.Client the recorder uses.
type eventWriter interface {
	Create(ctx context.Context, r client.Resource, obj client.Object, out any) error
	Patch(ctx context.Context, r client.Resource, name string, pt types.PatchType, data []byte, out any, subresource ...string) error
}

var _ eventWriter = (*client.Client)(nil)

// ErrInvalidConfig is returned by New for an unusable Config.
var ErrInvalidConfig = errors.New("invalid recorder config")

// Config configures a Recorder.
type Config struct {
	// Component is the event source's component ("kubelet",
	// "default-scheduler"). Required.
	Component string
	// Host is the event source's host, the node name for the agent.
	Host string
	// QueueSize is how many events may wait to be written; default 1000.
	QueueSize int
	// CacheSize is how many distinct events are remembered for aggregation;
	// default 4096, least recently used dropped first.
	CacheSize int
	// Retries is how many times a failed write is tried again; default 2.
	Retries int
	// RetryDelay is the pause before a retry; default 1 s.
	RetryDelay time.Duration
	// Logger receives dropped-event warnings; default slog.Default().
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// DefaultConfig returns a Config with the defaults filled in and the given
// component.
func DefaultConfig(component string) Config {
	return Config{Component: component, QueueSize: 1000, CacheSize: 4096, Retries: 2,
		RetryDelay: time.Second, Logger: slog.Default(), Now: time.Now}
}

// Validate reports whether cfg can work.
func (cfg Config) Validate() error {
	if cfg.Component == "" {
		return fmt.Errorf("%w: Component is empty", ErrInvalidConfig)
	}
	if cfg.QueueSize < 0 || cfg.CacheSize < 0 || cfg.Retries < 0 || cfg.RetryDelay < 0 {
		return fmt.Errorf("%w: negative size, retries or delay", ErrInvalidConfig)
	}
	return nil
}

// Recorder queues and writes Events. Event and Eventf are safe for concurrent
// use; Run must be called once, and owns the aggregation cache.
type Recorder struct {
	cfg Config
	w   eventWriter
	log *slog.Logger

	// queue holds at most cfg.QueueSize events and no memory while empty:
	// a channel of that capacity kept ~180 KB allocated per recorder for
	// queues that are empty nearly all the time. wake tells Run there is
	// something to take.
	mu    sync.Mutex
	queue []pending
	wake  chan struct{}

	// Owned by the Run goroutine.
	lru   *list.List
	cache map[key]*list.Element
}

type pending struct {
	ref                  corev1.ObjectReference
	typ, reason, message string
	at                   time.Time
}

// key identifies events that aggregate into one.
type key struct {
	kind, namespace, name, uid, apiVersion, fieldPath string
	typ, reason, message                              string
}

// sent is what the recorder remembers of a written Event.
type sent struct {
	key      key
	name, ns string
	count    int32
	first    metav1.Time
}

// New builds a Recorder writing through w (usually a *client.Client).
func New(cfg Config, w eventWriter) (*Recorder, error) {
	def := DefaultConfig(cfg.Component)
	if cfg.QueueSize == 0 {
		cfg.QueueSize = def.QueueSize
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = def.CacheSize
	}
	if cfg.Retries == 0 {
		cfg.Retries = def.Retries
	}
	if cfg.RetryDelay == 0 {
		cfg.RetryDelay = def.RetryDelay
	}
	if cfg.Logger == nil {
		cfg.Logger = def.Logger
	}
	if cfg.Now == nil {
		cfg.Now = def.Now
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Recorder{
		cfg: cfg, w: w, wake: make(chan struct{}, 1),
		log:   cfg.Logger.With("component", "event-recorder"),
		lru:   list.New(),
		cache: map[key]*list.Element{},
	}, nil
}

// Event queues an event about ref. eventType is corev1.EventTypeNormal or
// corev1.EventTypeWarning; reason is CamelCase ("Started"). It never blocks.
func (r *Recorder) Event(ref corev1.ObjectReference, eventType, reason, message string) {
	p := pending{ref: ref, typ: eventType, reason: reason, message: message, at: r.cfg.Now()}
	r.mu.Lock()
	full := len(r.queue) >= r.cfg.QueueSize
	if !full {
		r.queue = append(r.queue, p)
	}
	r.mu.Unlock()
	if full {
		r.log.Warn("event queue full, dropping event", "reason", reason, "object", ref.Namespace+"/"+ref.Name)
		return
	}
	select {
	case r.wake <- struct{}{}:
	default: // Run is awake already
	}
}

// next takes the oldest queued event.
func (r *Recorder) next() (pending, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.queue) == 0 {
		return pending{}, false
	}
	p := r.queue[0]
	r.queue[0] = pending{}
	r.queue = r.queue[1:]
	if len(r.queue) == 0 {
		r.queue = nil // let the drained array go
	}
	return p, true
}

// Eventf is Event with a formatted message.
func (r *Recorder) Eventf(ref corev1.ObjectReference, eventType, reason, format string, args ...any) {
	r.Event(ref, eventType, reason, fmt.Sprintf(format, args...))
}

// Run writes queued events until ctx is cancelled; it returns nil then.
// Events still queued at that point are dropped.
func (r *Recorder) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.wake:
		}
		for p, ok := r.next(); ok && ctx.Err() == nil; p, ok = r.next() {
			r.write(ctx, p)
		}
	}
}

// write creates or aggregates one event, with a few tries.
func (r *Recorder) write(ctx context.Context, p pending) {
	var err error
	for try := 0; try <= r.cfg.Retries; try++ {
		if try > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(r.cfg.RetryDelay):
			}
		}
		if err = r.writeOnce(ctx, p); err == nil {
			return
		}
	}
	r.log.Warn("dropping event", "reason", p.reason, "object", p.ref.Namespace+"/"+p.ref.Name, "err", err)
}

func (r *Recorder) writeOnce(ctx context.Context, p pending) error {
	k := key{p.ref.Kind, p.ref.Namespace, p.ref.Name, string(p.ref.UID), p.ref.APIVersion, p.ref.FieldPath,
		p.typ, p.reason, p.message}
	now := metav1.NewTime(p.at)
	if el, ok := r.cache[k]; ok {
		s := el.Value.(*sent)
		patch, _ := json.Marshal(map[string]any{"count": s.count + 1, "lastTimestamp": now, "message": p.message})
		err := r.w.Patch(ctx, client.Events.In(s.ns), s.name, types.MergePatchType, patch, nil)
		switch {
		case err == nil:
			s.count++
			r.lru.MoveToFront(el)
			return nil
		case apierrors.IsNotFound(err):
			// The Event expired on the server; write it anew, keeping the count.
			r.lru.Remove(el)
			delete(r.cache, k)
			return r.create(ctx, k, p, s.count+1, s.first, now)
		default:
			return fmt.Errorf("patch event %s/%s: %w", s.ns, s.name, err)
		}
	}
	return r.create(ctx, k, p, 1, now, now)
}

func (r *Recorder) create(ctx context.Context, k key, p pending, count int32, first, last metav1.Time) error {
	ns := p.ref.Namespace
	if ns == "" {
		ns = metav1.NamespaceDefault // events about cluster-scoped objects live in "default"
	}
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Name:      p.ref.Name + "." + strconv.FormatInt(p.at.UnixNano(), 16),
			Namespace: ns,
		},
		InvolvedObject:      p.ref,
		Reason:              p.reason,
		Message:             p.message,
		Type:                p.typ,
		Source:              corev1.EventSource{Component: r.cfg.Component, Host: r.cfg.Host},
		FirstTimestamp:      first,
		LastTimestamp:       last,
		Count:               count,
		ReportingController: r.cfg.Component,
		ReportingInstance:   r.cfg.Host,
	}
	if err := r.w.Create(ctx, client.Events.In(ns), ev, nil); err != nil {
		return fmt.Errorf("create event %s/%s: %w", ns, ev.Name, err)
	}
	r.cache[k] = r.lru.PushFront(&sent{key: k, name: ev.Name, ns: ns, count: count, first: first})
	for r.lru.Len() > r.cfg.CacheSize {
		old := r.lru.Back()
		r.lru.Remove(old)
		delete(r.cache, old.Value.(*sent).key)
	}
	return nil
}

// PodRef returns the ObjectReference of a pod, and of one of its containers
// when container is not empty (fieldPath spec.containers{name}).
func PodRef(pod *corev1.Pod, container string) corev1.ObjectReference {
	ref := corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: pod.Namespace, Name: pod.Name,
		UID: pod.UID, ResourceVersion: pod.ResourceVersion}
	if container != "" {
		ref.FieldPath = containerFieldPath(pod, container)
	}
	return ref
}

func containerFieldPath(pod *corev1.Pod, name string) string {
	for _, c := range pod.Spec.InitContainers {
		if c.Name == name {
			return "spec.initContainers{" + name + "}"
		}
	}
	return "spec.containers{" + name + "}"
}

// NodeRef returns the ObjectReference Kubernetes uses for events about a
// node (the UID is the node name, as the kubelet does).
func NodeRef(name string) corev1.ObjectReference {
	return corev1.ObjectReference{Kind: "Node", Name: name, UID: types.UID(name)}
}

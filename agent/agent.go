package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"kedge.dev/kedge/agent/kubeletapi"
	"kedge.dev/kedge/agent/podcache"
	"kedge.dev/kedge/client/record"
)

// ErrMissingDependency is returned by New when a required dependency is nil.
var ErrMissingDependency = errors.New("agent dependency missing")

// Agent is the node agent. New builds it, Run runs it, Close releases it.
type Agent struct {
	cfg      Config
	rt       podRuntime
	sandbox  podSandboxes
	network  podNetwork
	api      apiClient
	events   eventRecorder
	puller   imagePuller      // nil: no registry pulls
	recorder *record.Recorder // set when the agent owns the recorder
	endpoint *kubeletapi.Server
	qos      *qosCgroups // the burstable QoS cgroup's weight (qos.go)
	log      *slog.Logger

	sysInfo    corev1.NodeSystemInfo
	readySince time.Time

	mu        sync.Mutex // guards the fields below
	workers   map[types.UID]*podWorker
	names     map[string]types.UID // "<ns>/<name>" → uid, for the log endpoint
	cache     *podcache.Cache
	apiSynced bool // a pod list from the API has been applied
	runCtx    context.Context
	wg        sync.WaitGroup // pod workers
	running   bool
	closed    bool

	logMu   sync.Mutex
	lastLog map[string]time.Time // rate limit of repeated warnings
}

// New validates cfg and builds an Agent; it starts nothing and touches no
// file.
func New(cfg Config, deps Deps) (*Agent, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Runtime == nil || deps.Sandboxes == nil || deps.Network == nil || deps.API == nil {
		return nil, fmt.Errorf("%w: Runtime, Sandboxes, Network and API are required", ErrMissingDependency)
	}
	a := &Agent{
		cfg: cfg, rt: deps.Runtime, sandbox: deps.Sandboxes, network: deps.Network, api: deps.API,
		events: deps.Events, puller: deps.Images, qos: newQOSCgroups(deps.Runtime, cfg.CgroupRoot),
		log:     cfg.Logger.With("component", "agent", "node", cfg.NodeName),
		workers: map[types.UID]*podWorker{},
		names:   map[string]types.UID{},
		lastLog: map[string]time.Time{},
	}
	if a.events == nil {
		rc := record.DefaultConfig("kubelet")
		rc.Host, rc.Logger = cfg.NodeName, cfg.Logger
		rec, err := record.New(rc, deps.API)
		if err != nil {
			return nil, fmt.Errorf("build event recorder: %w", err)
		}
		a.events, a.recorder = rec, rec
	}
	if !cfg.DisableEndpoint {
		ep, err := kubeletapi.New(kubeletapi.Config{Addr: cfg.KubeletAddr, CertFile: cfg.KubeletCertFile,
			KeyFile: cfg.KubeletKeyFile, Token: cfg.KubeletToken, Logger: cfg.Logger, Streams: streamer{a}}, logLocator{a})
		if err != nil {
			return nil, fmt.Errorf("build kubelet endpoint: %w", err)
		}
		a.endpoint = ep
	}
	return a, nil
}

// Run runs the agent until ctx ends: it opens the pod cache, restarts the
// workers of the cached pods (so pods keep running without the server),
// registers the node, and runs the pod source, relister, housekeeping and
// endpoint. It returns nil after ctx ends and every goroutine it started has
// stopped, or an error if it could not start. Run may be called once.
func (a *Agent) Run(ctx context.Context) error {
	a.mu.Lock()
	if a.running || a.closed {
		a.mu.Unlock()
		return errors.New("agent: Run called twice or after Close")
	}
	a.running = true
	a.mu.Unlock()

	if s, ok := a.network.(interface{ Setup(context.Context) error }); ok {
		if err := s.Setup(ctx); err != nil {
			return fmt.Errorf("set up pod network: %w", err)
		}
	}
	cache, err := podcache.Open(ctx, podcache.DefaultConfig(filepath.Join(a.cfg.agentDir(), "pods.db")))
	if err != nil {
		return fmt.Errorf("open pod cache: %w", err)
	}
	a.sysInfo = nodeSystemInfo(a.cfg)
	a.readySince = time.Now().UTC().Truncate(time.Second)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	a.mu.Lock()
	a.cache, a.runCtx = cache, ctx
	a.mu.Unlock()

	cached, err := cache.List(ctx)
	if err != nil {
		a.log.Warn("reading the pod cache failed; starting from the API only", "err", err)
	}
	a.adoptQOSCgroups(ctx, cached)
	for _, pod := range cached {
		a.podUpdate(pod, false)
	}

	var wg sync.WaitGroup
	goRun := func(f func(context.Context)) {
		wg.Add(1)
		go func() { defer wg.Done(); f(ctx) }()
	}
	errc := make(chan error, 1)
	if a.recorder != nil {
		goRun(func(ctx context.Context) { a.recorder.Run(ctx) })
	}
	if a.endpoint != nil {
		goRun(func(ctx context.Context) {
			if err := a.endpoint.Run(ctx); err != nil {
				errc <- err
				cancel()
			}
		})
	}
	goRun(a.runNode)
	goRun(a.runPodSource)
	goRun(a.runRelist)
	goRun(a.runHousekeeping)

	<-ctx.Done()
	wg.Wait()
	a.mu.Lock()
	a.runCtx = nil
	a.mu.Unlock()
	a.wg.Wait() // pod workers end with ctx
	a.mu.Lock()
	a.workers = map[types.UID]*podWorker{}
	a.mu.Unlock()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

// Close releases what Run left open (the pod cache) and stops the endpoint.
// Containers keep running. It is idempotent; call it after Run returned.
func (a *Agent) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil
	}
	a.closed = true
	var errs []error
	if a.endpoint != nil {
		errs = append(errs, a.endpoint.Close())
	}
	if a.cache != nil {
		errs = append(errs, a.cache.Close())
	}
	return errors.Join(errs...)
}

// podUpdate hands the latest version of a pod to its worker, starting one
// for a new pod. fromAPI stores it in the offline cache.
func (a *Agent) podUpdate(pod *corev1.Pod, fromAPI bool) {
	if pod.Spec.NodeName != a.cfg.NodeName {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.runCtx == nil || a.runCtx.Err() != nil {
		return
	}
	if fromAPI {
		if err := a.cache.Put(a.runCtx, pod); err != nil {
			a.log.Warn("caching pod failed", "pod", pod.Namespace+"/"+pod.Name, "err", err)
		}
	}
	w, ok := a.workers[pod.UID]
	if !ok {
		w = newPodWorker(a, pod)
		a.workers[pod.UID] = w
		a.wg.Add(1)
		ctx := a.runCtx // read under a.mu: Run clears it when it stops
		go func() {
			defer a.wg.Done()
			w.run(ctx)
		}()
	}
	a.names[pod.Namespace+"/"+pod.Name] = pod.UID
	w.update(pod, fromAPI)
}

// podGone tells the worker of uid that its pod is no longer in the API.
func (a *Agent) podGone(uid types.UID) {
	a.mu.Lock()
	w := a.workers[uid]
	a.mu.Unlock()
	if w != nil {
		w.markGone()
	}
}

// workerDone forgets a pod whose worker has cleaned it up.
func (a *Agent) workerDone(w *podWorker) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.workers[w.uid] == w {
		delete(a.workers, w.uid)
	}
	if key := w.key(); a.names[key] == w.uid {
		delete(a.names, key)
	}
	if a.cache != nil && a.runCtx != nil {
		if err := a.cache.Delete(a.runCtx, w.uid); err != nil {
			a.log.Warn("forgetting cached pod failed", "uid", w.uid, "err", err)
		}
	}
}

// poke wakes the worker of uid, if any.
func (a *Agent) poke(uid types.UID) {
	a.mu.Lock()
	w := a.workers[uid]
	a.mu.Unlock()
	if w != nil {
		w.wakeUp()
	}
}

// knownPods returns the UIDs that have a worker.
func (a *Agent) knownPods() (map[types.UID]bool, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[types.UID]bool, len(a.workers))
	for uid := range a.workers {
		out[uid] = true
	}
	return out, a.apiSynced
}

// logLimited logs a warning at most once a minute per key, so an
// unreachable server does not flood the log.
func (a *Agent) logLimited(key, msg string, args ...any) {
	a.logMu.Lock()
	last, seen := a.lastLog[key]
	now := time.Now()
	if seen && now.Sub(last) < time.Minute {
		a.logMu.Unlock()
		a.log.Debug(msg, args...)
		return
	}
	a.lastLog[key] = now
	a.logMu.Unlock()
	a.log.Warn(msg, args...)
}

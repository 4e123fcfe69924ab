package agent

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"

	"kedge.dev/kedge/agent/kubeletapi"
	"kedge.dev/kedge/runtime"
)

// logLocator answers the kubelet endpoint's log lookups from the runtime's
// containers.
type logLocator struct{ a *Agent }

var _ kubeletapi.LogLocator = logLocator{}

// ContainerLog finds the log of the latest (or, with previous, the one
// before) instance of a pod's container. For a running instance Done is
// closed when it exits, found by polling its status every RelistPeriod.
func (l logLocator) ContainerLog(ctx context.Context, namespace, pod, container string, previous bool) (kubeletapi.LogTarget, error) {
	a := l.a
	a.mu.Lock()
	uid, ok := a.names[namespace+"/"+pod]
	a.mu.Unlock()
	if !ok {
		return kubeletapi.LogTarget{}, fmt.Errorf("pod %s/%s on node %s: %w", namespace, pod, a.cfg.NodeName, kubeletapi.ErrNotFound)
	}
	cs, err := a.podContainers(ctx, uid)
	if err != nil {
		return kubeletapi.LogTarget{}, err
	}
	var instances []runtime.ContainerStatus
	for _, c := range cs {
		if c.Labels[LabelContainerName] == container {
			instances = append(instances, c)
		}
	}
	attempt := func(c runtime.ContainerStatus) int { n, _ := strconv.Atoi(c.Labels[LabelAttempt]); return n }
	sort.Slice(instances, func(i, j int) bool { return attempt(instances[i]) > attempt(instances[j]) })
	idx := 0
	if previous {
		idx = 1
	}
	if len(instances) <= idx {
		what := "container"
		if previous {
			what = "previous terminated container"
		}
		return kubeletapi.LogTarget{}, fmt.Errorf("%s %q in pod %q: %w", what, container, pod, kubeletapi.ErrNotFound)
	}
	inst := instances[idx]
	p := &corev1.Pod{}
	p.Namespace, p.Name, p.UID = namespace, pod, uid
	done := make(chan struct{})
	if inst.State != runtime.StateRunning {
		close(done)
	} else {
		go a.closeWhenExited(ctx, inst.ID, done)
	}
	return kubeletapi.LogTarget{Path: a.containerLogPath(p, container, attempt(inst)), Done: done}, nil
}

// closeWhenExited closes done when container id stops running, or returns
// when ctx ends.
func (a *Agent) closeWhenExited(ctx context.Context, id string, done chan struct{}) {
	t := time.NewTicker(a.cfg.RelistPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st, err := a.rt.ContainerStatus(ctx, id)
		if err != nil || st.State != runtime.StateRunning {
			close(done)
			return
		}
	}
}

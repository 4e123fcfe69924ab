package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"kedge.dev/kedge/runtime"
)

// runRelist polls the runtime every RelistPeriod and wakes the worker of
// every pod whose containers changed state (kubelet's PLEG), so exits are
// acted on within about a second.
func (a *Agent) runRelist(ctx context.Context) {
	t := time.NewTicker(a.cfg.RelistPeriod)
	defer t.Stop()
	prev := map[string]runtime.ContainerState{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		list, err := a.rt.ListContainers(ctx)
		if err != nil {
			a.logLimited("relist", "listing containers failed", "err", err)
			continue
		}
		cur := make(map[string]runtime.ContainerState, len(list))
		changed := map[types.UID]bool{}
		for _, c := range list {
			cur[c.ID] = c.State
			if prev[c.ID] != c.State {
				changed[types.UID(c.Labels[LabelPodUID])] = true
			}
		}
		prev = cur
		for uid := range changed {
			if uid != "" {
				a.poke(uid)
			}
		}
	}
}

// runHousekeeping removes, every SyncPeriod, what belongs to no pod the
// agent knows: containers, sandboxes, pod directories and log directories
// left by pods deleted while the agent was down. It waits for a first pod
// list from the API, since the offline cache alone may be incomplete.
func (a *Agent) runHousekeeping(ctx context.Context) {
	t := time.NewTicker(a.cfg.SyncPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := a.housekeeping(ctx); err != nil && ctx.Err() == nil {
			a.logLimited("housekeeping", "housekeeping failed", "err", err)
		}
	}
}

func (a *Agent) housekeeping(ctx context.Context) error {
	// List first, then read the known pods: a pod whose worker starts in
	// between has no container in the list yet.
	list, err := a.rt.ListContainers(ctx)
	if err != nil {
		return err
	}
	sandboxes, err := a.sandbox.List(ctx)
	if err != nil {
		return err
	}
	podDirs, _ := os.ReadDir(filepath.Join(a.cfg.agentDir(), "pods"))
	logDirs, _ := os.ReadDir(a.cfg.PodLogDir)
	known, synced := a.knownPods()
	if !synced {
		return nil
	}
	var errs []error
	for _, c := range list {
		uid := c.Labels[LabelPodUID]
		if uid == "" || known[types.UID(uid)] {
			continue
		}
		a.log.Info("removing container of unknown pod", "id", c.ID, "uid", uid)
		if c.State == runtime.StateRunning {
			if err := a.rt.StopContainer(ctx, c.ID, 10*time.Second); err != nil && !errors.Is(err, runtime.ErrContainerNotFound) {
				errs = append(errs, err)
			}
		}
		if err := a.rt.RemoveContainer(ctx, c.ID); err != nil {
			errs = append(errs, err)
		}
	}
	for _, uid := range sandboxes {
		if known[types.UID(uid)] {
			continue
		}
		a.log.Info("removing sandbox of unknown pod", "uid", uid)
		if err := a.network.Detach(ctx, uid, ""); err != nil {
			errs = append(errs, err)
		}
		if err := a.sandbox.Remove(ctx, uid); err != nil {
			errs = append(errs, err)
		}
	}
	for _, d := range podDirs {
		if known[types.UID(d.Name())] {
			continue
		}
		dir := filepath.Join(a.cfg.agentDir(), "pods", d.Name())
		if err := unmountUnder(dir); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
		}
	}
	for _, d := range logDirs {
		// <ns>_<pod>_<uid>; namespaces and names cannot hold "_".
		parts := strings.Split(d.Name(), "_")
		if len(parts) != 3 || known[types.UID(parts[2])] {
			continue
		}
		if err := os.RemoveAll(filepath.Join(a.cfg.PodLogDir, d.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

package runtime

import (
	"errors"
	"os"
	"os/signal"
	"path/filepath"

	"time"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/system"
	"golang.org/x/sys/unix"
)

// monitorPoll is how often running containers are checked besides on
// SIGCHLD: adopted containers are not our children and send none.
const monitorPoll = time.Second

// logDrainTimeout bounds the wait for a dead container's output to be
// copied; only a process outside the container holding its FIFO open could
// make it longer.
const logDrainTimeout = 2 * time.Second

// poke asks the monitor to look at the containers now.
func (r *Runtime) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// monitor notices containers that ended. It owns no container state; it
// takes each container's lock to record the end.
func (r *Runtime) monitor() {
	defer r.wg.Done()
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, unix.SIGCHLD)
	defer signal.Stop(sigs)
	tick := time.NewTicker(monitorPoll)
	defer tick.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-sigs:
		case <-r.wake:
		case <-tick.C:
		}
		r.reap()
	}
}

// reap records the end of every running container whose init is gone.
func (r *Runtime) reap() {
	r.mu.Lock()
	cs := make([]*container, 0, len(r.containers))
	for _, c := range r.containers {
		cs = append(cs, c)
	}
	r.mu.Unlock()
	for _, c := range cs {
		c.mu.Lock()
		if !c.removed && c.h.State == StateRunning {
			if code, known, ended := r.waitInit(c.h); ended {
				r.finish(c, code, known)
			}
		}
		c.mu.Unlock()
	}
}

// recordWait bounds how long the end of a container that is not our child
// waits for the exit recorder's record: the recorder writes it within
// milliseconds of the exit, but it may be scheduled after us.
const recordWait = time.Second

// waitInit checks whether h's init has ended, with its exit code: from
// wait(2) for our own child, from the exit recorder for the others.
func (r *Runtime) waitInit(h *handle) (code int, known, ended bool) {
	code, known, ended = waitInit(h.Pid, h.PidStart)
	if !ended || known || r.exits == nil {
		return code, known, ended
	}
	for deadline := time.Now().Add(recordWait); ; time.Sleep(10 * time.Millisecond) {
		if ws, ok := r.exits.Lookup(h.Pid, h.PidStart); ok {
			switch {
			case ws.Exited():
				return ws.ExitStatus(), true, true
			case ws.Signaled():
				return 128 + int(ws.Signal()), true, true
			}
		}
		if time.Now().After(deadline) {
			return code, known, ended
		}
	}
}

// waitInit checks whether the init with pid (started at start ticks) has
// ended. For our own child it reaps it and returns its exit code; for an
// adopted container (not our child) the code is unknown.
func waitInit(pid int, start uint64) (code int, known, ended bool) {
	var ws unix.WaitStatus
	wpid, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
	switch {
	case err == nil && wpid == pid:
		switch {
		case ws.Exited():
			return ws.ExitStatus(), true, true
		case ws.Signaled():
			return 128 + int(ws.Signal()), true, true
		}
		return 0, false, false // stopped or continued
	case err == nil:
		return 0, false, false // our child, still running
	}
	// Not our child (ECHILD): look at /proc.
	st, err := system.Stat(pid)
	if err != nil || st.StartTime != start || st.State == system.Zombie || st.State == system.Dead {
		return 255, false, true
	}
	return 0, false, false
}

// finish records a container's end: drains its output, reads its OOM kill
// count, destroys its libcontainer state and cgroup, and saves the handle.
// Callers hold c.mu.
func (r *Runtime) finish(c *container, code int, known bool) {
	id := c.h.Spec.ID
	c.drainLogs(logDrainTimeout)
	reason := ReasonCompleted
	if code != 0 {
		reason = ReasonError
	}
	if !known {
		reason = ReasonUnknown
		c.h.Message = "the container ended while no runtime was watching it; its exit code is lost"
	}
	if kills, err := oomKills(r.mounts, c.h.Cgroup); err == nil && kills > 0 {
		reason = ReasonOOMKilled
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		r.log.Debug("reading OOM kills", "id", id, "err", err)
	}
	c.h.State, c.h.ExitCode, c.h.Reason, c.h.FinishedAt = StateExited, code, reason, time.Now()
	if r.exits != nil {
		r.exits.Forget(c.h.Pid)
	}
	if err := r.destroy(c); err != nil {
		r.log.Warn("destroying exited container", "id", id, "err", err)
	}
	if err := c.h.save(c.dir); err != nil {
		r.log.Warn("saving container handle", "id", id, "err", err)
	}
	if c.exited != nil {
		close(c.exited)
	}
	r.log.Debug("container exited", "id", id, "code", code, "reason", reason)
}

// reload loads every container handle; running containers whose init is
// still alive are adopted (their logs are read again), the others are
// recorded as exited with an unknown exit code.
func (r *Runtime) reload() error {
	ents, err := os.ReadDir(r.dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(r.dir, e.Name())
		h, err := loadHandle(dir)
		if err != nil {
			// A create that crashed before saving its handle: leave it for
			// an operator rather than guess.
			r.log.Warn("skipping container directory without a readable handle", "dir", dir, "err", err)
			continue
		}
		c := &container{dir: dir, h: h}
		r.containers[h.Spec.ID] = c
		if h.State != StateRunning {
			continue
		}
		c.exited = make(chan struct{})
		lc, err := libcontainer.Load(r.cfg.StateDir, h.Spec.ID)
		if err == nil {
			if st, serr := lc.Status(); serr == nil && st == libcontainer.Running {
				c.lc = lc
			}
		}
		if code, known, ended := r.waitInit(h); ended || c.lc == nil {
			if !ended {
				code, known = 255, false
			}
			r.finish(c, code, known)
			continue
		}
		if err := r.attachLogs(c); err != nil {
			r.log.Warn("re-attaching container logs", "id", h.Spec.ID, "err", err)
		}
		if r.exits != nil {
			// Started by a kedge without a recorder, or the registration
			// was lost with /run: from now on its end is recorded.
			if err := r.exits.Register(h.Pid, h.PidStart, h.Spec.ID); err != nil {
				r.log.Warn("registering container with the exit recorder", "id", h.Spec.ID, "err", err)
			}
			r.takeHeldFiles(c)
		}
		r.log.Info("adopted running container", "id", h.Spec.ID, "pid", h.Pid)
	}
	return nil
}

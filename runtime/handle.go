package runtime

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// handleVersion is bumped when the handle's meaning changes, so that a
// newer runtime can tell how to read an older one's handles.
const handleVersion = 1

// handle is the small persisted record of one container: enough to report
// its status and to clean it up after the process restarts, and (for a
// running container) to adopt it.
type handle struct {
	Version  int            `json:"version"`
	Spec     ContainerSpec  `json:"spec"`
	ImageID  string         `json:"imageID"`
	ChainIDs []string       `json:"chainIDs"`
	Cgroup   string         `json:"cgroup"` // absolute cgroup path
	State    ContainerState `json:"state"`
	Pid      int            `json:"pid,omitempty"`
	// PidStart is the init's start time in clock ticks since boot, so that
	// a reused PID is not mistaken for the container.
	PidStart   uint64    `json:"pidStart,omitempty"`
	ExitCode   int       `json:"exitCode"`
	Reason     string    `json:"reason,omitempty"`
	Message    string    `json:"message,omitempty"`
	CreatedAt  time.Time `json:"createdAt"`
	StartedAt  time.Time `json:"startedAt,omitzero"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
}

func (h *handle) status() ContainerStatus {
	labels := make(map[string]string, len(h.Spec.Labels))
	for k, v := range h.Spec.Labels {
		labels[k] = v
	}
	st := ContainerStatus{
		ID: h.Spec.ID, Labels: labels, State: h.State, ExitCode: h.ExitCode,
		Reason: h.Reason, Message: h.Message,
		CreatedAt: h.CreatedAt, StartedAt: h.StartedAt, FinishedAt: h.FinishedAt,
		Image: h.Spec.Image, ImageID: h.ImageID,
	}
	if h.State == StateRunning {
		st.Pid = h.Pid
	}
	return st
}

const handleFile = "handle.json"

// save writes the handle atomically into dir.
func (h *handle) save(dir string) error {
	h.Version = handleVersion
	b, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, handleFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("save container handle: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, handleFile)); err != nil {
		return fmt.Errorf("save container handle: %w", err)
	}
	return nil
}

func loadHandle(dir string) (*handle, error) {
	b, err := os.ReadFile(filepath.Join(dir, handleFile))
	if err != nil {
		return nil, err
	}
	var h handle
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("parse container handle %s: %w", dir, err)
	}
	if h.Version > handleVersion {
		return nil, fmt.Errorf("container handle %s has version %d, newer than %d", dir, h.Version, handleVersion)
	}
	return &h, nil
}

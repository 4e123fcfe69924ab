package podsync

import (
	"sort"
	"time"
)

// State is the state of one container instance as the runtime reports it.
type State string

// Container states, as in the runtime.
const (
	StateCreated State = "created"
	StateRunning State = "running"
	StateExited  State = "exited"
	StateUnknown State = "unknown"
)

// Container is one observed instance of a pod's container: one attempt of it.
type Container struct {
	ID      string // runtime ID, <podUID>-<name>-<attempt>
	Name    string // the spec container's name
	Attempt int    // 0 for the first run, +1 per restart
	// Hash is the spec hash the instance was created from (HashContainer);
	// a running instance whose hash differs from the spec's is restarted.
	Hash     string
	State    State
	ExitCode int
	// Reason and Message describe how an exited instance ended ("OOMKilled",
	// "StartError"; Message is the termination message).
	Reason, Message                  string
	CreatedAt, StartedAt, FinishedAt time.Time
	ImageID                          string
}

// Observed is what the agent knows of a pod on the node.
type Observed struct {
	// SandboxReady is true once the pod's namespaces exist and its network is
	// attached (in this agent's lifetime).
	SandboxReady bool
	// PodIP is the pod's address, empty until the network is attached.
	PodIP string
	// Containers are all instances of the pod's containers in the runtime,
	// in any order.
	Containers []Container
}

// instances returns the instances of container name, latest attempt first.
func (o Observed) instances(name string) []Container {
	var out []Container
	for _, c := range o.Containers {
		if c.Name == name {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Attempt > out[j].Attempt })
	return out
}

// latest returns the latest instance of container name, or nil.
func (o Observed) latest(name string) *Container {
	in := o.instances(name)
	if len(in) == 0 {
		return nil
	}
	return &in[0]
}

// Waiting is why a container that is not running waits, as the agent found
// out while acting (ErrImageNeverPull, CreateContainerConfigError,
// CrashLoopBackOff).
type Waiting struct {
	Reason, Message string
}

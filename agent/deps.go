package agent

import (
	"context"
	"net"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"kedge.dev/kedge/client"
	"kedge.dev/kedge/runtime"
	"kedge.dev/kedge/runtime/sandbox"
)

// imageLookup finds stored images (runtime.Runtime). Image returns an error
// wrapping runtime.ErrImageNotPresent when no image matches.
type imageLookup interface {
	Image(ctx context.Context, ref string) (runtime.Image, error)
}

// containerLifecycle creates, starts, stops and removes containers
// (runtime.Runtime). StartContainer's error wraps runtime.ErrStartFailed when
// the process could not start; the container is then exited with Reason
// StartError. StopContainer sends TERM, waits grace, then KILL.
type containerLifecycle interface {
	CreateContainer(ctx context.Context, spec runtime.ContainerSpec) error
	StartContainer(ctx context.Context, id string) error
	StopContainer(ctx context.Context, id string, grace time.Duration) error
	RemoveContainer(ctx context.Context, id string) error
}

// containerObserver reports container states (runtime.Runtime).
// ContainerStatus wraps runtime.ErrContainerNotFound for an unknown ID.
type containerObserver interface {
	ContainerStatus(ctx context.Context, id string) (runtime.ContainerStatus, error)
	ListContainers(ctx context.Context) ([]runtime.ContainerStatus, error)
}

// podCgroups keeps pod-level cgroups (runtime.Runtime). EnsureCgroup
// creates the cgroup and applies the limits, idempotently; RemoveCgroup of
// a missing cgroup is not an error and fails while containers remain.
type podCgroups interface {
	EnsureCgroup(ctx context.Context, path string, res runtime.Resources) error
	RemoveCgroup(ctx context.Context, path string) error
}

// containerStats samples a running container's usage (runtime.Runtime).
type containerStats interface {
	Stats(ctx context.Context, id string) (runtime.ContainerStats, error)
}

// podRuntime is everything the agent needs of the container runtime. All
// methods must be safe for concurrent use (pod workers call them in
// parallel).
type podRuntime interface {
	imageLookup
	containerLifecycle
	containerObserver
	podCgroups
	containerStats
}

// podSandboxes keeps pods' namespaces (sandbox.Manager). Ensure is
// idempotent and adopts an existing sandbox; Remove of an unknown pod is not
// an error; List returns the pod UIDs that have a sandbox.
type podSandboxes interface {
	Ensure(ctx context.Context, spec sandbox.Spec) (sandbox.Sandbox, error)
	Remove(ctx context.Context, podUID string) error
	List(ctx context.Context) ([]string, error)
}

// podNetwork attaches pods to the node's pod network (podnet.Network).
// Attach and Detach are idempotent and keyed by pod UID.
type podNetwork interface {
	Attach(ctx context.Context, podUID, netnsPath string) (net.IP, error)
	Detach(ctx context.Context, podUID, netnsPath string) error
}

// nodeAPI is what node registration needs of the API (client.Client).
type nodeAPI interface {
	Get(ctx context.Context, r client.Resource, name string, out any) error
	Create(ctx context.Context, r client.Resource, obj client.Object, out any) error
	Update(ctx context.Context, r client.Resource, obj client.Object, out any) error
	Patch(ctx context.Context, r client.Resource, name string, pt types.PatchType, data []byte, out any, subresource ...string) error
}

// podAPI is what the pod source and workers need of the API (client.Client).
type podAPI interface {
	List(ctx context.Context, r client.Resource, opts metav1.ListOptions, out any) error
	Watch(ctx context.Context, r client.Resource, opts metav1.ListOptions, newObject func() any) (<-chan client.WatchEvent, error)
	Patch(ctx context.Context, r client.Resource, name string, pt types.PatchType, data []byte, out any, subresource ...string) error
	Delete(ctx context.Context, r client.Resource, name string, opts metav1.DeleteOptions) error
}

// apiClient is the API client the agent is given: a *client.Client.
type apiClient interface {
	nodeAPI
	podAPI
}

// eventRecorder posts events (record.Recorder). Event must not block.
type eventRecorder interface {
	Event(ref corev1.ObjectReference, eventType, reason, message string)
}

// Deps are the agent's collaborators. Runtime, Sandboxes, Network and API
// are required; Images and Events are optional (the agent then runs its own
// record.Recorder on API).
type Deps struct {
	Runtime   podRuntime
	Sandboxes podSandboxes
	Network   podNetwork
	API       apiClient
	Events    eventRecorder
	// Images pulls images from registries; optional: without it a missing
	// image waits with ErrImageNeverPull whatever the pull policy.
	Images imagePuller
}

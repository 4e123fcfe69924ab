package runtime

import (
	"errors"
	"time"

	"kedge.dev/kedge/runtime/images"
)

// Errors checked with errors.Is.
var (
	// ErrImageNotPresent: no stored image matches the reference.
	ErrImageNotPresent = images.ErrImageNotPresent
	// ErrContainerNotFound: no container has the ID.
	ErrContainerNotFound = errors.New("container not found")
	// ErrContainerExists: CreateContainer with an ID already in use.
	ErrContainerExists = errors.New("container already exists")
	// ErrInvalidSpec: the ContainerSpec cannot be run as given.
	ErrInvalidSpec = errors.New("invalid container spec")
	// ErrInvalidState: the operation does not fit the container's state
	// (for example starting a container twice).
	ErrInvalidState = errors.New("invalid container state")
	// ErrStartFailed: the container's process could not be started (for
	// example a missing executable); its status then has Reason StartError.
	ErrStartFailed = errors.New("container start failed")
	// ErrClosed: the Runtime was closed.
	ErrClosed = errors.New("runtime closed")
	// ErrRunAsNonRoot: the spec asks for a non-root user but the process
	// would run as root (Kubernetes reports CreateContainerConfigError).
	ErrRunAsNonRoot = errors.New("container has runAsNonRoot and image will run as root")
	// ErrSeccompUnsupported: the spec asks for a seccomp profile this
	// runtime cannot load (a Localhost profile, or a binary built without
	// the seccomp tag).
	ErrSeccompUnsupported = errors.New("seccomp profile not supported")
)

// Image describes a stored image; see images.Image.
type Image = images.Image

// Mount is a bind mount of a host path into the container.
type Mount struct {
	Source, Destination string
	ReadOnly            bool
}

// Resources are cgroup limits; zero values leave a limit unset.
type Resources struct {
	CPUShares   uint64 // cpu.shares (relative weight, 2–262144)
	CPUQuota    int64  // cpu.cfs_quota_us, microseconds per period
	CPUPeriod   uint64 // cpu.cfs_period_us, microseconds
	MemoryLimit int64  // bytes
	PidsLimit   int64  // maximum number of tasks
}

// Seccomp profiles of a Security.
const (
	// SeccompUnconfined runs without a seccomp filter (Kubernetes' default).
	SeccompUnconfined = "Unconfined"
	// SeccompRuntimeDefault applies the runtime's default profile (the
	// same allow list as Docker's and containerd's; see runtime/seccomp).
	SeccompRuntimeDefault = "RuntimeDefault"
)

// Security is a container's security context, already resolved from the
// pod's and the container's securityContext by the caller.
type Security struct {
	// RunAsUser and RunAsGroup override the image's user and group when
	// set.
	RunAsUser, RunAsGroup *int64
	// RunAsNonRoot refuses to create a container whose process would run
	// with UID 0 (ErrRunAsNonRoot).
	RunAsNonRoot bool
	// SupplementalGroups are added to the process's groups (after those of
	// the image user's /etc/group).
	SupplementalGroups []int64
	// ReadOnlyRootfs mounts the root filesystem read-only.
	ReadOnlyRootfs bool
	// Privileged gives every capability and every host device, and
	// removes the masked and read-only /proc paths.
	Privileged bool
	// CapAdd and CapDrop change the default capability set; names with or
	// without "CAP_", case-insensitive; "ALL" means every capability.
	// Drops apply before adds, as in Kubernetes.
	CapAdd, CapDrop []string
	// NoNewPrivileges sets no_new_privs (allowPrivilegeEscalation: false).
	NoNewPrivileges bool
	// Seccomp is "" or SeccompUnconfined (no filter), or
	// SeccompRuntimeDefault. Anything else fails with ErrSeccompUnsupported.
	Seccomp string
	// OOMScoreAdj is the process's oom_score_adj when set.
	OOMScoreAdj *int
}

// ContainerSpec describes a container to create.
type ContainerSpec struct {
	// ID is chosen by the caller, unique on the node, made of letters,
	// digits and "_+-.".
	ID string
	// Image is a reference or image ID of a stored image.
	Image string
	// Command and Args follow Kubernetes: Command replaces the image's
	// Entrypoint (and drops its Cmd), Args replace the image's Cmd.
	Command, Args []string
	// Env is a list of K=V applied over the image's Env.
	Env []string
	// WorkingDir overrides the image's working directory.
	WorkingDir string
	// Hostname is set in the container's UTS namespace when not empty.
	Hostname string
	// NetNS, IPCNS, UTSNS are paths of namespaces to join. NetNS "" is the
	// host network; IPCNS or UTSNS "" is a new private namespace.
	NetNS, IPCNS, UTSNS string
	// Mounts are bind mounts, applied after the default mounts.
	Mounts []Mount
	// Resources are the container's cgroup limits.
	Resources Resources
	// Security is the container's security context.
	Security Security
	// CgroupParent is the absolute cgroup path under which the container's
	// cgroup (CgroupParent/ID) is made, e.g. /kedge/pods/<uid>; "" means
	// Config.CgroupRoot.
	CgroupParent string
	// LogPath is the CRI-format log file for stdout and stderr; "" discards
	// the output.
	LogPath string
	// Labels are kept with the container and returned in its status.
	Labels map[string]string
	// Stdin keeps a standard input open for Attach (Kubernetes' stdin);
	// without it the process reads EOF from /dev/null.
	Stdin bool
	// StdinOnce closes the standard input (the process reads EOF) when the
	// first Attach that fed it ends (Kubernetes' stdinOnce; CRI's
	// StdinOnce). Until then the runtime holds it open, so a runtime that
	// stops before that first Attach closes it too. It applies to Stdin
	// without TTY only: a terminal's input is never closed (as with
	// containerd and Docker).
	StdinOnce bool
	// TTY runs the process on a pseudo-terminal (Kubernetes' tty); its
	// output is logged as stdout.
	TTY bool
}

// ContainerState is the lifecycle state of a container.
type ContainerState string

// Container states.
const (
	StateCreated ContainerState = "created"
	StateRunning ContainerState = "running"
	StateExited  ContainerState = "exited"
	StateUnknown ContainerState = "unknown"
)

// Reasons of an exited container.
const (
	ReasonCompleted  = "Completed"
	ReasonError      = "Error"
	ReasonOOMKilled  = "OOMKilled"
	ReasonStartError = "StartError"
	// ReasonUnknown: the container ended while no runtime watched it.
	ReasonUnknown = "Unknown"
)

// ContainerStatus is what the runtime knows about a container.
type ContainerStatus struct {
	ID       string
	Labels   map[string]string
	State    ContainerState
	Pid      int // host PID of the container's init while running
	ExitCode int
	Reason   string // Completed, Error, OOMKilled, StartError, Unknown
	Message  string
	// CreatedAt, StartedAt and FinishedAt are zero until they happen.
	CreatedAt, StartedAt, FinishedAt time.Time
	// Image is the reference the spec gave; ImageID the image's ID.
	Image, ImageID string
}

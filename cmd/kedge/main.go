// Command kedge is the whole of kedge in one binary: the server (store, API,
// controllers and the local node's agent), the container init that
// libcontainer re-executes, and the operator's CLI verbs.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"kedge.dev/kedge/server/registry"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// kubernetesVersion is the Kubernetes API version kedge's types come from;
// kubectl compares it against its own for the skew warning.
const kubernetesVersion = registry.KubernetesVersion

// errUsage marks a command-line mistake: the usage has been printed already.
var errUsage = errors.New("usage")

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"server", "run a kedge server: store, API server, controllers and this node's agent", runServer},
		{"agent", "run an agent-only node: this node's pods, for a cluster whose servers run elsewhere", runAgent},
		{"kubeconfig", "print the admin kubeconfig of a server's data dir", runKubeconfig},
		{"image", "manage images on this node: import, ls, rm", runImage},
		{"store", "back up or restore the cluster store: backup, restore", runStore},
		{"version", "print kedge's version", runVersion},
	}
}

// libcontainer re-executes this binary as the container's init. Its Init
// locks the goroutine to its thread and at the end execs the container's
// process from there, so it runs in an init function, as runc's does: the
// runtime keeps the main goroutine on the main thread until main starts.
// Called from main, the goroutine could have moved to another thread first;
// an exec from a thread other than the thread-group leader makes the kernel
// end the leader, and the exit recorder, which already watched the
// container's PID, recorded that as the container's exit (status 0 instead
// of the real one; TestAgentSIGKILL caught it once in CI).
func init() {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		containerInit() // never returns: it execs or exits
	}
}

func main() {
	// Heap profiling samples an allocation every 512 KiB and keeps a
	// 1.4 MB hash of the sampled stacks, most of it resident once a
	// long-running process has sampled a few hundred stacks (0.8 MiB of each
	// store member's RSS in BenchmarkStoreCluster). Nobody reads those
	// profiles unless --debug-addr serves them, which turns it back on.
	runtime.MemProfileRate = 0
	if len(os.Args) == 3 && os.Args[1] == exitRecorderCommand {
		// The runtime starts this binary as its exit recorder.
		os.Exit(runExitRecorder(os.Args[2]))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintf(os.Stderr, "kedge: %v\n", err)
		}
		os.Exit(1)
	}
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "kedge: unknown command %q\n\n", args[0])
	usage(stderr)
	return errUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "kedge — Kubernetes for edge boxes, in one binary.\n\nUsage: kedge <command> [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'kedge <command> -h' for a command's flags.")
}

func runVersion(_ context.Context, _ []string, stdout, _ io.Writer) error {
	fmt.Fprintf(stdout, "kedge %s (Kubernetes API %s)\n", version, kubernetesVersion)
	return nil
}

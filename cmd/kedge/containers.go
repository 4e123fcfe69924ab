package main

import (
	"flag"
	"fmt"

	"k8s.io/apimachinery/pkg/api/resource"

	"kedge.dev/kedge/runtime"
	"kedge.dev/kedge/runtime/logs"
)

// containerOptions are the node's container settings (kubelet's names).
type containerOptions struct {
	// ContainerLogMaxSize is the size at which a container's log file is
	// rotated, a quantity ("10Mi"); "0" turns rotation off.
	ContainerLogMaxSize string `json:"containerLogMaxSize"`
	// ContainerLogMaxFiles is how many files of one container's log are
	// kept, the current one included.
	ContainerLogMaxFiles int `json:"containerLogMaxFiles"`
	// PodPidsLimit is the most processes one pod may run; -1 for no limit.
	PodPidsLimit int64 `json:"podPidsLimit"`
}

func defaultContainerOptions() containerOptions {
	return containerOptions{ContainerLogMaxSize: "10Mi", ContainerLogMaxFiles: logs.DefaultMaxFiles, PodPidsLimit: 4096}
}

func (o *containerOptions) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.ContainerLogMaxSize, "container-log-max-size", o.ContainerLogMaxSize, "size at which a container log file is rotated (quantity, 0 = never)")
	fs.IntVar(&o.ContainerLogMaxFiles, "container-log-max-files", o.ContainerLogMaxFiles, "log files kept per container, the current one included")
	fs.Int64Var(&o.PodPidsLimit, "pod-pids-limit", o.PodPidsLimit, "most processes one pod may run (-1: no limit)")
}

// logMaxSize parses ContainerLogMaxSize.
func (o containerOptions) logMaxSize() (int64, error) {
	q, err := resource.ParseQuantity(o.ContainerLogMaxSize)
	if err != nil || q.Sign() < 0 {
		return 0, fmt.Errorf("--container-log-max-size %q: a size like 10Mi is needed", o.ContainerLogMaxSize)
	}
	return q.Value(), nil
}

// validate checks the options.
func (o containerOptions) validate() error {
	if _, err := o.logMaxSize(); err != nil {
		return err
	}
	if o.ContainerLogMaxFiles < 1 {
		return fmt.Errorf("--container-log-max-files %d: at least 1", o.ContainerLogMaxFiles)
	}
	if o.PodPidsLimit == 0 || o.PodPidsLimit < -1 {
		return fmt.Errorf("--pod-pids-limit %d: a positive number, or -1 for no limit", o.PodPidsLimit)
	}
	return nil
}

// applyRuntime sets the runtime's log rotation (validate first).
func (o containerOptions) applyRuntime(cfg *runtime.Config) {
	cfg.LogMaxSize, _ = o.logMaxSize()
	cfg.LogMaxFiles = o.ContainerLogMaxFiles
}

package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime/debug"

	"golang.org/x/sync/errgroup"

	"kedge.dev/kedge/agent"
	"kedge.dev/kedge/client"
	"kedge.dev/kedge/netpolicy/podnet"
	"kedge.dev/kedge/runtime"
	"kedge.dev/kedge/runtime/sandbox"
)

// nodeSettings are what the node part of kedge (runtime, images, pod
// sandboxes and network, agent) is told; `kedge server` and `kedge agent`
// fill them from their flags.
type nodeSettings struct {
	NodeName, DataDir, RunDir, CgroupRoot string
	KubeletListen, AdvertiseAddress       string
	PodCIDR, Bridge, Registries           string
	ImageGCHigh, ImageGCLow               int
	Containers                            containerOptions
	// ServerNode marks a node that also runs a server.
	ServerNode bool
	// KubeletToken is what the API server presents to this node's
	// kubelet endpoint.
	KubeletToken string
	Version      string
}

// node is the running node part.
type node struct {
	agent   *agent.Agent
	imageGC *runtime.ImageGC
	closers []func()
}

// startNode opens the runtime (importing air-gap images), the puller, pod
// sandboxes, the pod network and the agent, which talks to the API through
// api. Close releases what it opened, also after a failure half way.
func startNode(ctx context.Context, ns nodeSettings, api *client.Client, log *slog.Logger) (n *node, err error) {
	n = &node{}
	defer func() {
		if err != nil {
			n.close()
		}
	}()
	rt, err := openRuntime(ns.DataDir, ns.RunDir, ns.CgroupRoot, log, ns.Containers.applyRuntime,
		func(rc *runtime.Config) {
			// Exit codes of containers that end while this process is down
			// (an upgrade, a crash) or after it adopted them.
			if exe, err := selfPath(); err == nil {
				rc.ExitRecorder = []string{exe, exitRecorderCommand}
			}
			rc.ExitDir = filepath.Join(ns.RunDir, "exits")
		})
	if err != nil {
		return n, err
	}
	n.closers = append(n.closers, func() { rt.Close() })
	importAirGap(ctx, rt, filepath.Join(ns.DataDir, "images"), log)
	puller, err := openPuller(rt, registriesPath(ns.Registries, ns.DataDir), log)
	if err != nil {
		return n, err
	}
	n.closers = append(n.closers, func() { puller.Close() })
	gccfg := runtime.DefaultImageGCConfig()
	gccfg.HighPercent, gccfg.LowPercent = ns.ImageGCHigh, ns.ImageGCLow
	if n.imageGC, err = runtime.NewImageGC(rt, gccfg); err != nil {
		return n, err
	}

	sbcfg := sandbox.DefaultConfig()
	sbcfg.Dir = filepath.Join(ns.RunDir, "sandboxes")
	sbcfg.Logger = log
	sandboxes, err := sandbox.New(sbcfg)
	if err != nil {
		return n, fmt.Errorf("pod sandboxes: %w", err)
	}
	ncfg := podnet.DefaultConfig()
	ncfg.BridgeName = ns.Bridge
	ncfg.PodCIDR = ns.PodCIDR
	ncfg.StateDir = filepath.Join(ns.DataDir, "podnet")
	ncfg.Logger = log
	network, err := podnet.New(ncfg)
	if err != nil {
		return n, fmt.Errorf("pod network: %w", err)
	}
	n.closers = append(n.closers, func() { network.Close() })

	acfg := agent.Config{
		NodeName:        ns.NodeName,
		DataDir:         ns.DataDir,
		PodLogDir:       filepath.Join(ns.DataDir, "logs", "pods"),
		KubeletAddr:     ns.KubeletListen,
		KubeletCertFile: filepath.Join(ns.DataDir, "tls", "kubelet.crt"),
		KubeletKeyFile:  filepath.Join(ns.DataDir, "tls", "kubelet.key"),
		KubeletToken:    ns.KubeletToken,
		NodeIP:          ns.AdvertiseAddress,
		ServerNode:      ns.ServerNode,
		CgroupRoot:      ns.CgroupRoot,
		PodPidsLimit:    ns.Containers.PodPidsLimit,
		Version:         ns.Version,
		KubeletVersion:  kubernetesVersion,
		Logger:          log,
	}
	if n.agent, err = agent.New(acfg, agent.Deps{Runtime: rt, Sandboxes: sandboxes, Network: network, API: api, Images: puller}); err != nil {
		return n, fmt.Errorf("agent: %w", err)
	}
	n.closers = append(n.closers, func() { n.agent.Close() })
	// Starting leaves garbage behind (on a server ~10 MiB: the store's
	// replay, the OpenAPI documents; air-gap image imports). The runtime
	// would give those pages back to the OS only minutes later, and until
	// then they count in kedge's RSS on a box with little memory.
	debug.FreeOSMemory()
	return n, nil
}

// run adds the node's loops to g.
func (n *node) run(ctx context.Context, g *errgroup.Group) {
	g.Go(func() error { return n.agent.Run(ctx) })
	g.Go(func() error { return n.imageGC.Run(ctx) })
}

// close releases in the reverse order of opening.
func (n *node) close() {
	for i := len(n.closers) - 1; i >= 0; i-- {
		n.closers[i]()
	}
	n.closers = nil
}

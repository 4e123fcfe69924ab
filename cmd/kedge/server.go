package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	goruntime "runtime"
	"runtime/debug"
	"strings"
	"syscall"

	"golang.org/x/sync/errgroup"
	apiversion "k8s.io/apimachinery/pkg/version"

	"kedge.dev/kedge/client"
	"kedge.dev/kedge/internal/gcheadroom"
	"kedge.dev/kedge/raftstore/raftkv"
	"kedge.dev/kedge/server"
	"kedge.dev/kedge/server/auth"
	"kedge.dev/kedge/server/cluster"
	"kedge.dev/kedge/server/pki"
)

// runServer starts everything a single-node cluster needs, in order, and
// stops it on SIGINT/SIGTERM. Failures before serving are reported as one
// line by main.
func runServer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && (args[0] == "members" || args[0] == "remove") {
		return runMembers(ctx, args[0], args[1:], stdout, stderr)
	}
	cfg, err := parseServerFlags(args, stderr)
	if err != nil {
		return err
	}
	level, _ := cfg.level()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg.applyTimerSlack(log)

	if err := checkWritable(cfg.DataDir); err != nil {
		return err
	}
	if err := checkWritable(cfg.RunDir); err != nil {
		return err
	}
	if err := cfg.clusterOptions.fetchBundle(ctx, cfg.DataDir, log); err != nil {
		return err
	}
	ca, err := pki.LoadOrCreateCA(filepath.Join(cfg.DataDir, "tls"), "kedge-ca")
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP(cfg.AdvertiseAddress)}
	if h, _, _ := net.SplitHostPort(cfg.Listen); net.ParseIP(h) != nil && !net.ParseIP(h).IsUnspecified() {
		ips = append(ips, net.ParseIP(h))
	}
	servingCert, err := ca.EnsureLeaf(filepath.Join(cfg.DataDir, "tls"), "server", pki.LeafSpec{
		CommonName: "kedge", Server: true, IPs: ips,
		DNSNames: uniq("localhost", cfg.NodeName, host, "kubernetes", "kubernetes.default", "kubernetes.default.svc"),
	})
	if err != nil {
		return err
	}
	if _, err := ca.EnsureLeaf(filepath.Join(cfg.DataDir, "tls"), "kubelet", pki.LeafSpec{
		CommonName: "system:node:" + cfg.NodeName, Server: true, IPs: ips, DNSNames: uniq("localhost", cfg.NodeName, host),
	}); err != nil {
		return err
	}
	tokens, err := auth.LoadOrCreate(filepath.Join(cfg.DataDir, "tokens"))
	if err != nil {
		return err
	}
	joinTokenPath := filepath.Join(cfg.DataDir, "tokens", joinTokenFile)
	joinToken, err := cluster.LoadOrCreateToken(joinTokenPath, ca.CertPEM)
	if err != nil {
		return err
	}
	peer, err := peerTLS(ca, cfg.DataDir, cfg.NodeName)
	if err != nil {
		return err
	}

	// Bind the API port before opening the store so a busy port is one
	// clear line and not a half-started node.
	lis, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (Try: stop the other process or choose another --listen address)", cfg.Listen, unwrapSyscall(err))
	}
	defer lis.Close()
	debugLis, err := listenDebug(cfg.DebugAddr)
	if err != nil {
		return err
	}
	if debugLis != nil {
		defer debugLis.Close()
	}
	apiURL := "https://" + dialAddr(lis.Addr())
	kc, err := kubeconfig(apiURL, ca.CertPEM, "admin", tokens.Get(auth.Admin))
	if err != nil {
		return fmt.Errorf("render kubeconfig: %w", err)
	}
	kubeconfigPath := filepath.Join(cfg.DataDir, kubeconfigFile)
	if err := pki.WriteFileAtomic(kubeconfigPath, kc, 0o600); err != nil {
		return err
	}

	scfg := raftkv.DefaultConfig()
	scfg.DataDir = filepath.Join(cfg.DataDir, "db")
	scfg.NodeID = cfg.NodeName
	scfg.BindAddr = cfg.RaftListen
	scfg.Logger = log
	cfg.clusterOptions.applyStore(&scfg, cfg.AdvertiseAddress, peer)
	cfg.storeOptions.apply(&scfg)
	if err := cfg.storeOptions.prepare(ctx, scfg, log); err != nil {
		return err
	}
	store, err := raftkv.Open(ctx, scfg)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer store.Close()
	if err := cfg.clusterOptions.joinRaft(ctx, store, cfg.NodeName, log); err != nil {
		return err
	}
	bundle, err := serverBundle(cfg.DataDir, tokens, joinToken)
	if err != nil {
		return err
	}
	_, joinSecret, err := cluster.ParseToken(joinToken)
	if err != nil {
		return err
	}
	issueKubelet := func(name string, nodeIPs []net.IP) ([]byte, []byte, error) {
		return ca.IssueLeaf("kubelet of "+name, pki.LeafSpec{
			CommonName: "system:node:" + name, Server: true, IPs: nodeIPs, DNSNames: []string{"localhost", name},
		})
	}
	clusterAPI, err := cluster.NewHandler(cluster.Config{Membership: store, JoinSecret: joinSecret, IssueKubeletCert: issueKubelet,
		AdminToken: tokens.Get(auth.Admin), Bundle: bundle, Logger: log.With("component", "cluster")})
	if err != nil {
		return err
	}

	srv, err := server.New(server.Config{
		Store: store, Listener: lis, ServingCert: servingCert, CA: ca, Tokens: tokens,
		Version: apiversion.Info{
			Major: "1", Minor: strings.Split(kubernetesVersion, ".")[1],
			GitVersion: kubernetesVersion + "+kedge-" + version, GitCommit: version,
			GoVersion: goruntime.Version(), Compiler: goruntime.Compiler, Platform: goruntime.GOOS + "/" + goruntime.GOARCH,
		},
		ShutdownGrace: shutdownGrace,
		Logger:        log,
		Handlers:      map[string]http.Handler{cluster.PathPrefix: clusterAPI},
		Leadership:    store,
	})
	if err != nil {
		return err
	}
	var nd *node
	if cfg.DisableAgent {
		// startNode gives the start's garbage back; see there.
		debug.FreeOSMemory()
	} else {
		nodeClient, err := client.New(srv.LoopbackConfig(tokens.Get(auth.Node)))
		if err != nil {
			return err
		}
		if nd, err = startNode(ctx, cfg.nodeOptions.settings(true, tokens.Get(auth.Kubelet)), nodeClient, log); err != nil {
			return err
		}
		defer nd.close()
	}

	fmt.Fprintf(stdout, "kedge %s: node %q serving the Kubernetes API on %s\n", version, cfg.NodeName, apiURL)
	fmt.Fprintf(stdout, "kubeconfig: %s\n  export KUBECONFIG=%s; kubectl get nodes\n", kubeconfigPath, kubeconfigPath)
	fmt.Fprintf(stdout, "add a server: kedge server --join https://%s --token-file FILE  (FILE: a copy of %s)\n",
		net.JoinHostPort(cfg.AdvertiseAddress, portOf(lis.Addr())), joinTokenPath)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Run(gctx) })
	if os.Getenv("GOGC") == "" {
		// A server at light load keeps less heap headroom (gcheadroom).
		g.Go(func() error {
			gcheadroom.Run(gctx, gcheadroom.Config{Logger: log.With("component", "gcheadroom")})
			return nil
		})
	}
	if nd != nil {
		nd.run(gctx, g)
	} else {
		log.Info("agent disabled (--disable-agent): this server runs no pods and registers no Node")
	}
	if debugLis != nil {
		g.Go(func() error { return serveDebug(gctx, debugLis, log) })
	}
	err = g.Wait()
	cfg.clusterOptions.onStop(store, log)
	if err != nil && ctx.Err() == nil {
		return err
	}
	log.Info("kedge stopped; containers keep running until their pods are deleted")
	return nil
}

// checkWritable makes sure dir exists and accepts files, so a read-only or
// wrong data dir is reported at once, by name.
func checkWritable(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data dir %s: %w (Try: choose a writable --data-dir/--run-dir, or run as root)", dir, unwrapSyscall(err))
	}
	f, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		return fmt.Errorf("data dir %s is not writable: %w (Try: choose a writable --data-dir/--run-dir, or run as root)", dir, unwrapSyscall(err))
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// unwrapSyscall drops the Go-internal layers of a syscall error so the
// message reads "address already in use" rather than a chain of ops.
func unwrapSyscall(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return err
}

// dialAddr is the address local clients dial for a listener.
func dialAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

func uniq(xs ...string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range xs {
		if x != "" && !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

func selfPath() (string, error) {
	p, err := os.Executable()
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(p)
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"golang.org/x/sync/errgroup"

	"kedge.dev/kedge/client"
	"kedge.dev/kedge/server/cluster"
	"kedge.dev/kedge/server/pki"
)

// agentConfig is everything `kedge agent` can be told: an agent-only node
// runs pods for a cluster whose servers run elsewhere (k3s' agent).
type agentConfig struct {
	// Server is the URL of any server of the cluster (https://host:6443).
	Server string
	// Token / TokenFile: the cluster's join token, needed on the first
	// start only (later starts use the credentials in the data dir).
	Token, TokenFile string
	LogLevel         string
	DebugAddr        string
	nodeOptions
}

func parseAgentFlags(args []string, stderr io.Writer) (agentConfig, error) {
	cfg := agentConfig{LogLevel: "info", nodeOptions: defaultNodeOptions()}
	fs := flag.NewFlagSet("kedge agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Server, "server", cfg.Server, "URL of a server of the cluster, https://HOST:6443 (required)")
	fs.StringVar(&cfg.Token, "token", cfg.Token, "the cluster's join token (first start only; see <data-dir>/tokens/join on a server)")
	fs.StringVar(&cfg.TokenFile, "token-file", cfg.TokenFile, "file holding the join token")
	fs.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "debug, info, warn or error")
	fs.StringVar(&cfg.DebugAddr, "debug-addr", cfg.DebugAddr, "loopback host:port serving Go runtime profiles at /debug/pprof/ (default off)")
	cfg.nodeOptions.addFlags(fs)
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		if fs.NArg() > 0 {
			fmt.Fprintf(stderr, "kedge agent: unexpected argument %q\n", fs.Arg(0))
		}
		return cfg, errUsage
	}
	return cfg, cfg.complete()
}

func (c *agentConfig) complete() error {
	if c.Server == "" || !strings.HasPrefix(c.Server, "https://") {
		return fmt.Errorf("--server %q: the URL of a server is required, like https://10.0.0.1:6443", c.Server)
	}
	if c.TokenFile != "" && c.Token == "" {
		b, err := os.ReadFile(c.TokenFile)
		if err != nil {
			return fmt.Errorf("--token-file: %w", err)
		}
		c.Token = strings.TrimSpace(string(b))
	}
	if err := c.nodeOptions.complete(); err != nil {
		return err
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		return err
	}
	return validateDebugAddr(c.DebugAddr)
}

// agentGCPercent is the garbage collector's target for `kedge agent` unless
// GOGC says otherwise (ok false: leave it). An agent-only node allocates
// little (pod status, probes, events), so collecting at 25 % growth instead
// of 100 % costs it next to no CPU and keeps its heap near what is live:
// BenchmarkAgentPods at 110 pods, RSS 48.3–51.5 MiB with the default,
// 44.4 with 50, 41.9 with 25, CPU about 1 % of a core either way.
func agentGCPercent(gogc string) (int, bool) {
	if gogc != "" {
		return 0, false
	}
	return 25, true
}

// Where an agent keeps its credentials, under <data-dir>.
const (
	agentCAFile           = "tls/ca.crt"
	agentNodeTokenFile    = "tokens/node"
	agentKubeletTokenFile = "tokens/kubelet"
)

// runAgent starts an agent-only node: it fetches its credentials from the
// cluster on the first start, then runs the node part (as on a server)
// against the server's API.
func runAgent(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseAgentFlags(args, stderr)
	if err != nil {
		return err
	}
	level, _ := parseLevel(cfg.LogLevel)
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg.applyTimerSlack(log)
	if p, ok := agentGCPercent(os.Getenv("GOGC")); ok {
		debug.SetGCPercent(p)
	}
	for _, dir := range []string{cfg.DataDir, cfg.RunDir} {
		if err := checkWritable(dir); err != nil {
			return err
		}
	}
	creds, err := agentCredentials(ctx, cfg, log)
	if err != nil {
		return err
	}
	debugLis, err := listenDebug(cfg.DebugAddr)
	if err != nil {
		return err
	}
	if debugLis != nil {
		defer debugLis.Close()
	}
	api, err := client.New(client.Config{Server: cfg.Server, Token: creds.NodeToken, CAData: creds.CACert, UserAgent: "kedge-agent/" + version})
	if err != nil {
		return err
	}
	nd, err := startNode(ctx, cfg.nodeOptions.settings(false, creds.KubeletToken), api, log)
	if err != nil {
		return err
	}
	defer nd.close()
	fmt.Fprintf(stdout, "kedge %s: agent-only node %q of the cluster at %s\n", version, cfg.NodeName, cfg.Server)
	g, gctx := errgroup.WithContext(ctx)
	nd.run(gctx, g)
	if debugLis != nil {
		g.Go(func() error { return serveDebug(gctx, debugLis, log) })
	}
	if err := g.Wait(); err != nil && ctx.Err() == nil {
		return err
	}
	log.Info("kedge agent stopped; containers keep running until their pods are deleted")
	return nil
}

// agentCredentials reads the node's credentials from the data dir, or on
// the first start fetches them from the cluster with the join token (the
// CA is pinned by the token's hash, as for a joining server) and stores
// them there (0600, in 0700 directories).
func agentCredentials(ctx context.Context, cfg agentConfig, log *slog.Logger) (cluster.AgentCredentials, error) {
	path := func(rel string) string { return filepath.Join(cfg.DataDir, rel) }
	var creds cluster.AgentCredentials
	have := true
	for _, rel := range []string{agentCAFile, "tls/kubelet.crt", "tls/kubelet.key", agentNodeTokenFile, agentKubeletTokenFile} {
		if _, err := os.Stat(path(rel)); err != nil {
			have = false
		}
	}
	if have {
		var err error
		read := func(rel string) []byte {
			b, rerr := os.ReadFile(path(rel))
			if rerr != nil && err == nil {
				err = rerr
			}
			return b
		}
		creds.CACert = read(agentCAFile)
		creds.NodeToken = strings.TrimSpace(string(read(agentNodeTokenFile)))
		creds.KubeletToken = strings.TrimSpace(string(read(agentKubeletTokenFile)))
		if err != nil {
			return creds, fmt.Errorf("read the agent's credentials in %s: %w", cfg.DataDir, err)
		}
		return creds, nil
	}
	if cfg.Token == "" {
		return creds, errors.New("this node has no credentials yet; Try: kedge agent --server URL --token-file FILE (FILE: a copy of <data-dir>/tokens/join on a server)")
	}
	_, c, err := cluster.Discover(ctx, cfg.Server, cfg.Token)
	if err != nil {
		return creds, err
	}
	if creds, err = c.Agent(ctx, cfg.NodeName, []string{cfg.AdvertiseAddress, "127.0.0.1"}); err != nil {
		return creds, fmt.Errorf("fetch this node's credentials from %s: %w", cfg.Server, err)
	}
	for rel, b := range map[string][]byte{
		agentCAFile: creds.CACert, "tls/kubelet.crt": creds.KubeletCert, "tls/kubelet.key": creds.KubeletKey,
		agentNodeTokenFile: []byte(creds.NodeToken + "\n"), agentKubeletTokenFile: []byte(creds.KubeletToken + "\n"),
	} {
		if err := os.MkdirAll(filepath.Dir(path(rel)), 0o700); err != nil {
			return creds, err
		}
		if err := pki.WriteFileAtomic(path(rel), b, 0o600); err != nil {
			return creds, err
		}
	}
	log.Info("fetched this node's credentials from the cluster", "server", cfg.Server, "node", cfg.NodeName)
	return creds, nil
}

package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"sigs.k8s.io/yaml"

	"kedge.dev/kedge/raftstore/raftkv"
	"kedge.dev/kedge/server/auth"
	"kedge.dev/kedge/server/cluster"
	"kedge.dev/kedge/server/pki"
)

// joinTokenFile is the join token's name in <data-dir>/tokens.
const joinTokenFile = "join"

// clusterOptions are the multi-server settings of `kedge server` (flags
// and config file).
type clusterOptions struct {
	// Join is the URL of any server of the cluster to join
	// (https://host:6443); empty forms a new cluster at first start.
	Join string `json:"join"`
	// Token is the cluster's join token (K10<ca-sha256>::<secret>), read
	// from <data-dir>/tokens/join of any server.
	Token string `json:"token"`
	// TokenFile is a file holding the join token (instead of Token).
	TokenFile string `json:"tokenFile"`
	// Voters is how many servers vote (3 or 5; later ones replicate as
	// nonvoters). Used by the leader when a server joins.
	Voters int `json:"voters"`
	// LeaveOnTerminate: on SIGTERM, leave the cluster (hand off leadership
	// and remove this server) instead of only handing off leadership.
	LeaveOnTerminate bool `json:"leaveOnTerminate"`
	// RaftHeartbeatTimeout: a follower that has not heard from the leader
	// for this long starts an election (default 500ms).
	RaftHeartbeatTimeout duration `json:"raftHeartbeatTimeout"`
	// RaftElectionTimeout: a candidate's election timeout (default 500ms).
	RaftElectionTimeout duration `json:"raftElectionTimeout"`
	// RaftSnapshotThreshold: new log entries that trigger a snapshot
	// (default 8192).
	RaftSnapshotThreshold uint64 `json:"raftSnapshotThreshold"`
	// RaftSnapshotInterval: how often raft checks whether to snapshot
	// (default 2m).
	RaftSnapshotInterval duration `json:"raftSnapshotInterval"`
	// RaftTrailingLogs: entries kept after a snapshot so a slightly late
	// server needs no snapshot (default 10240).
	RaftTrailingLogs uint64 `json:"raftTrailingLogs"`
}

func defaultClusterOptions() clusterOptions {
	d := raftkv.DefaultConfig()
	return clusterOptions{
		Voters:                d.MaxVoters,
		RaftHeartbeatTimeout:  duration{d.HeartbeatTimeout},
		RaftElectionTimeout:   duration{d.ElectionTimeout},
		RaftSnapshotThreshold: d.SnapshotThreshold,
		RaftTrailingLogs:      d.TrailingLogs,
		RaftSnapshotInterval:  duration{d.SnapshotInterval},
	}
}

func (o *clusterOptions) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Join, "join", o.Join, "cluster: URL of a server of the cluster to join, https://host:6443")
	fs.StringVar(&o.Token, "token", o.Token, "cluster: join token (see <data-dir>/tokens/join on a server)")
	fs.StringVar(&o.TokenFile, "token-file", o.TokenFile, "cluster: file holding the join token")
	fs.IntVar(&o.Voters, "voters", o.Voters, "cluster: number of voting servers, 3 or 5 (more servers join as nonvoters)")
	fs.BoolVar(&o.LeaveOnTerminate, "leave-on-terminate", o.LeaveOnTerminate, "cluster: on SIGTERM leave the cluster, not only hand off leadership")
	fs.DurationVar(&o.RaftHeartbeatTimeout.Duration, "raft-heartbeat-timeout", o.RaftHeartbeatTimeout.Duration, "cluster: time without the leader before a follower starts an election")
	fs.DurationVar(&o.RaftElectionTimeout.Duration, "raft-election-timeout", o.RaftElectionTimeout.Duration, "cluster: a candidate's election timeout")
	fs.Uint64Var(&o.RaftSnapshotThreshold, "raft-snapshot-threshold", o.RaftSnapshotThreshold, "cluster: new raft entries that trigger a snapshot")
	fs.DurationVar(&o.RaftSnapshotInterval.Duration, "raft-snapshot-interval", o.RaftSnapshotInterval.Duration, "cluster: how often raft checks whether to snapshot")
	fs.Uint64Var(&o.RaftTrailingLogs, "raft-trailing-logs", o.RaftTrailingLogs, "cluster: raft entries kept after a snapshot")
}

// validate checks the options and reads TokenFile.
func (o *clusterOptions) validate() error {
	if o.Voters != 1 && o.Voters != 3 && o.Voters != 5 {
		return fmt.Errorf("--voters %d: want 1, 3 or 5 (an odd number keeps a majority after failures)", o.Voters)
	}
	if o.TokenFile != "" && o.Token == "" {
		b, err := os.ReadFile(o.TokenFile)
		if err != nil {
			return fmt.Errorf("--token-file: %w", err)
		}
		o.Token = strings.TrimSpace(string(b))
	}
	if o.Join != "" && o.Token == "" {
		return errors.New("--join needs --token or --token-file (Try: cat <data-dir>/tokens/join on a server of the cluster)")
	}
	return nil
}

// fetchBundle copies the cluster CA and tokens from the server at --join
// into dataDir before the first start of a joining server (they are what
// makes this server's API trusted by the same kubeconfig). A data dir that
// has a CA already keeps it.
func (o clusterOptions) fetchBundle(ctx context.Context, dataDir string, log *slog.Logger) error {
	if o.Join == "" {
		return nil
	}
	tlsDir, tokDir := filepath.Join(dataDir, "tls"), filepath.Join(dataDir, "tokens")
	if _, err := os.Stat(filepath.Join(tlsDir, "ca.crt")); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	_, c, err := cluster.Discover(ctx, o.Join, o.Token)
	if err != nil {
		return fmt.Errorf("join %s: %w", o.Join, err)
	}
	b, err := c.Bundle(ctx)
	if err != nil {
		return fmt.Errorf("join %s: fetch cluster CA and tokens: %w", o.Join, err)
	}
	for _, d := range []string{tlsDir, tokDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	// The key first: a crash in between leaves a half pair, which
	// LoadOrCreateCA refuses loudly rather than making a new CA.
	if err := pki.WriteFileAtomic(filepath.Join(tlsDir, "ca.key"), b.CAKey, 0o600); err != nil {
		return err
	}
	if err := pki.WriteFileAtomic(filepath.Join(tlsDir, "ca.crt"), b.CACert, 0o644); err != nil {
		return err
	}
	for name, tok := range b.Tokens {
		if name != filepath.Base(name) || name == "." || name == ".." {
			return fmt.Errorf("join %s: bad token name %q in the bundle", o.Join, name)
		}
		if err := pki.WriteFileAtomic(filepath.Join(tokDir, name), []byte(tok+"\n"), 0o600); err != nil {
			return err
		}
	}
	log.Info("copied the cluster CA and tokens", "from", o.Join)
	return nil
}

// bundle is what this server hands to joining servers.
func serverBundle(dataDir string, tokens *auth.Tokens, joinToken string) (cluster.Bundle, error) {
	caCert, err := os.ReadFile(filepath.Join(dataDir, "tls", "ca.crt"))
	if err != nil {
		return cluster.Bundle{}, err
	}
	caKey, err := os.ReadFile(filepath.Join(dataDir, "tls", "ca.key"))
	if err != nil {
		return cluster.Bundle{}, err
	}
	return cluster.Bundle{CACert: caCert, CAKey: caKey, Tokens: map[string]string{
		auth.Admin: tokens.Get(auth.Admin), auth.Node: tokens.Get(auth.Node),
		auth.Kubelet: tokens.Get(auth.Kubelet), joinTokenFile: joinToken,
	}}, nil
}

// peerTLS is the raft port's mutual TLS: every server has a certificate
// of the cluster CA named kedge-raft, and accepts only those.
func peerTLS(ca *pki.CA, dataDir, nodeName string) (*tls.Config, error) {
	cert, err := ca.EnsureLeaf(filepath.Join(dataDir, "tls"), "raft", pki.LeafSpec{
		CommonName: "kedge-raft:" + nodeName, DNSNames: []string{"kedge-raft"}, Server: true, Client: true,
	})
	if err != nil {
		return nil, fmt.Errorf("raft peer certificate: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: ca.Pool(), ServerName: "kedge-raft", MinVersion: tls.VersionTLS13}, nil
}

// applyStore copies the options into the store's Config.
func (o clusterOptions) applyStore(c *raftkv.Config, advertiseIP string, peer *tls.Config) {
	c.MaxVoters = o.Voters
	c.JoinExisting = o.Join != ""
	c.PeerTLS = peer
	c.LinearizableReads = true
	c.HeartbeatTimeout = o.RaftHeartbeatTimeout.Duration
	c.ElectionTimeout = o.RaftElectionTimeout.Duration
	c.LeaderLeaseTimeout = min(c.LeaderLeaseTimeout, c.HeartbeatTimeout)
	c.SnapshotThreshold = o.RaftSnapshotThreshold
	c.TrailingLogs = o.RaftTrailingLogs
	c.SnapshotInterval = o.RaftSnapshotInterval.Duration
	if host, port, err := net.SplitHostPort(c.BindAddr); err == nil {
		if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
			c.AdvertiseAddr = net.JoinHostPort(advertiseIP, port)
		}
	}
}

// joinRaft asks the cluster to add this server on its first start and
// waits until it has caught up.
func (o clusterOptions) joinRaft(ctx context.Context, store *raftkv.Store, nodeName string, log *slog.Logger) error {
	if store.NeedsJoin() {
		_, c, err := cluster.Discover(ctx, o.Join, o.Token)
		if err != nil {
			return fmt.Errorf("join %s: %w", o.Join, err)
		}
		suf, err := c.Join(ctx, nodeName, store.Addr())
		if err != nil {
			return fmt.Errorf("join %s as %s: %w", o.Join, nodeName, err)
		}
		log.Info("joined the cluster", "via", o.Join, "suffrage", suf)
	}
	if err := store.WaitReady(ctx); err != nil {
		return fmt.Errorf("catch up with the cluster: %w", err)
	}
	return nil
}

// onStop hands leadership off (so a planned stop costs no election), or
// leaves the cluster with --leave-on-terminate.
func (o clusterOptions) onStop(store *raftkv.Store, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if o.LeaveOnTerminate {
		if err := store.Leave(ctx); err != nil {
			log.Warn("leaving the cluster failed", "err", err)
			return
		}
		log.Info("left the cluster")
		return
	}
	if err := store.Handoff(ctx); err != nil {
		log.Warn("leadership handoff failed", "err", err)
	}
}

// runMembers implements `kedge server members` and `kedge server remove
// NODE`: they call the local server's cluster endpoints with the admin
// token of its data dir.
func runMembers(ctx context.Context, verb string, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("kedge server "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", defaultServerConfig().DataDir, "the server's data directory")
	serverURL := fs.String("server", "", "API URL of a server (default: the one in <data-dir>/kubeconfig.yaml)")
	var node string
	if verb == "remove" {
		f, err := parseWithFile(fs, args)
		if err != nil {
			return err
		}
		node = f
	} else if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return errUsage
	}
	caPEM, err := os.ReadFile(filepath.Join(*dataDir, "tls", "ca.crt"))
	if err != nil {
		return fmt.Errorf("read cluster CA: %w (Try: --data-dir of a server)", err)
	}
	tok, err := os.ReadFile(filepath.Join(*dataDir, "tokens", auth.Admin))
	if err != nil {
		return fmt.Errorf("read admin token: %w (Try: run as root with --data-dir of a server)", err)
	}
	if *serverURL == "" {
		if *serverURL, err = kubeconfigServer(filepath.Join(*dataDir, kubeconfigFile)); err != nil {
			return err
		}
	}
	c, err := cluster.NewClient(*serverURL, caPEM, strings.TrimSpace(string(tok)))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if verb == "remove" {
		if err := c.Remove(ctx, node); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "server %s removed from the cluster\n", node)
		return nil
	}
	members, err := c.Members(ctx)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 3, ' ', 0)
	fmt.Fprintln(w, "ID\tADDRESS\tSUFFRAGE\tLEADER\tSTATE\tLAST CONTACT\tREVISION")
	for _, m := range members {
		state, contact := m.State, "-"
		if !m.Reachable {
			state = "unreachable"
		} else if !m.Leader && m.LastContact >= 0 {
			contact = m.LastContact.Round(time.Millisecond).String()
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%v\t%s\t%s\t%d\n", m.ID, m.Address, m.Suffrage, m.Leader, state, contact, m.Revision)
	}
	return w.Flush()
}

// kubeconfigServer reads the API URL from a kubeconfig written by kedge.
func kubeconfigServer(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read %s: %w (Try: --server https://host:6443)", path, err)
	}
	var kc struct {
		Clusters []struct {
			Cluster struct {
				Server string `json:"server"`
			} `json:"cluster"`
		} `json:"clusters"`
	}
	if err := yaml.Unmarshal(b, &kc); err != nil || len(kc.Clusters) == 0 || kc.Clusters[0].Cluster.Server == "" {
		return "", fmt.Errorf("%s names no server (%v); Try: --server https://host:6443", path, err)
	}
	return kc.Clusters[0].Cluster.Server, nil
}

// portOf is the port of a listener's address.
func portOf(a net.Addr) string {
	_, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return ""
	}
	return port
}

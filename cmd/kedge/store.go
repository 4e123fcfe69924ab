package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"kedge.dev/kedge/raftstore/raftkv"
)

// storeDir is the store's directory inside the data dir.
const storeDir = "db"

// storeOptions are the store settings of `kedge server` (flags and config
// file). Their defaults come from raftkv.DefaultConfig.
type storeOptions struct {
	// CompactKeepRevisions: the automatic compactor always keeps this many
	// newest revisions.
	CompactKeepRevisions int64 `json:"compactKeepRevisions"`
	// CompactKeepDuration: revisions younger than this are kept, so a
	// watcher that reconnects within it can resume.
	CompactKeepDuration duration `json:"compactKeepDuration"`
	// CompactInterval: how often the leader compacts (negative disables).
	CompactInterval duration `json:"compactInterval"`
	// MaintenanceInterval: how often free pages and WAL space are given
	// back to the file system (negative disables).
	MaintenanceInterval duration `json:"maintenanceInterval"`
	// ResetCluster makes this server a cluster of one voter keeping its
	// data, before it starts (flag only: it must not stay in a file).
	ResetCluster bool `json:"-"`
}

func defaultStoreOptions() storeOptions {
	d := raftkv.DefaultConfig()
	return storeOptions{
		CompactKeepRevisions: d.CompactKeepRevisions,
		CompactKeepDuration:  duration{d.CompactKeepDuration},
		CompactInterval:      duration{d.CompactInterval},
		MaintenanceInterval:  duration{d.MaintenanceInterval},
	}
}

func (o *storeOptions) addFlags(fs *flag.FlagSet) {
	fs.Int64Var(&o.CompactKeepRevisions, "compact-keep-revisions", o.CompactKeepRevisions, "store: newest revisions the automatic compactor always keeps")
	fs.DurationVar(&o.CompactKeepDuration.Duration, "compact-keep-duration", o.CompactKeepDuration.Duration, "store: revisions younger than this are kept (watchers resume within it)")
	fs.DurationVar(&o.CompactInterval.Duration, "compact-interval", o.CompactInterval.Duration, "store: how often history is compacted (negative disables)")
	fs.DurationVar(&o.MaintenanceInterval.Duration, "maintenance-interval", o.MaintenanceInterval.Duration, "store: how often free pages and WAL space go back to the file system (negative disables)")
	fs.BoolVar(&o.ResetCluster, "reset-cluster", false, "before starting, make this server a cluster of one voter keeping all its data (recovery after losing quorum)")
}

// apply copies the options into the store's Config.
func (o storeOptions) apply(c *raftkv.Config) {
	c.CompactKeepRevisions = o.CompactKeepRevisions
	c.CompactKeepDuration = o.CompactKeepDuration.Duration
	c.CompactInterval = o.CompactInterval.Duration
	c.MaintenanceInterval = o.MaintenanceInterval.Duration
}

// prepare runs what must happen to the store's files before Open.
func (o storeOptions) prepare(ctx context.Context, c raftkv.Config, log *slog.Logger) error {
	if !o.ResetCluster {
		return nil
	}
	if err := raftkv.ResetCluster(ctx, c); err != nil {
		return fmt.Errorf("--reset-cluster: %w", err)
	}
	log.Warn("--reset-cluster done: this server is now a cluster of one; remove the flag before other servers join")
	return nil
}

// duration is a time.Duration written as "5m" in the config file.
type duration struct{ time.Duration }

// UnmarshalJSON accepts a Go duration string.
func (d *duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: want a string like \"5m\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalJSON writes the duration as a string.
func (d duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

func runStore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "backup":
			return runStoreBackup(ctx, args[1:], stdout, stderr)
		case "restore":
			return runStoreRestore(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintln(stderr, `Usage:
  kedge store backup FILE [--data-dir DIR]     consistent copy of the store, safe while the server runs
  kedge store restore FILE --data-dir DIR      new single-server cluster from a backup (keeps revisions)`)
	return errUsage
}

// parseWithFile parses flags that may come before or after one FILE
// argument.
func parseWithFile(fs *flag.FlagSet, args []string) (string, error) {
	if err := fs.Parse(args); err != nil {
		return "", errUsage
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return "", errUsage
	}
	file := rest[0]
	if err := fs.Parse(rest[1:]); err != nil {
		return "", errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return "", errUsage
	}
	return file, nil
}

// runStoreBackup copies state.db straight from the data dir with SQLite's
// VACUUM INTO: kedge has no store endpoint on its API, reading the file
// needs root (the data dir is 0700) which is the authorization, and it
// works whether the server runs or not.
func runStoreBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("kedge store backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", defaultServerConfig().DataDir, "the server's data directory")
	file, err := parseWithFile(fs, args)
	if err != nil {
		return err
	}
	info, err := raftkv.Backup(ctx, filepath.Join(*dataDir, storeDir), file)
	if errors.Is(err, raftkv.ErrNoState) {
		return fmt.Errorf("%w (Try: --data-dir of a server that has started once)", err)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backup %s: revision %d, %d keys, raft index %d\n", file, info.Revision, info.Keys, info.AppliedIndex)
	return nil
}

func runStoreRestore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	def := defaultServerConfig()
	fs := flag.NewFlagSet("kedge store restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "", "data directory of the new server (required; must hold no store yet)")
	nodeName := fs.String("node-name", def.NodeName, "node name the new server will run with")
	raftListen := fs.String("raft-listen", def.RaftListen, "raft address the new server will run with")
	file, err := parseWithFile(fs, args)
	if err != nil {
		return err
	}
	if *dataDir == "" {
		fmt.Fprintln(stderr, "kedge store restore: --data-dir is required")
		return errUsage
	}
	cfg := raftkv.DefaultConfig()
	cfg.DataDir = filepath.Join(*dataDir, storeDir)
	cfg.NodeID = *nodeName
	cfg.BindAddr = *raftListen
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	info, err := raftkv.Restore(ctx, cfg, file)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored %s into %s: revision %d, %d keys; start it with: kedge server --data-dir %s --node-name %s\n",
		file, cfg.DataDir, info.Revision, info.Keys, *dataDir, *nodeName)
	return nil
}

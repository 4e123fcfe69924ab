package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"kedge.dev/kedge/runtime"
	"kedge.dev/kedge/runtime/pull"
)

// runImage implements `kedge image import|ls|rm`, working on the node's
// image store in the data dir directly. A running server reads its image
// index at start: import while it is stopped, or drop the tarball into
// <data-dir>/images/ (imported at the next start). Making imports visible to
// a running server is part of the runtime issue.
func runImage(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "Usage: kedge image import FILE... | pull REF... | ls | rm REF... [--data-dir DIR] [--registries FILE]")
		return errUsage
	}
	verb := args[0]
	fs := flag.NewFlagSet("kedge image "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", defaultServerConfig().DataDir, "the node's data directory")
	runDir := fs.String("run-dir", defaultServerConfig().RunDir, "the node's run directory")
	registries := fs.String("registries", "", "registries.yaml for pull (default <data-dir>/registries.yaml or /etc/kedge/registries.yaml)")
	operands, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return errUsage
	}
	rt, err := openRuntime(*dataDir, *runDir, "/kedge", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	defer rt.Close()
	switch verb {
	case "import":
		if len(operands) == 0 {
			fmt.Fprintln(stderr, "Usage: kedge image import FILE...")
			return errUsage
		}
		for _, f := range operands {
			start := time.Now()
			fmt.Fprintf(stdout, "importing %s ...\n", f)
			imgs, err := rt.ImportImages(ctx, f)
			if err != nil {
				return err // the runtime's error names the file
			}
			for _, img := range imgs {
				fmt.Fprintf(stdout, "  %s  %s  %s\n", strings.Join(img.Names, ", "), shortID(img.ID), humanSize(img.Size))
			}
			fmt.Fprintf(stdout, "imported %d image(s) in %s\n", len(imgs), time.Since(start).Round(time.Millisecond))
		}
		return nil
	case "pull":
		if len(operands) == 0 {
			fmt.Fprintln(stderr, "Usage: kedge image pull REF... [--registries FILE]")
			return errUsage
		}
		puller, err := openPuller(rt, registriesPath(*registries, *dataDir), slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			return err
		}
		defer puller.Close()
		for _, ref := range operands {
			start := time.Now()
			fmt.Fprintf(stdout, "pulling %s ...\n", ref)
			pr := newPullProgress(stdout, ref)
			img, err := puller.PullImage(ctx, ref, runtime.PullOptions{Progress: pr.update})
			pr.finish()
			if err != nil {
				return fmt.Errorf("pull %s: %w", ref, err)
			}
			fmt.Fprintf(stdout, "pulled %s  %s  %s in %s\n", strings.Join(img.Names, ", "), shortID(img.ID), humanSize(img.Size),
				time.Since(start).Round(time.Millisecond))
		}
		return nil
	case "ls":
		imgs, err := rt.Images(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "IMAGE\tID\tSIZE")
		for _, img := range imgs {
			for _, n := range img.Names {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", n, shortID(img.ID), humanSize(img.Size))
			}
		}
		return tw.Flush()
	case "rm":
		if len(operands) == 0 {
			fmt.Fprintln(stderr, "Usage: kedge image rm REF...")
			return errUsage
		}
		for _, ref := range operands {
			if err := rt.RemoveImage(ctx, ref); err != nil {
				return fmt.Errorf("remove %s: %w", ref, err)
			}
			fmt.Fprintf(stdout, "removed %s\n", ref)
		}
		return nil
	}
	fmt.Fprintf(stderr, "kedge image: unknown verb %q (import, pull, ls, rm)\n", verb)
	return errUsage
}

// openRuntime opens the node's runtime with the data-dir layout that
// docs/ARCHITECTURE.md documents.
func openRuntime(dataDir, runDir, cgroupRoot string, log *slog.Logger, opts ...func(*runtime.Config)) (*runtime.Runtime, error) {
	cfg := runtime.DefaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	cfg.Root = filepath.Join(dataDir, "runtime")
	cfg.StateDir = filepath.Join(runDir, "containers")
	cfg.CgroupRoot = cgroupRoot
	cfg.Logger = log
	if exe, err := selfPath(); err == nil {
		cfg.InitPath = exe
	}
	rt, err := runtime.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("open image and container store: %w", err)
	}
	return rt, nil
}

// openPuller builds the registry puller for rt from the registries.yaml at
// path ("" for none).
func openPuller(rt *runtime.Runtime, path string, log *slog.Logger) (*runtime.Puller, error) {
	regs, err := loadRegistries(path)
	if err != nil {
		return nil, err
	}
	cfg := pull.DefaultConfig()
	cfg.Registries = regs
	cfg.Logger = log
	p, err := runtime.NewPuller(rt, cfg)
	if err != nil {
		return nil, fmt.Errorf("image puller: %w", err)
	}
	return p, nil
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// parseInterspersed parses flags that may come before, between or after the
// operands (`kedge image import a.tar --data-dir /x b.tar`), as users of
// kubectl and ctr expect; the standard flag package stops at the first
// operand.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var operands []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return operands, nil
		}
		operands = append(operands, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

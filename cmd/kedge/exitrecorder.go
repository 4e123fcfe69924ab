package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"kedge.dev/kedge/runtime/exitrec"
)

// exitRecorderCommand is the hidden command the runtime runs as its exit
// recorder process (runtime.Config.ExitRecorder).
const exitRecorderCommand = "exit-recorder"

// runExitRecorder runs the recorder for dir until it leaves by itself or
// gets SIGTERM; it logs to stderr (the recorder's log file).
func runExitRecorder(dir string) int {
	// SIGINT and SIGHUP belong to a terminal the recorder left with its
	// session; only SIGTERM (a shutdown) ends it early.
	signal.Ignore(syscall.SIGINT, syscall.SIGHUP)
	// One of these lives for as long as containers run: give back what
	// package initialisation of this large binary allocated, and keep the
	// heap small (it holds a few file descriptors and reads small
	// datagrams).
	debug.SetGCPercent(25)
	debug.FreeOSMemory()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := exitrec.RunProcess(ctx, dir, exitrec.RecorderConfig{Logger: log}); err != nil {
		fmt.Fprintf(os.Stderr, "kedge exit-recorder: %v\n", err)
		return 1
	}
	return 0
}

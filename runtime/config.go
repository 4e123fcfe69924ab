package runtime

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"kedge.dev/kedge/runtime/logs"
)

// Config configures a Runtime.
type Config struct {
	// Root holds images (content, snapshots) and containers (handles,
	// upper/work directories, root filesystem mounts), e.g.
	// <data-dir>/runtime. Absolute. Default /var/lib/kedge/runtime.
	Root string
	// StateDir holds libcontainer's state; it should be on tmpfs so that a
	// reboot clears it. Absolute. Default /run/kedge/containers.
	StateDir string
	// CgroupRoot is the absolute cgroup path under which containers live
	// when their spec names no CgroupParent. Default "/kedge".
	CgroupRoot string
	// InitPath must be empty or the running executable: libcontainer (runc
	// ≥ 1.2) always re-executes /proc/self/exe as "<argv0> init" and offers
	// no other choice. Kept so that a future runtime can honour it.
	InitPath string
	// InitArgs must be empty, for the same reason as InitPath.
	InitArgs []string
	// LogMaxSize is the size in bytes at which a container's log file is
	// rotated; 0 turns rotation off. Default logs.DefaultMaxSize (10 MiB).
	LogMaxSize int64
	// LogMaxFiles is how many files of one container's log are kept, the
	// current one included. Default logs.DefaultMaxFiles (5).
	LogMaxFiles int
	// ExitRecorder is the command that runs an exit recorder process
	// (exitrec.RunProcess), e.g. the kedge binary and "exit-recorder"; the
	// directory is appended. The recorder keeps the exit codes of
	// containers that end while the process using the runtime is down or
	// after it adopted them. Empty: no recorder, and such containers end
	// with an unknown exit code.
	ExitRecorder []string
	// ExitDir is the recorder's directory; it should be on tmpfs. Absolute.
	// Default /run/kedge/exits.
	ExitDir string
	// Logger receives the runtime's logs; nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns the configuration of a standard node.
func DefaultConfig() Config {
	return Config{
		Root:        "/var/lib/kedge/runtime",
		StateDir:    "/run/kedge/containers",
		CgroupRoot:  "/kedge",
		ExitDir:     "/run/kedge/exits",
		LogMaxSize:  logs.DefaultMaxSize,
		LogMaxFiles: logs.DefaultMaxFiles,
	}
}

// Validate reports the first problem of the configuration.
func (c Config) Validate() error {
	for name, p := range map[string]string{"Root": c.Root, "StateDir": c.StateDir, "CgroupRoot": c.CgroupRoot} {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("runtime config: %s %q must be an absolute path", name, p)
		}
	}
	if c.InitPath != "" {
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("runtime config: resolve own executable: %w", err)
		}
		a, errA := filepath.EvalSymlinks(self)
		b, errB := filepath.EvalSymlinks(c.InitPath)
		if errA != nil || errB != nil || a != b {
			return errors.New("runtime config: InitPath must be empty or this executable: libcontainer re-executes /proc/self/exe as the container init")
		}
	}
	if len(c.ExitRecorder) > 0 && !filepath.IsAbs(c.ExitDir) {
		return fmt.Errorf("runtime config: ExitDir %q must be an absolute path when ExitRecorder is set", c.ExitDir)
	}
	if c.LogMaxSize < 0 || c.LogMaxFiles < 0 {
		return errors.New("runtime config: LogMaxSize and LogMaxFiles must not be negative")
	}
	if len(c.InitArgs) > 0 {
		return errors.New("runtime config: InitArgs must be empty: libcontainer always passes \"init\"")
	}
	return nil
}

package sandbox

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
)

// DefaultDir is where pod namespaces are pinned unless Config.Dir says otherwise. It lives
// on tmpfs on purpose: namespaces do not survive a reboot, so neither should their pins.
const DefaultDir = "/run/kedge/sandboxes"

// Config configures a Manager.
type Config struct {
	// Dir is the directory that holds one subdirectory per pod with the namespace pins.
	// It must be absolute. Default: DefaultDir.
	Dir string
	// Logger receives debug and warning messages. Default (nil): logs are discarded.
	Logger *slog.Logger
}

// DefaultConfig returns the configuration used on a node.
func DefaultConfig() Config {
	return Config{Dir: DefaultDir}
}

// ErrInvalidConfig is wrapped by Validate's errors.
var ErrInvalidConfig = errors.New("invalid sandbox config")

// Validate reports whether the configuration can be used.
func (c Config) Validate() error {
	if c.Dir == "" {
		return fmt.Errorf("%w: Dir is empty", ErrInvalidConfig)
	}
	if !filepath.IsAbs(c.Dir) {
		return fmt.Errorf("%w: Dir %q is not absolute", ErrInvalidConfig, c.Dir)
	}
	return nil
}

// Package podcache keeps the agent's offline copy of the pods bound to its
// node in a local SQLite file, so the agent can keep running them while the
// API server is unreachable, also across a restart.
//
// A Cache is safe for concurrent use. Every write is durable when it returns
// (the file uses WAL with the configured synchronous level).
package podcache

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	_ "github.com/mattn/go-sqlite3" // database/sql driver "sqlite3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// ErrInvalidConfig is returned by Open for an unusable Config.
var ErrInvalidConfig = errors.New("invalid pod cache config")

// Config configures the cache file.
type Config struct {
	// Path of the SQLite file, e.g. <data-dir>/agent/pods.db. Required; its
	// directory is created (0700).
	Path string
	// Synchronous is SQLite's synchronous pragma: "FULL" (default) or
	// "NORMAL". FULL survives power loss, which edge boxes see often.
	Synchronous string
	// BusyTimeout is how long a write waits for a lock; default 5 s.
	BusyTimeout time.Duration
}

// DefaultConfig returns the defaults for a cache at path.
func DefaultConfig(path string) Config {
	return Config{Path: path, Synchronous: "FULL", BusyTimeout: 5 * time.Second}
}

// Validate reports whether cfg can work.
func (cfg Config) Validate() error {
	if cfg.Path == "" {
		return fmt.Errorf("%w: Path is empty", ErrInvalidConfig)
	}
	switch cfg.Synchronous {
	case "FULL", "NORMAL":
	default:
		return fmt.Errorf("%w: Synchronous %q is not FULL or NORMAL", ErrInvalidConfig, cfg.Synchronous)
	}
	if cfg.BusyTimeout < 0 {
		return fmt.Errorf("%w: negative BusyTimeout", ErrInvalidConfig)
	}
	return nil
}

// Cache is the offline pod store.
type Cache struct {
	db *sql.DB
}

// Open opens (creating if needed) the cache file.
func Open(ctx context.Context, cfg Config) (*Cache, error) {
	if cfg.Synchronous == "" {
		cfg.Synchronous = "FULL"
	}
	if cfg.BusyTimeout == 0 {
		cfg.BusyTimeout = 5 * time.Second
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o700); err != nil {
		return nil, fmt.Errorf("create pod cache directory: %w", err)
	}
	db, err := sql.Open("sqlite3", "file:"+cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("open pod cache %s: %w", cfg.Path, err)
	}
	// One connection: SQLite serialises writers anyway, and pragmas are
	// per connection.
	db.SetMaxOpenConns(1)
	stmts := []string{
		"PRAGMA journal_mode=WAL",
		"PRAGMA synchronous=" + cfg.Synchronous,
		fmt.Sprintf("PRAGMA busy_timeout=%d", cfg.BusyTimeout.Milliseconds()),
		`CREATE TABLE IF NOT EXISTS pods (
			uid TEXT PRIMARY KEY,
			namespace TEXT NOT NULL,
			name TEXT NOT NULL,
			resource_version TEXT NOT NULL,
			pod BLOB NOT NULL)`,
	}
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			db.Close()
			return nil, fmt.Errorf("init pod cache %s (%s): %w", cfg.Path, s, err)
		}
	}
	return &Cache{db: db}, nil
}

// Put stores pod (keyed by UID), replacing an older copy.
func (c *Cache) Put(ctx context.Context, pod *corev1.Pod) error {
	data, err := json.Marshal(pod)
	if err != nil {
		return fmt.Errorf("encode pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	_, err = c.db.ExecContext(ctx, `INSERT INTO pods(uid, namespace, name, resource_version, pod) VALUES(?,?,?,?,?)
		ON CONFLICT(uid) DO UPDATE SET namespace=excluded.namespace, name=excluded.name,
		resource_version=excluded.resource_version, pod=excluded.pod`,
		string(pod.UID), pod.Namespace, pod.Name, pod.ResourceVersion, data)
	if err != nil {
		return fmt.Errorf("store pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}

// Delete forgets the pod with uid; deleting an unknown pod is not an error.
func (c *Cache) Delete(ctx context.Context, uid types.UID) error {
	if _, err := c.db.ExecContext(ctx, `DELETE FROM pods WHERE uid = ?`, string(uid)); err != nil {
		return fmt.Errorf("forget pod %s: %w", uid, err)
	}
	return nil
}

// List returns every stored pod, ordered by namespace and name.
func (c *Cache) List(ctx context.Context) ([]*corev1.Pod, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT pod FROM pods ORDER BY namespace, name`)
	if err != nil {
		return nil, fmt.Errorf("list cached pods: %w", err)
	}
	defer rows.Close()
	var pods []*corev1.Pod
	for rows.Next() {
		var data []byte
		if err := rows.Scan(&data); err != nil {
			return nil, fmt.Errorf("list cached pods: %w", err)
		}
		pod := &corev1.Pod{}
		if err := json.Unmarshal(data, pod); err != nil {
			return nil, fmt.Errorf("decode cached pod: %w", err)
		}
		pods = append(pods, pod)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list cached pods: %w", err)
	}
	return pods, nil
}

// Close closes the file. It is idempotent.
func (c *Cache) Close() error {
	return c.db.Close()
}

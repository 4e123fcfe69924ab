package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"kedge.dev/kedge/runtime"
)

// airgapStateFile, inside the air-gap folder, records which tarballs were
// imported, so that a restart does not import them again.
const airgapStateFile = ".kedge-imported.json"

// airgapMark identifies a tarball's content cheaply: a file rewritten or
// replaced gets another size or modification time.
type airgapMark struct {
	Size    int64 `json:"size"`
	ModTime int64 `json:"modTimeNs"`
}

// isTarball reports whether name is an image archive kedge imports.
func isTarball(name string) bool {
	return strings.HasSuffix(name, ".tar") || strings.HasSuffix(name, ".tar.gz") || strings.HasSuffix(name, ".tgz") ||
		strings.HasSuffix(name, ".tar.zst")
}

// airgapToImport decides which files to import: tarballs never imported or
// changed since. Pure, for tests.
func airgapToImport(files map[string]airgapMark, done map[string]airgapMark) []string {
	var out []string
	for name, m := range files {
		if !isTarball(name) {
			continue
		}
		if prev, ok := done[name]; ok && prev == m {
			continue
		}
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// importAirGap imports the tarballs in dir (k3s users drop images there)
// that are new or changed since the last start. A bad tarball is logged and
// skipped, and tried again at the next start: the node must still come up.
func importAirGap(ctx context.Context, rt *runtime.Runtime, dir string, log *slog.Logger) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			log.Warn("cannot read air-gap image folder", "dir", dir, "err", err)
		}
		return
	}
	files := map[string]airgapMark{}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		files[e.Name()] = airgapMark{Size: fi.Size(), ModTime: fi.ModTime().UnixNano()}
	}
	statePath := filepath.Join(dir, airgapStateFile)
	done := map[string]airgapMark{}
	if b, err := os.ReadFile(statePath); err == nil {
		if err := json.Unmarshal(b, &done); err != nil {
			log.Warn("ignoring unreadable air-gap import record", "file", statePath, "err", err)
			done = map[string]airgapMark{}
		}
	}
	todo := airgapToImport(files, done)
	if len(todo) == 0 {
		return
	}
	for _, name := range todo {
		start := time.Now()
		imgs, err := rt.ImportImages(ctx, filepath.Join(dir, name))
		if err != nil {
			log.Warn("air-gap image import failed", "file", name, "err", err)
			delete(done, name)
			continue
		}
		done[name] = files[name]
		for _, img := range imgs {
			log.Info("image imported", "file", name, "names", img.Names, "id", shortID(img.ID), "took", time.Since(start).Round(time.Millisecond))
		}
	}
	for name := range done {
		if _, ok := files[name]; !ok {
			delete(done, name) // the file is gone; a new one of that name is new
		}
	}
	b, _ := json.MarshalIndent(done, "", "  ")
	tmp := statePath + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err == nil {
		err = os.Rename(tmp, statePath)
	}
	if err != nil {
		log.Warn("cannot record air-gap imports; they will be imported again at the next start", "err", err)
	}
}

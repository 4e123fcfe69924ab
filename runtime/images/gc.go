package images

import (
	"sort"
	"time"
)

// GCCandidate is an image as the garbage collector sees it.
type GCCandidate struct {
	ID   string
	Size int64 // bytes its removal may free (its unpacked size)
	// LastUsed is when a container last used it, or when it was stored.
	LastUsed time.Time
	// InUse: a container (running or not) uses it; it is never removed.
	InUse bool
}

// DiskUsage is the state of the image store's filesystem, in bytes.
type DiskUsage struct {
	Total, Used int64
}

// PlanGC decides which images to remove: none while the filesystem's use is
// at or below highPercent; otherwise unused images, least recently used
// first, until the projected use falls to lowPercent or below (or nothing
// unused is left). Pure: the caller measures and removes.
func PlanGC(usage DiskUsage, imgs []GCCandidate, highPercent, lowPercent int) []string {
	if usage.Total <= 0 || usage.Used*100 <= usage.Total*int64(highPercent) {
		return nil
	}
	target := usage.Total * int64(lowPercent) / 100
	free := usage.Used - target
	cands := make([]GCCandidate, 0, len(imgs))
	for _, c := range imgs {
		if !c.InUse {
			cands = append(cands, c)
		}
	}
	sort.SliceStable(cands, func(i, j int) bool {
		if !cands[i].LastUsed.Equal(cands[j].LastUsed) {
			return cands[i].LastUsed.Before(cands[j].LastUsed)
		}
		return cands[i].ID < cands[j].ID
	})
	var out []string
	for _, c := range cands {
		if free <= 0 {
			break
		}
		out = append(out, c.ID)
		free -= c.Size
	}
	return out
}

package runtime

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"kedge.dev/kedge/runtime/images"
	"kedge.dev/kedge/runtime/pull"
	"kedge.dev/kedge/runtime/pull/pulltest"
)

// imageOnlyRuntime is a Runtime with an image store and no containers: the
// puller and the image GC need nothing else.
func imageOnlyRuntime(t *testing.T) *Runtime {
	t.Helper()
	root := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := images.New(images.Config{Root: root, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return &Runtime{cfg: Config{Root: root}, log: log, images: st, containers: map[string]*container{}}
}

func TestPullerCoalescesConcurrentPulls(t *testing.T) {
	reg := pulltest.Start(t, pulltest.Options{})
	reg.Push(t, "app:1", pulltest.ShellImage(t, "coalesce"), "")
	var manifests atomic.Int32
	host := reg.Proxy(t, func(r *http.Request) int {
		if strings.Contains(r.URL.Path, "/manifests/") && r.Method == http.MethodGet {
			manifests.Add(1)
			time.Sleep(300 * time.Millisecond) // keep the first pull in flight
		}
		return 0
	})
	rt := imageOnlyRuntime(t)
	cfg := pull.DefaultConfig()
	p, err := NewPuller(rt, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var wg sync.WaitGroup
	var progressed [4]atomic.Bool
	errs := make([]error, 4)
	ids := make([]string, 4)
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			img, err := p.PullImage(context.Background(), host+"/app:1", PullOptions{Progress: func(done, total int64) { progressed[i].Store(true) }})
			errs[i], ids[i] = err, img.ID
		}()
	}
	wg.Wait()
	for i := range 4 {
		if errs[i] != nil || ids[i] == "" || ids[i] != ids[0] {
			t.Fatalf("pull %d: %q %v", i, ids[i], errs[i])
		}
	}
	if n := manifests.Load(); n != 1 {
		t.Errorf("4 concurrent pulls fetched the manifest %d times, want 1", n)
	}
	// A later pull is a new one (Always: check the registry again).
	if _, err := p.PullImage(context.Background(), host+"/app:1", PullOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := manifests.Load(); n != 2 {
		t.Errorf("manifest fetched %d times after a second pull, want 2", n)
	}
}

func TestPullerCallerGivesUp(t *testing.T) {
	reg := pulltest.Start(t, pulltest.Options{})
	reg.Push(t, "app:1", pulltest.ShellImage(t, "cancel"), "")
	host := reg.Proxy(t, func(r *http.Request) int {
		time.Sleep(200 * time.Millisecond)
		return 0
	})
	rt := imageOnlyRuntime(t)
	p, err := NewPuller(rt, pull.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := p.PullImage(ctx, host+"/app:1", PullOptions{}); err == nil {
		t.Fatal("pull outlived its context")
	}
	p.Close() // waits for the cancelled flight
	if len(rt.images.List()) != 0 {
		t.Error("a cancelled pull stored an image")
	}
}

func TestImageGCRemovesLeastRecentlyUsed(t *testing.T) {
	reg := pulltest.Start(t, pulltest.Options{})
	rt := imageOnlyRuntime(t)
	p, err := NewPuller(rt, pull.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var ids []string
	for _, tag := range []string{"a", "b", "c"} {
		reg.Push(t, "app:"+tag, pulltest.ShellImage(t, tag), "")
		img, err := p.PullImage(context.Background(), reg.Host+"/app:"+tag, PullOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, img.ID)
		time.Sleep(10 * time.Millisecond) // distinct store times
	}
	// "a" is used by a container: it is the oldest but must stay.
	rt.containers["c1"] = &container{h: &handle{ImageID: ids[0]}}
	gc, err := NewImageGC(rt, DefaultImageGCConfig())
	if err != nil {
		t.Fatal(err)
	}
	size := rt.images.List()[0].Size
	if got, err := gc.collect(context.Background(), images.DiskUsage{Total: 100 * size, Used: 80 * size}, time.Now()); err != nil || len(got) != 0 {
		t.Fatalf("below the threshold removed %v (%v)", got, err)
	}
	// 86%: must free 6×size, more than one image: "b" then "c", never "a".
	got, err := gc.collect(context.Background(), images.DiskUsage{Total: 100 * size, Used: 86 * size}, time.Now())
	if err != nil || len(got) != 2 || got[0] != ids[1] || got[1] != ids[2] {
		t.Fatalf("removed %v (%v), want b then c", got, err)
	}
	if left := rt.images.List(); len(left) != 1 || left[0].ID != ids[0] {
		t.Errorf("left %v, want only the image in use", left)
	}
}

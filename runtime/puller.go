package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"

	"kedge.dev/kedge/runtime/images"
	"kedge.dev/kedge/runtime/pull"
)

// PullOptions are the per-call settings of a pull.
type PullOptions struct {
	// Credentials, from a pod's image pull secrets, win over the node's
	// registries configuration for the same host.
	Credentials pull.Credentials
	// Progress, if set, receives download progress (bytes of layer blobs).
	Progress images.Progress
}

// Puller pulls images from registries into a Runtime's image store.
// Concurrent pulls of one reference with the same credentials are
// coalesced: one download runs, every caller gets its result and its
// progress. A coalesced pull stops only when every caller has given up
// (its ctx ended) or the Puller is closed. Safe for concurrent use.
type Puller struct {
	rt       *Runtime
	resolver *pull.Resolver

	mu      sync.Mutex
	flights map[string]*flight
	closed  bool
	wg      sync.WaitGroup
	stop    chan struct{}
	once    sync.Once
}

// flight is one pull that callers wait for.
type flight struct {
	done    chan struct{}
	img     Image
	err     error
	waiters int
	cancel  context.CancelFunc
	subs    map[int]images.Progress
	nextSub int
}

// NewPuller builds a Puller storing into rt's images, resolving with cfg.
func NewPuller(rt *Runtime, cfg pull.Config) (*Puller, error) {
	if cfg.Logger == nil {
		cfg.Logger = rt.log
	}
	res, err := pull.New(cfg)
	if err != nil {
		return nil, err
	}
	return &Puller{rt: rt, resolver: res, flights: map[string]*flight{}, stop: make(chan struct{})}, nil
}

// Close cancels running pulls and waits for them. Idempotent.
func (p *Puller) Close() error {
	p.once.Do(func() {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		close(p.stop)
		p.wg.Wait()
	})
	return nil
}

// PullImage resolves ref in the registries (mirrors first), downloads what
// the store lacks and stores the image under ref's normalized name. An image
// whose manifest resolves to layers already stored is only tagged. Errors
// wrap pull.ErrNotFound, pull.ErrUnauthorized, pull.ErrPlatform,
// pull.ErrRegistry, images.ErrNoSpace or a digest mismatch.
func (p *Puller) PullImage(ctx context.Context, ref string, opts PullOptions) (Image, error) {
	norm, err := images.Normalize(ref)
	if err != nil {
		return Image{}, err
	}
	key := norm + "\x00" + credKey(opts.Credentials)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return Image{}, ErrClosed
	}
	f := p.flights[key]
	if f == nil {
		fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		f = &flight{done: make(chan struct{}), cancel: cancel, subs: map[int]images.Progress{}}
		p.flights[key] = f
		p.wg.Add(1)
		go p.run(fctx, key, norm, opts.Credentials, f)
	}
	f.waiters++
	sub := f.nextSub
	f.nextSub++
	if opts.Progress != nil {
		f.subs[sub] = opts.Progress
	}
	p.mu.Unlock()

	select {
	case <-f.done:
		p.leave(f, sub)
		return f.img, f.err
	case <-ctx.Done():
		p.leave(f, sub)
		return Image{}, ctx.Err()
	}
}

// leave drops a waiter; the last one to leave an unfinished flight cancels it.
func (p *Puller) leave(f *flight, sub int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(f.subs, sub)
	f.waiters--
	if f.waiters == 0 {
		f.cancel()
	}
}

func (p *Puller) run(ctx context.Context, key, ref string, creds pull.Credentials, f *flight) {
	defer p.wg.Done()
	defer f.cancel()
	go func() {
		select {
		case <-p.stop:
			f.cancel()
		case <-ctx.Done():
		}
	}()
	img, err := p.pull(ctx, ref, creds, func(done, total int64) {
		p.mu.Lock()
		subs := make([]images.Progress, 0, len(f.subs))
		for _, s := range f.subs {
			subs = append(subs, s)
		}
		p.mu.Unlock()
		for _, s := range subs {
			s(done, total)
		}
	})
	p.mu.Lock()
	f.img, f.err = img, err
	delete(p.flights, key)
	p.mu.Unlock()
	close(f.done)
}

func (p *Puller) pull(ctx context.Context, ref string, creds pull.Credentials, progress images.Progress) (Image, error) {
	res, err := p.resolver.Resolve(ctx, ref, creds)
	if err != nil {
		return Image{}, err
	}
	img, err := p.rt.images.Ingest(ctx, images.Source{Image: res.Image, Names: []string{res.Name}, Manifest: res.Manifest}, progress)
	if err != nil {
		return Image{}, fmt.Errorf("pull %s from %s: %w", res.Name, res.Endpoint, err)
	}
	return img, nil
}

// credKey distinguishes pulls with different credentials without keeping
// the secrets in the key.
func credKey(c pull.Credentials) string {
	if len(c) == 0 {
		return ""
	}
	b, _ := json.Marshal(c) // map keys are sorted: stable
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

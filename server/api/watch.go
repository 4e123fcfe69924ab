package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"kedge.dev/kedge/raftstore"
)

// initialEventsEnd is the annotation on the BOOKMARK that ends the initial
// events of a watch with sendInitialEvents=true.
const initialEventsEnd = "k8s.io/initial-events-end"

// watchRequest is a parsed watch.
type watchRequest struct {
	filter     *filter
	bookmarks  bool
	timeout    time.Duration
	initial    bool  // send the current state as ADDED events first
	initialEnd bool  // end the initial events with the annotated BOOKMARK
	fromRev    int64 // watch after this revision (when !initial)
	minRev     int64 // the initial state must not be older than this
}

func (s *Server) parseWatch(t target, q url.Values) (*watchRequest, error) {
	if t.name != "" {
		// Legacy /watch/.../<name> paths watch one object.
		q.Set("fieldSelector", joinSelector(q.Get("fieldSelector"), "metadata.name="+t.name))
	}
	f, err := parseFilter(t.res, q)
	if err != nil {
		return nil, err
	}
	wr := &watchRequest{filter: f, bookmarks: isTrue(q.Get("allowWatchBookmarks"))}
	wr.timeout = time.Duration(float64(s.cfg.WatchTimeout) * (1 + rand.Float64()))
	if ts := q.Get("timeoutSeconds"); ts != "" {
		n, err := strconv.ParseInt(ts, 10, 64)
		if err != nil || n < 0 {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("timeoutSeconds: invalid value %q", ts))
		}
		if n > 0 {
			wr.timeout = time.Duration(n) * time.Second
		}
	}
	rv, err := parseRV(q.Get("resourceVersion"))
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("resourceVersion: %v", err))
	}
	match := metav1.ResourceVersionMatch(q.Get("resourceVersionMatch"))
	sie := q.Get("sendInitialEvents")
	switch {
	case sie != "":
		send, err := strconv.ParseBool(sie)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("sendInitialEvents: invalid value %q", sie))
		}
		if match != metav1.ResourceVersionMatchNotOlderThan {
			return nil, apierrors.NewBadRequest("sendInitialEvents requires setting resourceVersionMatch to NotOlderThan")
		}
		if send && !wr.bookmarks {
			return nil, apierrors.NewBadRequest("sendInitialEvents requires setting allowWatchBookmarks to true")
		}
		wr.initial, wr.initialEnd, wr.minRev, wr.fromRev = send, send, rv, rv
	case match != "":
		return nil, apierrors.NewBadRequest("resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided")
	case rv == 0:
		// "" and "0": the current state as ADDED events, then changes.
		wr.initial = true
	default:
		wr.fromRev = rv
	}
	return wr, nil
}

func joinSelector(a, b string) string {
	if a == "" {
		return b
	}
	return a + "," + b
}

// watchStream writes watch events as newline-delimited JSON and flushes
// each one.
type watchStream struct {
	w       http.ResponseWriter
	flusher http.Flusher
	res     *resource
	out     output
	topts   tableOptions
	headers bool // the next Table still needs its column definitions
}

func (ws *watchStream) send(typ watch.EventType, obj runtime.Object) error {
	var v any = obj
	if typ != watch.Error {
		switch ws.out.kind {
		case outTable:
			var objs []runtime.Object
			if typ != watch.Bookmark {
				objs = []runtime.Object{obj}
			}
			table, err := ws.res.toTable(objs, ws.out.version, ws.topts, ws.headers && typ != watch.Bookmark)
			if err != nil {
				return err
			}
			if typ != watch.Bookmark {
				ws.headers = false
			}
			table.ResourceVersion = accessor(obj).GetResourceVersion()
			v = table
		case outPartial:
			v = partialMeta(obj, ws.out.version)
		default:
			obj.GetObjectKind().SetGroupVersionKind(ws.res.gvk)
		}
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode watch event: %w", err)
	}
	data, err := json.Marshal(metav1.WatchEvent{Type: string(typ), Object: runtime.RawExtension{Raw: raw}})
	if err != nil {
		return fmt.Errorf("encode watch event: %w", err)
	}
	if _, err := ws.w.Write(append(data, '\n')); err != nil {
		return err
	}
	ws.flusher.Flush()
	return nil
}

// bookmark sends a BOOKMARK carrying only a resourceVersion (and the
// initial-events-end annotation when asked).
func (ws *watchStream) bookmark(rev int64, end bool) error {
	obj := ws.res.New()
	m := accessor(obj)
	m.SetResourceVersion(strconv.FormatInt(rev, 10))
	if end {
		m.SetAnnotations(map[string]string{initialEventsEnd: "true"})
	}
	return ws.send(watch.Bookmark, obj)
}

// serveWatch answers a watch: initial state if asked, then every change
// after the start revision that matches the selectors, with objects moving
// out of the selection sent as DELETED and into it as ADDED.
func (s *Server) serveWatch(w http.ResponseWriter, r *http.Request, t target) {
	out, ok := negotiate(r.Header.Get("Accept"), capabilities{table: true, partial: true})
	if !ok {
		s.writeError(w, r, errNotAcceptable(r.Header.Get("Accept")), t.res.gr, "")
		return
	}
	q := r.URL.Query()
	wr, err := s.parseWatch(t, q)
	var topts tableOptions
	if err == nil && out.kind == outTable {
		topts, err = parseTableOptions(q)
	}
	if err != nil {
		s.writeError(w, r, err, t.res.gr, "")
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		s.writeError(w, r, errors.New("the response writer cannot stream"), t.res.gr, "")
		return
	}
	ctx, cancel := s.requestContext(r)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, wr.timeout)
	defer cancelTimeout()

	prefix := t.res.key(t.namespace, "")
	var initial []runtime.Object
	from := wr.fromRev
	if wr.initial {
		result, err := s.list(ctx, t.res, prefix, &listRequest{filter: wr.filter, minRev: wr.minRev})
		if err != nil {
			s.writeError(w, r, err, t.res.gr, "")
			return
		}
		initial, from = result.items, result.rev
	} else if from == 0 {
		if from, err = s.cfg.Store.Revision(ctx); err != nil {
			s.writeError(w, r, err, t.res.gr, "")
			return
		}
	}
	events, err := s.cfg.Store.Watch(ctx, prefix, from)
	if err != nil {
		if errors.Is(err, raftstore.ErrCompacted) {
			err = apierrors.NewResourceExpired(fmt.Sprintf("too old resource version: %d (%v)", from, err))
		}
		s.writeError(w, r, err, t.res.gr, "")
		return
	}

	ws := &watchStream{w: w, flusher: flusher, res: t.res, out: out, topts: topts, headers: true}
	w.Header().Set("Content-Type", out.contentType(false))
	w.Header().Set("Transfer-Encoding", "chunked")
	w.WriteHeader(http.StatusOK)
	flusher.Flush()

	for _, obj := range initial {
		if err := ws.send(watch.Added, obj); err != nil {
			return
		}
	}
	if wr.initialEnd {
		if err := ws.bookmark(from, true); err != nil {
			return
		}
	}
	s.pumpWatch(ctx, ws, wr, events, from)
}

// pumpWatch forwards store events until the context ends or the store
// closes the channel (the client then watches again from its last
// resourceVersion).
func (s *Server) pumpWatch(ctx context.Context, ws *watchStream, wr *watchRequest, events <-chan raftstore.Event, last int64) {
	var tick <-chan time.Time
	if wr.bookmarks {
		ticker := time.NewTicker(s.cfg.BookmarkInterval)
		defer ticker.Stop()
		tick = ticker.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
			if err := ws.bookmark(last, false); err != nil {
				return
			}
		case ev, ok := <-events:
			if !ok {
				return
			}
			last = ev.KV.ModRevision
			typ, obj, err := s.translateEvent(ws.res, wr.filter, ev)
			if err != nil {
				s.log.Error("watch event", "key", ev.KV.Key, "err", err)
				st := statusFor(err, ws.res.gr, "")
				_ = ws.send(watch.Error, &st)
				return
			}
			if typ == "" {
				continue
			}
			if err := ws.send(typ, obj); err != nil {
				return
			}
		}
	}
}

// translateEvent turns a store event into the watch event a client with
// this filter sees, or "" for none.
func (s *Server) translateEvent(res *resource, f *filter, ev raftstore.Event) (watch.EventType, runtime.Object, error) {
	cur, err := res.decode(ev.KV)
	if err != nil {
		return "", nil, err
	}
	if ev.Type == raftstore.EventDelete {
		if f.matches(cur) {
			return watch.Deleted, cur, nil
		}
		return "", nil, nil
	}
	curOK := f.matches(cur)
	prevOK := false
	var prev runtime.Object
	if ev.PrevKV != nil {
		if prev, err = res.decode(*ev.PrevKV); err != nil {
			return "", nil, err
		}
		prevOK = f.matches(prev)
	}
	switch {
	case curOK && ev.PrevKV == nil:
		return watch.Added, cur, nil
	case curOK && prevOK:
		return watch.Modified, cur, nil
	case curOK:
		return watch.Added, cur, nil
	case prevOK:
		// The object left the selection: it is DELETED for this watcher,
		// with its last matching state at the event's revision.
		accessor(prev).SetResourceVersion(strconv.FormatInt(ev.KV.ModRevision, 10))
		return watch.Deleted, prev, nil
	}
	return "", nil, nil
}

package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// WatchEvent is one decoded event of a watch stream.
type WatchEvent struct {
	// Type is ADDED, MODIFIED, DELETED, BOOKMARK or ERROR.
	Type watch.EventType
	// Object is the value returned by the watch's newObject, decoded; nil for
	// ERROR events.
	Object any
	// Err is set for ERROR events: a *apierrors.StatusError built from the
	// event's Status (410 Gone when the resourceVersion is too old, so
	// apierrors.IsGone or IsResourceExpired tell the caller to relist).
	Err error
}

// Watch opens a watch on r from opts.ResourceVersion with opts' selectors and
// returns a channel of decoded events. newObject returns an empty value to
// decode each event's object into (e.g. func() any { return &corev1.Pod{} }).
//
// The channel is closed when ctx is cancelled, when the server ends the
// stream, or when the stream breaks; the caller then relists or watches
// again. The caller must cancel ctx when it stops reading, or the goroutine
// that feeds the channel stays blocked. A failure to open the watch is
// returned directly, as a *apierrors.StatusError for server answers.
func (c *Client) Watch(ctx context.Context, r Resource, opts metav1.ListOptions, newObject func() any) (<-chan WatchEvent, error) {
	req := request{verb: "watch", method: http.MethodGet, res: r, query: listQuery(opts, true)}
	resp, err := c.send(ctx, req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return nil, decodeError(req, resp.StatusCode, data)
	}
	ch := make(chan WatchEvent)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		// Closing the body on cancellation unblocks a pending Decode.
		stop := context.AfterFunc(ctx, func() { resp.Body.Close() })
		defer stop()
		dec := json.NewDecoder(resp.Body)
		for {
			ev, err := decodeEvent(dec, newObject)
			if err != nil {
				return // end of stream, broken stream or cancelled: the caller rewatches
			}
			select {
			case ch <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, nil
}

// wireEvent is the JSON shape of one watch event (metav1.WatchEvent).
type wireEvent struct {
	Type   watch.EventType `json:"type"`
	Object json.RawMessage `json:"object"`
}

// errBadEvent marks a watch frame that cannot be decoded.
var errBadEvent = errors.New("bad watch event")

func decodeEvent(dec *json.Decoder, newObject func() any) (WatchEvent, error) {
	var we wireEvent
	if err := dec.Decode(&we); err != nil {
		return WatchEvent{}, err
	}
	switch we.Type {
	case watch.Added, watch.Modified, watch.Deleted, watch.Bookmark:
		obj := newObject()
		if err := json.Unmarshal(we.Object, obj); err != nil {
			return WatchEvent{}, fmt.Errorf("%w: decode %s object: %v", errBadEvent, we.Type, err)
		}
		return WatchEvent{Type: we.Type, Object: obj}, nil
	case watch.Error:
		var st metav1.Status
		if err := json.Unmarshal(we.Object, &st); err != nil {
			return WatchEvent{}, fmt.Errorf("%w: decode ERROR status: %v", errBadEvent, err)
		}
		return WatchEvent{Type: we.Type, Err: &apierrors.StatusError{ErrStatus: st}}, nil
	default:
		return WatchEvent{}, fmt.Errorf("%w: unknown type %q", errBadEvent, we.Type)
	}
}

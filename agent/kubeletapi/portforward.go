package kubeletapi

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/net/websocket"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/apimachinery/pkg/util/httpstream/wsstream"
	pf "k8s.io/apimachinery/pkg/util/portforward"

	"kedge.dev/kedge/internal/spdy"
)

// portForward serves kubelet's /portForward/{namespace}/{pod}: a SPDY
// connection (protocol portforward.k8s.io) on which the client opens, per
// forwarded connection, an error and a data stream carrying the headers
// port and requestID. kubectl ≥ 1.31 first tries the same SPDY session
// tunnelled in WebSocket binary messages (subprotocol
// SPDY/3.1+portforward.k8s.io).
func (s *Server) portForward(w http.ResponseWriter, r *http.Request) {
	ns, pod := r.PathValue("namespace"), r.PathValue("pod")
	if wsstream.IsWebSocketRequestWithTunnelingProtocol(r) {
		websocket.Server{
			Handshake: func(cfg *websocket.Config, _ *http.Request) error {
				for _, p := range cfg.Protocol {
					if p == pf.WebsocketsSPDYTunnelingPortForwardV1 {
						cfg.Protocol = []string{p}
						return nil
					}
				}
				return fmt.Errorf("requested protocols %v are not supported; supports %s", cfg.Protocol, pf.WebsocketsSPDYTunnelingPortForwardV1)
			},
			Handler: func(ws *websocket.Conn) {
				ws.PayloadType = websocket.BinaryFrame
				h := s.newForwarder(r.Context(), ns, pod)
				conn, err := spdy.NewServerConnection(ws, h.received)
				if err != nil {
					s.log.Debug("port-forward: SPDY over WebSocket", "err", err)
					return
				}
				h.run(conn)
			},
		}.ServeHTTP(w, r)
		return
	}
	if _, err := httpstream.Handshake(r, w, []string{pf.PortForwardV1Name}); err != nil {
		return // Handshake answered
	}
	h := s.newForwarder(r.Context(), ns, pod)
	conn := spdy.NewResponseUpgrader().UpgradeResponse(w, r, h.received)
	if conn == nil {
		return
	}
	h.run(conn)
}

// forwarder pairs the streams of one port-forward connection and dials
// the pod for each pair.
type forwarder struct {
	s       *Server
	ns, pod string
	streams chan httpstream.Stream

	mu    sync.Mutex
	pairs map[string]*streamPair
	// copiers counts the client-to-pod copies; they end when the
	// connection closes, which run waits for.
	copiers sync.WaitGroup
}

type streamPair struct {
	data, errs httpstream.Stream
	complete   chan struct{}
}

func (s *Server) newForwarder(_ context.Context, ns, pod string) *forwarder {
	return &forwarder{s: s, ns: ns, pod: pod, streams: make(chan httpstream.Stream, 1), pairs: map[string]*streamPair{}}
}

// received checks a new stream's headers and hands it to run.
func (f *forwarder) received(st httpstream.Stream, _ <-chan struct{}) error {
	port, err := strconv.ParseUint(st.Headers().Get(corev1.PortHeader), 10, 16)
	if err != nil || port == 0 {
		return fmt.Errorf("invalid %q header %q", corev1.PortHeader, st.Headers().Get(corev1.PortHeader))
	}
	switch t := st.Headers().Get(corev1.StreamType); t {
	case corev1.StreamTypeError, corev1.StreamTypeData:
	default:
		return fmt.Errorf("invalid stream type %q", t)
	}
	f.streams <- st
	return nil
}

// run serves the connection until the client closes it; every forwarded
// connection is closed before it returns.
func (f *forwarder) run(conn httpstream.Connection) {
	conn.SetIdleTimeout(streamIdleTimeout)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() {
		cancel()
		conn.Close()
		wg.Wait()
		f.copiers.Wait()
	}()
	for {
		select {
		case <-conn.CloseChan():
			return
		case st := <-f.streams:
			id := st.Headers().Get(corev1.PortForwardRequestIDHeader)
			if id == "" {
				// Old clients pair streams by consecutive IDs (see kubelet).
				id = strconv.Itoa(int(st.Identifier()))
				if st.Headers().Get(corev1.StreamType) == corev1.StreamTypeData {
					id = strconv.Itoa(int(st.Identifier()) - 2)
				}
			}
			f.mu.Lock()
			p := f.pairs[id]
			if p == nil {
				p = &streamPair{complete: make(chan struct{})}
				f.pairs[id] = p
				wg.Add(1)
				go func() { defer wg.Done(); f.expire(ctx, conn, id, p) }()
			}
			if st.Headers().Get(corev1.StreamType) == corev1.StreamTypeError {
				if p.errs == nil {
					p.errs = st
				}
			} else if p.data == nil {
				p.data = st
			}
			done := p.errs != nil && p.data != nil
			f.mu.Unlock()
			if done {
				close(p.complete)
				wg.Add(1)
				go func() { defer wg.Done(); f.forward(ctx, p) }()
			}
		}
	}
}

// expire drops a pair whose second stream did not come in time.
func (f *forwarder) expire(ctx context.Context, conn httpstream.Connection, id string, p *streamPair) {
	t := time.NewTimer(streamCreationTimeout)
	defer t.Stop()
	select {
	case <-p.complete:
	case <-ctx.Done():
	case <-t.C:
		f.mu.Lock()
		if p.errs != nil {
			fmt.Fprintf(p.errs, "timed out waiting for the data stream of request %s", id)
		}
		f.mu.Unlock()
	}
	f.mu.Lock()
	delete(f.pairs, id)
	f.mu.Unlock()
	if p.data != nil || p.errs != nil {
		conn.RemoveStreams(p.data, p.errs)
	}
}

// forward copies between the data stream and a connection to the pod's
// port; a failure is written to the error stream as text.
func (f *forwarder) forward(ctx context.Context, p *streamPair) {
	defer p.data.Close()
	defer p.errs.Close()
	port, _ := strconv.ParseUint(p.data.Headers().Get(corev1.PortHeader), 10, 16)
	err := f.copy(ctx, uint16(port), p.data)
	if err != nil && ctx.Err() == nil {
		f.s.log.Debug("port-forward", "pod", f.ns+"/"+f.pod, "port", port, "err", err)
		fmt.Fprintf(p.errs, "error forwarding port %d to pod %s/%s: %v", port, f.ns, f.pod, err)
	}
}

func (f *forwarder) copy(ctx context.Context, port uint16, data io.ReadWriter) error {
	c, err := f.s.streams.DialPod(ctx, f.ns, f.pod, port)
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	f.copiers.Add(1)
	go func() {
		defer f.copiers.Done()
		// Client to pod; the client's half-close becomes ours.
		_, _ = io.Copy(c, data)
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
	}()
	// Pod to client: the session ends when the pod closes.
	if _, err := io.Copy(data, c); err != nil && ctx.Err() == nil {
		if ne, ok := err.(*net.OpError); ok && ne.Op == "read" {
			return err
		}
	}
	return nil
}

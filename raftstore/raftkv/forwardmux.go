package raftkv

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Multiplexed forwarding: a follower keeps one connection per peer (protocol
// byte connForwardMux) and sends every forwarded request over it at once,
// each tagged with an ID; the server handles them concurrently and answers
// in the order they finish. One connection per request (connForward, still
// served for servers of older versions) made a follower under 16 concurrent
// writers open a new mutual-TLS connection for most of its writes: the
// handshakes cost ~11% of a core on both sides and a round trip each.
//
// After the protocol byte the server writes muxHello, so a client knows the
// peer speaks this protocol; an older server closes the connection instead,
// and the client falls back to connForward for that peer for a while.
const muxHello byte = 'm'

// muxTagsHello follows muxHello from servers that put request tags in the
// entries of forwarded writes (settle.go), in the same write, so a client
// finds it already read with the hello. Clients before tags skip it as
// JSON whitespace; a client that does not see it learns the same from the
// first answer with Tagged.
const muxTagsHello byte = '\t'

// muxLegacyRetry is how long a peer that did not answer muxHello is spoken
// to with the one-request-per-connection protocol before asking again (it
// may be upgraded meanwhile).
const muxLegacyRetry = 30 * time.Second

// maxMuxInFlight bounds the requests one multiplexed connection may have
// running on the server: more wait in the connection (TCP flow control).
const maxMuxInFlight = 256

type muxRequest struct {
	RID uint64 `json:"rid"` // fwdRequest has an "id" of its own
	fwdRequest
}

type muxResponse struct {
	RID uint64 `json:"rid"`
	fwdResponse
}

// serveForwardMux answers the requests on one multiplexed connection, each
// in its own goroutine, until the connection or the store closes.
func (s *Store) serveForwardMux(c net.Conn) {
	defer c.Close()
	stop := context.AfterFunc(s.bgCtx, func() { c.Close() })
	defer stop()
	fault := s.testMuxFault.Load()
	hello := []byte{muxHello, muxTagsHello}
	if fault != nil && fault.ignoreTags {
		hello = hello[:1]
	}
	if _, err := c.Write(hello); err != nil {
		return
	}
	select { // a peer may ask while this server is still starting raft
	case <-s.raftReady:
	case <-s.bgCtx.Done():
		return
	}
	var (
		wg   sync.WaitGroup
		wmu  sync.Mutex
		enc  = json.NewEncoder(c)
		sem  = make(chan struct{}, maxMuxInFlight)
		dec  = json.NewDecoder(bufio.NewReader(c))
		dead bool
	)
	defer wg.Wait()
	for {
		var req muxRequest
		if err := dec.Decode(&req); err != nil {
			return
		}
		select {
		case sem <- struct{}{}:
		case <-s.bgCtx.Done():
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := s.bgCtx, context.CancelFunc(func() {})
			if req.TimeoutMS > 0 {
				ctx, cancel = context.WithTimeout(s.bgCtx, time.Duration(req.TimeoutMS)*time.Millisecond)
			}
			fault := s.testMuxFault.Load()
			if fault != nil && req.Kind == "apply" {
				if fault.ignoreTags {
					req.Tag = nil
				}
				if fault.dropRequest {
					fault.fired(c)
					cancel()
					return
				}
			}
			resp := muxResponse{RID: req.RID, fwdResponse: s.handleForward(ctx, req.fwdRequest)}
			cancel()
			if fault != nil && req.Kind == "apply" && fault.dropAnswer {
				fault.fired(c)
				return
			}
			if req.Kind == "apply" && resp.Code == "" && len(req.Cmd) > 0 && (req.Cmd[0] == cmdCreate || req.Cmd[0] == cmdUpdate) {
				// The caller sent the value: not again, base64 in JSON.
				resp.KV.Value, resp.ValueOmitted = nil, true
			}
			wmu.Lock()
			defer wmu.Unlock()
			if dead {
				return
			}
			c.SetWriteDeadline(time.Now().Add(muxWriteTimeout))
			if err := enc.Encode(resp); err != nil {
				// The client sees the connection end and fails what it
				// still waits for; the reader loop ends on the close.
				dead = true
				c.Close()
			}
		}()
	}
}

// muxFault makes the server side of multiplexed forwarding fail in tests
// (Store.testMuxFault; nil otherwise).
type muxFault struct {
	// dropRequest closes the connection instead of running an apply, as a
	// leader killed before it appended the entry.
	dropRequest bool
	// dropAnswer closes the connection instead of answering an apply it
	// ran, as a leader killed after it appended the entry.
	dropAnswer bool
	// ignoreTags: the server does not tag entries, as servers before tags.
	ignoreTags bool
	// onFire, if set, is called (once per dropped request) after the
	// connection was closed.
	onFire func()
}

func (f *muxFault) fired(c net.Conn) {
	c.Close()
	if f.onFire != nil {
		f.onFire()
	}
}

// muxWriteTimeout bounds one write on a multiplexed connection, so a peer
// that stopped reading cannot hold the connection's writers forever.
const muxWriteTimeout = 10 * time.Second

// muxPeers holds the multiplexed connection to each peer.
type muxPeers struct {
	mu     sync.Mutex
	peers  map[string]*muxPeer
	closed bool
}

type muxPeer struct {
	dialMu sync.Mutex // one dial at a time; the others wait and share it
	// Guarded by muxPeers.mu:
	conn        *muxConn
	legacyUntil time.Time // before then the peer is spoken to with connForward
}

// errPeerNoMux: the peer closed the connection instead of answering
// muxHello, as servers before multiplexed forwarding do.
var errPeerNoMux = errors.New("peer does not multiplex forwarding")

// get returns the live connection to addr, dialing one if there is none.
func (p *muxPeers) get(addr string, dial func() (*muxConn, error)) (*muxConn, error) {
	pe, mc, err := p.current(addr)
	if mc != nil || err != nil {
		return mc, err
	}
	pe.dialMu.Lock()
	defer pe.dialMu.Unlock()
	if _, mc, err := p.current(addr); mc != nil || err != nil {
		return mc, err // another caller dialed meanwhile
	}
	mc, err = dial()
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case errors.Is(err, errPeerNoMux):
		pe.legacyUntil = time.Now().Add(muxLegacyRetry)
		return nil, err
	case err != nil:
		return nil, err
	case p.closed:
		mc.close(net.ErrClosed)
		return nil, net.ErrClosed
	}
	pe.conn = mc
	return mc, nil
}

// current returns addr's peer and its live connection, if any.
func (p *muxPeers) current(addr string) (*muxPeer, *muxConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, nil, net.ErrClosed
	}
	pe := p.peers[addr]
	if pe == nil {
		if p.peers == nil {
			p.peers = map[string]*muxPeer{}
		}
		pe = &muxPeer{}
		p.peers[addr] = pe
	}
	if time.Now().Before(pe.legacyUntil) {
		return pe, nil, errPeerNoMux
	}
	if pe.conn != nil && !pe.conn.broken() {
		return pe, pe.conn, nil
	}
	return pe, nil, nil
}

// closeAll ends every connection; a dial still running ends its own.
func (p *muxPeers) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, pe := range p.peers {
		if pe.conn != nil {
			pe.conn.close(net.ErrClosed)
		}
	}
}

// muxConn is the client side of one multiplexed connection.
type muxConn struct {
	c   net.Conn
	wmu sync.Mutex
	enc *json.Encoder

	// tagged: the peer answered with Tagged here (settle.go).
	tagged atomic.Bool

	mu      sync.Mutex
	next    uint64
	pending map[uint64]chan fwdResponse
	err     error         // why the connection ended
	done    chan struct{} // closed when it ended
}

// dialMux opens a multiplexed connection to addr and waits for muxHello.
func (s *Store) dialMux(addr string) (*muxConn, error) {
	c, err := s.mux.dial(addr, s.cfg.TransportTimeout, connForwardMux)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(s.cfg.TransportTimeout))
	b, err := br.ReadByte()
	c.SetReadDeadline(time.Time{})
	if err != nil || b != muxHello {
		c.Close()
		if err == nil || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isConnReset(err) {
			return nil, fmt.Errorf("%w (%s)", errPeerNoMux, addr)
		}
		return nil, fmt.Errorf("wait for %s to accept forwarding: %w", addr, err)
	}
	mc := &muxConn{c: c, enc: json.NewEncoder(c), pending: map[uint64]chan fwdResponse{}, done: make(chan struct{})}
	if br.Buffered() > 0 {
		if next, _ := br.Peek(1); next[0] == muxTagsHello {
			mc.tagged.Store(true)
		}
	}
	go mc.readLoop(json.NewDecoder(br))
	return mc, nil
}

func isConnReset(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && !oe.Timeout()
}

func (mc *muxConn) readLoop(dec *json.Decoder) {
	for {
		var resp muxResponse
		if err := dec.Decode(&resp); err != nil {
			mc.close(err)
			return
		}
		if resp.Tagged {
			mc.tagged.Store(true)
		}
		mc.mu.Lock()
		ch := mc.pending[resp.RID]
		delete(mc.pending, resp.RID)
		mc.mu.Unlock()
		if ch != nil { // nil: its caller gave up
			ch <- resp.fwdResponse
		}
	}
}

func (mc *muxConn) broken() bool {
	select {
	case <-mc.done:
		return true
	default:
		return false
	}
}

// close ends the connection; callers still waiting get errTransport.
func (mc *muxConn) close(why error) {
	mc.mu.Lock()
	defer mc.mu.Unlock()
	if mc.err != nil {
		return
	}
	mc.err = why
	mc.c.Close()
	close(mc.done)
}

// roundTrip sends req and waits for its answer. An error wraps
// errWriteFailed when the request surely did not reach the peer.
func (mc *muxConn) roundTrip(ctx context.Context, req fwdRequest) (fwdResponse, error) {
	ch := make(chan fwdResponse, 1)
	mc.mu.Lock()
	if mc.err != nil {
		mc.mu.Unlock()
		return fwdResponse{}, fmt.Errorf("%w: %w", errWriteFailed, mc.err)
	}
	mc.next++
	id := mc.next
	mc.pending[id] = ch
	mc.mu.Unlock()
	forget := func() {
		mc.mu.Lock()
		delete(mc.pending, id)
		mc.mu.Unlock()
	}

	mc.wmu.Lock()
	mc.c.SetWriteDeadline(time.Now().Add(muxWriteTimeout))
	err := mc.enc.Encode(muxRequest{RID: id, fwdRequest: req})
	mc.wmu.Unlock()
	if err != nil {
		forget()
		// A partly written request breaks the stream for every caller;
		// the server drops the connection with the incomplete line and
		// never runs it.
		mc.close(err)
		return fwdResponse{}, fmt.Errorf("%w: %w", errWriteFailed, err)
	}
	select {
	case resp := <-ch:
		return resp, nil
	case <-ctx.Done():
		forget()
		return fwdResponse{}, ctx.Err()
	case <-mc.done:
		select { // the answer may have come just before the end
		case resp := <-ch:
			return resp, nil
		default:
		}
		return fwdResponse{}, &connLostError{err: mc.err, tagged: mc.tagged.Load()}
	}
}

package raftkv

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"kedge.dev/kedge/raftstore"
)

// Forwarding protocol: a follower opens a connection with protocol byte
// connForwardMux on the leader's raft port (mutual TLS with the cluster CA
// when PeerTLS is set) and sends one JSON request per line, tagged with an
// ID; the server answers each with one JSON line carrying the same ID
// (forwardmux.go). Servers before multiplexing spoke connForward: the same
// lines without IDs, one request at a time per connection, connections
// pooled by the client; both sides still speak it with such servers.
type fwdRequest struct {
	// Kind: "apply", "readindex", "join", "remove", "status".
	Kind string `json:"kind"`
	// Cmd is an encoded raft command (apply).
	Cmd []byte `json:"cmd,omitempty"`
	// ID and Addr name a server (join, remove).
	ID   string `json:"id,omitempty"`
	Addr string `json:"addr,omitempty"`
	// TimeoutMS is what is left of the caller's deadline (0: none).
	TimeoutMS int64 `json:"timeoutMs,omitempty"`
	// Tag is the request tag the leader puts in the entry of an apply
	// (settle.go); servers before tags ignore it.
	Tag []byte `json:"tag,omitempty"`
}

type fwdResponse struct {
	KV       raftstore.KeyValue `json:"kv"`
	Index    uint64             `json:"index,omitempty"`
	Suffrage string             `json:"suffrage,omitempty"`
	Status   *peerStatus        `json:"status,omitempty"`
	// ValueOmitted: KV.Value is the value the request carried (a create or
	// an update), left out of the answer because the caller has it
	// (multiplexed connections only).
	ValueOmitted bool `json:"valueOmitted,omitempty"`
	// Tagged: the apply's entry carries the request's tag (this server
	// tags entries; settle.go).
	Tagged bool `json:"tagged,omitempty"`
	// Leader is the ID of the server that handed out a read index.
	Leader string `json:"leader,omitempty"`
	// Code names a sentinel error (wireErrors); Msg is the error's text.
	Code string `json:"code,omitempty"`
	Msg  string `json:"msg,omitempty"`
}

// peerStatus is a server's own view, for Members.
type peerStatus struct {
	State        string        `json:"state"`
	Term         uint64        `json:"term"`
	AppliedIndex uint64        `json:"appliedIndex"`
	Revision     int64         `json:"revision"`
	LastContact  time.Duration `json:"lastContact"`
}

// errNotLeaderNoApply: the receiver was not the leader and did not append
// the command, so the caller may safely send it again to the new leader.
var errNotLeaderNoApply = errors.New("not the leader; command not appended")

// wireErrors are the errors that keep their identity across forwarding.
// The codes are part of the protocol between servers: never reuse one.
var wireErrors = []struct {
	code string
	err  error
}{
	{"notleader-noapply", errNotLeaderNoApply},
	{"notfound", raftstore.ErrNotFound},
	{"exists", raftstore.ErrKeyExists},
	{"conflict", raftstore.ErrConflict},
	{"compacted", raftstore.ErrCompacted},
	{"future", raftstore.ErrFutureRevision},
	{"closed", raftstore.ErrClosed},
	{"notleader", ErrNotLeader},
	{"unknowncmd", ErrUnknownCommand},
	{"unknownserver", ErrUnknownServer},
	{"deadline", context.DeadlineExceeded},
	{"canceled", context.Canceled},
}

// remoteError is an error that happened on another server; it unwraps to
// the sentinel its code named.
type remoteError struct {
	msg      string
	sentinel error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.sentinel }

func encodeErr(err error) (code, msg string) {
	if err == nil {
		return "", ""
	}
	for _, w := range wireErrors {
		if errors.Is(err, w.err) {
			return w.code, err.Error()
		}
	}
	return "other", err.Error()
}

func decodeErr(code, msg string) error {
	if code == "" {
		return nil
	}
	for _, w := range wireErrors {
		if w.code == code {
			return &remoteError{msg: msg, sentinel: w.err}
		}
	}
	return &remoteError{msg: msg}
}

// serveForward answers forwarding connections until the layer closes.
func (s *Store) serveForward() {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := s.mux.acceptForward()
		if err != nil {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if c.proto == connForwardMux {
				s.serveForwardMux(c.Conn)
			} else {
				s.serveForwardConn(c.Conn)
			}
		}()
	}
}

func (s *Store) serveForwardConn(c net.Conn) {
	defer c.Close()
	stop := context.AfterFunc(s.bgCtx, func() { c.Close() })
	defer stop()
	select { // a peer may ask while this server is still starting raft
	case <-s.raftReady:
	case <-s.bgCtx.Done():
		return
	}
	dec := json.NewDecoder(bufio.NewReader(c))
	enc := json.NewEncoder(c)
	for {
		var req fwdRequest
		if err := dec.Decode(&req); err != nil {
			return
		}
		ctx, cancel := s.bgCtx, context.CancelFunc(func() {})
		if req.TimeoutMS > 0 {
			ctx, cancel = context.WithTimeout(s.bgCtx, time.Duration(req.TimeoutMS)*time.Millisecond)
		}
		resp := s.handleForward(ctx, req)
		cancel()
		if err := enc.Encode(resp); err != nil {
			return
		}
	}
}

func (s *Store) handleForward(ctx context.Context, req fwdRequest) fwdResponse {
	var resp fwdResponse
	var err error
	switch req.Kind {
	case "apply":
		if s.raft.State() != raft.Leader {
			err = errNotLeaderNoApply
			break
		}
		var tag []byte
		if validTag(req.Tag) {
			tag, resp.Tagged = req.Tag, true
		}
		resp.KV, resp.Index, err = s.applyLocal(ctx, "forwarded write", req.Cmd, tag)
		if errors.Is(err, raft.ErrNotLeader) {
			err = fmt.Errorf("%w: %w", errNotLeaderNoApply, err)
		}
	case "readindex":
		resp.Index, err = s.leaderReadIndex(ctx)
		resp.Leader = s.cfg.NodeID
	case "join":
		resp.Suffrage, err = s.joinLocal(ctx, req.ID, req.Addr)
	case "remove":
		err = s.removeLocal(ctx, req.ID)
	case "status":
		st := s.localStatus()
		resp.Status = &st
	default:
		err = fmt.Errorf("unknown forwarding request %q", req.Kind)
	}
	resp.Code, resp.Msg = encodeErr(err)
	return resp
}

// fwdPool keeps idle one-request connections (connForward) per server
// address, for peers that do not multiplex.
type fwdPool struct {
	mu   sync.Mutex
	idle map[string][]*fwdConn
}

type fwdConn struct {
	c   net.Conn
	br  *bufio.Reader
	r   *json.Decoder
	enc *json.Encoder
}

func newFwdConn(c net.Conn) *fwdConn {
	br := bufio.NewReader(c)
	return &fwdConn{c: c, br: br, r: json.NewDecoder(br), enc: json.NewEncoder(c)}
}

// alive reports whether an idle pooled connection is still open: the
// server never writes unasked, so anything but a timeout on a short read
// (EOF after the peer restarted, a reset) means it is gone. Checking
// before use matters for writes, which are not sent twice.
func (fc *fwdConn) alive() bool {
	fc.c.SetReadDeadline(time.Now().Add(time.Millisecond))
	_, err := fc.br.Peek(1)
	fc.c.SetReadDeadline(time.Time{})
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// maxIdleForward is how many idle forwarding connections are kept per peer.
const maxIdleForward = 4

func (p *fwdPool) get(addr string) *fwdConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		l := p.idle[addr]
		if len(l) == 0 {
			return nil
		}
		c := l[len(l)-1]
		p.idle[addr] = l[:len(l)-1]
		if c.alive() {
			return c
		}
		c.c.Close()
	}
}

func (p *fwdPool) put(addr string, c *fwdConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.idle == nil {
		p.idle = map[string][]*fwdConn{}
	}
	if len(p.idle[addr]) >= maxIdleForward {
		c.c.Close()
		return
	}
	p.idle[addr] = append(p.idle[addr], c)
}

func (p *fwdPool) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.idle {
		for _, c := range l {
			c.c.Close()
		}
	}
	p.idle = nil
}

// call sends req to the server at addr and returns its answer, over the
// multiplexed connection to addr, or one of its own for a peer that does
// not multiplex.
func (s *Store) call(ctx context.Context, addr string, req fwdRequest) (fwdResponse, error) {
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		if left <= 0 {
			return fwdResponse{}, context.DeadlineExceeded
		}
		req.TimeoutMS = max(left.Milliseconds(), 1)
	}
	mc, err := s.fwdMux.get(addr, func() (*muxConn, error) { return s.dialMux(addr) })
	if errors.Is(err, errPeerNoMux) {
		return s.callOwnConn(ctx, addr, req)
	}
	if err != nil {
		return fwdResponse{}, fmt.Errorf("connect to %s: %w: %w", addr, errWriteFailed, err)
	}
	resp, err := mc.roundTrip(ctx, req)
	switch {
	case err == nil:
		return resp, nil
	case ctx.Err() != nil:
		return fwdResponse{}, ctx.Err()
	case errors.Is(err, errWriteFailed):
		return fwdResponse{}, fmt.Errorf("call %s on %s: %w", req.Kind, addr, err)
	}
	return fwdResponse{}, fmt.Errorf("call %s on %s: %w: %w", req.Kind, addr, errTransport, err)
}

// callOwnConn is call for a peer that does not multiplex: one request per
// connection at a time. A pooled connection that turns out dead is
// replaced once.
func (s *Store) callOwnConn(ctx context.Context, addr string, req fwdRequest) (fwdResponse, error) {
	for attempt := 0; ; attempt++ {
		fc := s.fwd.get(addr)
		pooled := fc != nil
		if fc == nil {
			c, err := s.mux.dial(addr, s.cfg.TransportTimeout, connForward)
			if err != nil {
				return fwdResponse{}, fmt.Errorf("connect to %s: %w: %w", addr, errWriteFailed, err)
			}
			fc = newFwdConn(c)
		}
		resp, err := roundTrip(ctx, fc, req)
		if err == nil {
			s.fwd.put(addr, fc)
			return resp, nil
		}
		fc.c.Close()
		if ctx.Err() != nil {
			return fwdResponse{}, ctx.Err()
		}
		// Only a stale pooled connection that failed before the request
		// could be read is worth one retry; reads are idempotent, and an
		// apply on a broken pooled connection fails at the write.
		if !pooled || attempt > 0 || req.Kind == "apply" && !errors.Is(err, errWriteFailed) {
			return fwdResponse{}, fmt.Errorf("call %s on %s: %w: %w", req.Kind, addr, errTransport, err)
		}
	}
}

var errWriteFailed = errors.New("request not sent")

// errTransport: the connection to the leader failed after the request may
// have been sent.
var errTransport = errors.New("connection to the leader lost")

func roundTrip(ctx context.Context, fc *fwdConn, req fwdRequest) (fwdResponse, error) {
	stop := context.AfterFunc(ctx, func() { fc.c.SetDeadline(time.Now()) })
	defer stop()
	if err := fc.enc.Encode(req); err != nil {
		return fwdResponse{}, fmt.Errorf("%w: %w", errWriteFailed, err)
	}
	var resp fwdResponse
	if err := fc.r.Decode(&resp); err != nil {
		return fwdResponse{}, err
	}
	return resp, nil
}

// leaderWait bounds how long a call without a deadline waits for a leader
// to be elected before it gives up.
const leaderWait = 30 * time.Second

// toLeader runs req on the leader: locally through local when this server
// leads, else forwarded. It waits through elections and follows a leader
// change when the old leader did not append the command.
func (s *Store) toLeader(ctx context.Context, req fwdRequest, local func(context.Context) (fwdResponse, error)) (fwdResponse, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, leaderWait)
		defer cancel()
	}
	for {
		var resp fwdResponse
		var err error
		if s.raft.State() == raft.Leader {
			resp, err = local(ctx)
		} else if addr, id := s.raft.LeaderWithID(); addr != "" {
			resp, err = s.call(ctx, string(addr), req)
			if err == nil {
				err = decodeErr(resp.Code, resp.Msg)
			}
			var lost *connLostError
			if errors.As(err, &lost) {
				lost.leader = string(id)
			}
		} else {
			err = errNoLeader
		}
		if err == nil || !retryableOnLeader(req.Kind, err) {
			return resp, err
		}
		select {
		case <-ctx.Done():
			return resp, fmt.Errorf("%w (waiting for a raft leader: %w)", ctx.Err(), err)
		case <-s.closing:
			return resp, raftstore.ErrClosed
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// errNoLeader: no leader is known yet (an election is running).
var errNoLeader = fmt.Errorf("%w: no raft leader is known", ErrNotLeader)

// retryableOnLeader says whether req may be sent again after err: always
// when it surely was not appended (no leader, refused by a non-leader, not
// sent); for everything but apply also after a lost connection or a loss of
// leadership, because the other requests are idempotent. Answers such as
// ErrKeyExists or ErrUnknownServer are final.
func retryableOnLeader(kind string, err error) bool {
	if errors.Is(err, errNotLeaderNoApply) || errors.Is(err, errNoLeader) || errors.Is(err, errWriteFailed) {
		return true
	}
	if kind == "apply" {
		return false
	}
	return errors.Is(err, ErrNotLeader) || errors.Is(err, errTransport)
}

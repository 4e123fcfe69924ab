package raftkv

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// Each connection to the raft port starts with one byte naming its
// protocol, so raft's own RPCs and kedge's forwarding RPCs (forward.go)
// share one port and one TLS identity (as Consul and Nomad multiplex theirs).
const (
	connRaft       byte = 'R'
	connForward    byte = 'F' // one request at a time (servers before multiplexing)
	connForwardMux byte = 'M' // requests multiplexed (forwardmux.go)
)

// handshakeTimeout bounds the TLS handshake and the protocol byte of an
// incoming connection, so a silent peer cannot hold an accept slot.
const handshakeTimeout = 10 * time.Second

// muxLayer is raft's StreamLayer with a second protocol beside it. One
// goroutine (acceptLoop) owns the listener; each accepted connection is
// authenticated (mutual TLS when PeerTLS is set) and handed to raft or to
// the forwarding server. Close stops both and is idempotent.
type muxLayer struct {
	ln        net.Listener
	advertise net.Addr
	client    *tls.Config // nil: plain TCP
	server    *tls.Config
	raftConns chan net.Conn
	fwdConns  chan acceptedFwd
	closed    chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
	// beforeMux makes the layer refuse connForwardMux as servers before
	// it did (tests of the fallback).
	beforeMux atomic.Bool
}

var _ raft.StreamLayer = (*muxLayer)(nil)

// newMuxLayer listens on bind. peer, when not nil, is used as the client
// config for dialing peers and, with client certificates required and
// verified against its RootCAs, as the server config.
func newMuxLayer(bind, advertise string, peer *tls.Config) (*muxLayer, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", bind, err)
	}
	m := &muxLayer{ln: ln, raftConns: make(chan net.Conn), fwdConns: make(chan acceptedFwd), closed: make(chan struct{})}
	m.advertise = ln.Addr()
	if advertise != "" {
		if m.advertise, err = net.ResolveTCPAddr("tcp", advertise); err != nil {
			ln.Close()
			return nil, fmt.Errorf("advertise address: %w", err)
		}
	}
	if a, ok := m.advertise.(*net.TCPAddr); !ok || a.IP == nil || a.IP.IsUnspecified() {
		ln.Close()
		return nil, fmt.Errorf("raft address %v is not dialable; Try: set AdvertiseAddr", m.advertise)
	}
	if peer != nil {
		m.client = peer.Clone()
		m.server = peer.Clone()
		m.server.ClientAuth = tls.RequireAndVerifyClientCert
		m.server.ClientCAs = peer.RootCAs
	}
	m.wg.Add(1)
	go m.acceptLoop()
	return m, nil
}

func (m *muxLayer) acceptLoop() {
	defer m.wg.Done()
	for {
		c, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.closed:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.route(c)
		}()
	}
}

// route authenticates c, reads its protocol byte and hands it over.
func (m *muxLayer) route(c net.Conn) {
	c.SetDeadline(time.Now().Add(handshakeTimeout))
	if m.server != nil {
		tc := tls.Server(c, m.server)
		if err := tc.Handshake(); err != nil {
			c.Close()
			return
		}
		c = tc
	}
	var b [1]byte
	if _, err := c.Read(b[:]); err != nil {
		c.Close()
		return
	}
	c.SetDeadline(time.Time{})
	var err error
	switch b[0] {
	case connRaft:
		select {
		case m.raftConns <- c:
		case <-m.closed:
			err = net.ErrClosed
		}
	case connForward, connForwardMux:
		if b[0] == connForwardMux && m.beforeMux.Load() {
			err = fmt.Errorf("unknown protocol %q", b[0])
			break
		}
		select {
		case m.fwdConns <- acceptedFwd{c, b[0]}:
		case <-m.closed:
			err = net.ErrClosed
		}
	default:
		err = fmt.Errorf("unknown protocol %q", b[0])
	}
	if err != nil {
		c.Close()
	}
}

// Accept returns the next raft connection.
func (m *muxLayer) Accept() (net.Conn, error) {
	select {
	case c := <-m.raftConns:
		return c, nil
	case <-m.closed:
		return nil, net.ErrClosed
	}
}

// acceptedFwd is an accepted forwarding connection and its protocol byte.
type acceptedFwd struct {
	net.Conn
	proto byte
}

// acceptForward returns the next forwarding connection.
func (m *muxLayer) acceptForward() (acceptedFwd, error) {
	select {
	case c := <-m.fwdConns:
		return c, nil
	case <-m.closed:
		return acceptedFwd{}, net.ErrClosed
	}
}

// Close stops accepting; connections already handed over belong to their
// owners.
func (m *muxLayer) Close() error {
	var err error
	m.closeOnce.Do(func() {
		close(m.closed)
		err = m.ln.Close()
		m.wg.Wait()
	})
	return err
}

// Addr is the advertised address (raft tells peers this one).
func (m *muxLayer) Addr() net.Addr { return m.advertise }

// Dial opens a raft connection to a peer.
func (m *muxLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return m.dial(string(address), timeout, connRaft)
}

// dial connects to addr, authenticates (TLS) and announces the protocol.
func (m *muxLayer) dial(addr string, timeout time.Duration, proto byte) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	if m.client != nil {
		tc := tls.Client(c, m.client)
		tc.SetDeadline(time.Now().Add(timeout))
		if err := tc.Handshake(); err != nil {
			c.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
		}
		tc.SetDeadline(time.Time{})
		c = tc
	}
	if _, err := c.Write([]byte{proto}); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

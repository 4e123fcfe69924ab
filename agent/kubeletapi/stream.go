package kubeletapi

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/apimachinery/pkg/util/httpstream/wsstream"
	rc "k8s.io/apimachinery/pkg/util/remotecommand"

	"kedge.dev/kedge/internal/spdy"
	"kedge.dev/kedge/runtime"
)

// streamIdleTimeout ends a stream session after this long without traffic,
// like kubelet's default --streaming-connection-idle-timeout.
const streamIdleTimeout = 4 * time.Hour

// streamCreationTimeout bounds the wait for a SPDY client to open the
// streams it announced.
const streamCreationTimeout = rc.DefaultStreamCreationTimeout

// spdyProtocols are the remote command protocols served over SPDY, best
// first. v5 is v4 for SPDY (its CLOSE signal exists only for WebSockets).
var spdyProtocols = []string{rc.StreamProtocolV5Name, rc.StreamProtocolV4Name, rc.StreamProtocolV3Name,
	rc.StreamProtocolV2Name, rc.StreamProtocolV1Name}

// streamOptions are the streams a client asked for.
type streamOptions struct {
	stdin, stdout, stderr, tty bool
}

// parseStreamOptions reads kubelet's exec/attach parameters (input, output,
// error, tty; "1" or "true"). With a TTY there is no separate stderr.
func parseStreamOptions(r *http.Request) (streamOptions, error) {
	q := r.URL.Query()
	on := func(k string) bool { v := q.Get(k); return v == "1" || v == "true" }
	o := streamOptions{stdin: on(corev1.ExecStdinParam), stdout: on(corev1.ExecStdoutParam),
		stderr: on(corev1.ExecStderrParam), tty: on(corev1.ExecTTYParam)}
	if o.tty {
		o.stderr = false
	}
	if !o.stdin && !o.stdout && !o.stderr {
		return o, errors.New("you must specify at least 1 of stdin, stdout, stderr")
	}
	return o, nil
}

// session is one upgraded exec or attach connection: the client's streams
// (nil when not asked for), how to report the end, and done, closed when
// the client's connection is gone.
type session struct {
	conn        io.Closer
	stdin       io.Reader
	stdout      io.Writer
	stderr      io.Writer
	resize      io.Reader
	writeStatus func(metav1.Status) error
	tty         bool
	done        <-chan struct{}
}

// execIO turns the session's streams into the runtime's, with a resize
// channel fed from the resize stream (closed when that stream ends).
func (s *session) execIO() runtime.ExecIO {
	sio := runtime.ExecIO{TTY: s.tty}
	if s.stdin != nil {
		sio.Stdin = s.stdin
	}
	if s.stdout != nil {
		sio.Stdout = s.stdout
	}
	if s.stderr != nil {
		sio.Stderr = s.stderr
	}
	if s.tty && s.resize != nil {
		ch := make(chan runtime.TerminalSize)
		go func() {
			defer close(ch)
			dec := json.NewDecoder(s.resize)
			for {
				var sz struct{ Width, Height uint16 }
				if err := dec.Decode(&sz); err != nil {
					return
				}
				select {
				case ch <- runtime.TerminalSize{Width: sz.Width, Height: sz.Height}:
				case <-s.done:
					return
				}
			}
		}()
		sio.Resize = ch
	}
	return sio
}

// openSession upgrades the request to a WebSocket or SPDY stream session.
// On failure it has answered the client and returns false.
func (s *Server) openSession(w http.ResponseWriter, r *http.Request, o streamOptions) (*session, bool) {
	if wsstream.IsWebSocketRequest(r) {
		return s.openWebSocket(w, r, o)
	}
	return s.openSPDY(w, r, o)
}

// openWebSocket serves the channel protocols: channel.k8s.io (v1 through
// v4, binary or base64) and v5.channel.k8s.io, which kubectl ≥ 1.30 uses.
// Channels: 0 stdin, 1 stdout, 2 stderr, 3 error (status), 4 resize.
func (s *Server) openWebSocket(w http.ResponseWriter, r *http.Request, o streamOptions) (*session, bool) {
	kind := func(on bool, t wsstream.ChannelType) wsstream.ChannelType {
		if on {
			return t
		}
		return wsstream.IgnoreChannel
	}
	channels := []wsstream.ChannelType{kind(o.stdin, wsstream.ReadChannel), kind(o.stdout, wsstream.WriteChannel),
		kind(o.stderr, wsstream.WriteChannel), wsstream.WriteChannel, wsstream.ReadChannel}
	protocols := wsstream.NewDefaultChannelProtocols(channels)
	for _, p := range []string{"v4." + wsstream.ChannelWebSocketProtocol, rc.StreamProtocolV5Name} {
		protocols[p] = wsstream.ChannelProtocolConfig{Binary: true, Channels: channels}
	}
	protocols["v4."+wsstream.Base64ChannelWebSocketProtocol] = wsstream.ChannelProtocolConfig{Binary: false, Channels: channels}
	conn := wsstream.NewConn(protocols)
	conn.SetIdleTimeout(streamIdleTimeout)
	hw := &hijackWatcher{ResponseWriter: w, done: make(chan struct{})}
	proto, streams, err := conn.Open(hw, r)
	if err != nil {
		s.log.Debug("websocket upgrade failed", "path", r.URL.Path, "err", err)
		return nil, false
	}
	// An empty frame on the lowest writable channel tells a v1–v4 client
	// the session is set up (kubelet does the same). A v5 client knows that
	// from the handshake, and client-go before 1.33 starts reading before it
	// has registered its streams, so the frame only made kubectl 1.30–1.32
	// print "Unknown stream id 1, discarding message".
	switch {
	case proto == rc.StreamProtocolV5Name:
	case o.stdout:
		_, _ = streams[rc.StreamStdOut].Write(nil)
	case o.stderr:
		_, _ = streams[rc.StreamStdErr].Write(nil)
	default:
		_, _ = streams[rc.StreamErr].Write(nil)
	}
	ss := &session{conn: conn, tty: o.tty, done: hw.done, resize: streams[rc.StreamResize]}
	if o.stdin {
		ss.stdin = streams[rc.StreamStdIn]
	}
	if o.stdout {
		ss.stdout = streams[rc.StreamStdOut]
	}
	if o.stderr {
		ss.stderr = streams[rc.StreamStdErr]
	}
	switch proto {
	case rc.StreamProtocolV5Name, "v4." + wsstream.ChannelWebSocketProtocol, "v4." + wsstream.Base64ChannelWebSocketProtocol:
		ss.writeStatus = jsonStatus(streams[rc.StreamErr])
	default:
		ss.writeStatus = textStatus(streams[rc.StreamErr])
	}
	return ss, true
}

// openSPDY negotiates a remote command protocol, upgrades to SPDY and
// waits for the streams the client announced by its parameters: error,
// one per requested standard stream and, with a TTY from v3 on, resize.
func (s *Server) openSPDY(w http.ResponseWriter, r *http.Request, o streamOptions) (*session, bool) {
	proto, err := httpstream.Handshake(r, w, spdyProtocols)
	if err != nil {
		return nil, false // Handshake answered
	}
	type received struct {
		stream    httpstream.Stream
		replySent <-chan struct{}
	}
	streamCh := make(chan received)
	stop := make(chan struct{})
	defer close(stop)
	conn := spdy.NewResponseUpgrader().UpgradeResponse(w, r, func(st httpstream.Stream, replySent <-chan struct{}) error {
		select {
		case streamCh <- received{st, replySent}:
			return nil
		case <-stop:
			return errors.New("unexpected stream")
		}
	})
	if conn == nil {
		return nil, false // the upgrader answered
	}
	conn.SetIdleTimeout(streamIdleTimeout)
	if proto == "" {
		proto = rc.StreamProtocolV1Name
	}
	resizable := proto != rc.StreamProtocolV1Name && proto != rc.StreamProtocolV2Name
	want := 1
	for _, on := range []bool{o.stdin, o.stdout, o.stderr, o.tty && resizable} {
		if on {
			want++
		}
	}
	done := make(chan struct{})
	go func() { <-conn.CloseChan(); close(done) }()
	ss := &session{conn: conn, tty: o.tty, done: done}
	// A stream counts once its reply is queued, so that closing the
	// connection early cannot overtake the reply.
	replies := make(chan struct{}, want+4)
	expired := time.NewTimer(streamCreationTimeout)
	defer expired.Stop()
	for got := 0; got < want; {
		select {
		case st := <-streamCh:
			switch st.stream.Headers().Get(corev1.StreamType) {
			case corev1.StreamTypeError:
				if proto == rc.StreamProtocolV1Name || proto == rc.StreamProtocolV2Name || proto == rc.StreamProtocolV3Name {
					ss.writeStatus = textStatus(st.stream)
				} else {
					ss.writeStatus = jsonStatus(st.stream)
				}
			case corev1.StreamTypeStdin:
				ss.stdin = st.stream
			case corev1.StreamTypeStdout:
				ss.stdout = st.stream
			case corev1.StreamTypeStderr:
				ss.stderr = st.stream
			case corev1.StreamTypeResize:
				ss.resize = st.stream
			default:
				s.log.Debug("unexpected stream type", "type", st.stream.Headers().Get(corev1.StreamType))
				continue
			}
			go func(sent <-chan struct{}) {
				select {
				case <-sent:
					replies <- struct{}{}
				case <-stop:
				}
			}(st.replySent)
		case <-replies:
			got++
		case <-expired.C:
			s.log.Debug("timed out waiting for the client's streams", "path", r.URL.Path)
			conn.Close()
			return nil, false
		case <-done:
			return nil, false
		}
	}
	if ss.writeStatus == nil {
		ss.writeStatus = func(metav1.Status) error { return nil }
	}
	if proto == rc.StreamProtocolV1Name && ss.stdin != nil {
		// The first protocol closed stdin right away (issue 13394).
		if c, ok := ss.stdin.(io.Closer); ok {
			c.Close()
		}
	}
	return ss, true
}

// jsonStatus writes the status as JSON (v4 and later): kubectl reads the
// exit code from a NonZeroExitCode status.
func jsonStatus(w io.Writer) func(metav1.Status) error {
	return func(st metav1.Status) error {
		b, err := json.Marshal(st)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
}

// textStatus writes only a failure's message (protocols before v4).
func textStatus(w io.Writer) func(metav1.Status) error {
	return func(st metav1.Status) error {
		if st.Status == metav1.StatusSuccess {
			return nil
		}
		_, err := io.WriteString(w, st.Message)
		return err
	}
}

// exitStatus is the status of a finished command as kubelet reports it.
func exitStatus(code int, err error) metav1.Status {
	switch {
	case err != nil:
		return metav1.Status{Status: metav1.StatusFailure, Code: http.StatusInternalServerError,
			Reason:  metav1.StatusReasonInternalError,
			Message: fmt.Sprintf("Internal error occurred: error executing command in container: %v", err),
			Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{Message: err.Error()}}}}
	case code != 0:
		return metav1.Status{Status: metav1.StatusFailure, Reason: rc.NonZeroExitCodeReason,
			Message: fmt.Sprintf("command terminated with non-zero exit code: exit status %d", code),
			Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{Type: rc.ExitCodeCauseType, Message: fmt.Sprint(code)}}}}
	}
	return metav1.Status{Status: metav1.StatusSuccess}
}

// hijackWatcher passes a ResponseWriter through and closes done when the
// hijacked connection is closed or fails to read: after the hijack the
// request's context no longer tells that the client went away.
type hijackWatcher struct {
	http.ResponseWriter
	done chan struct{}
	once sync.Once
}

// Hijack hijacks the underlying connection and watches it.
func (h *hijackWatcher) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	wc := &watchedConn{Conn: c, gone: func() { h.once.Do(func() { close(h.done) }) }}
	// Keep what the server had buffered, then read through the watcher.
	pending, _ := rw.Reader.Peek(rw.Reader.Buffered())
	r := io.MultiReader(bytes.NewReader(bytes.Clone(pending)), wc)
	return wc, bufio.NewReadWriter(bufio.NewReader(r), rw.Writer), nil
}

// watchedConn reports a read error or Close once.
type watchedConn struct {
	net.Conn
	gone func()
}

func (c *watchedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		c.gone()
	}
	return n, err
}

func (c *watchedConn) Close() error {
	c.gone()
	return c.Conn.Close()
}

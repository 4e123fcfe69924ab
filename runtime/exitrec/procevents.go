package exitrec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// The kernel's process events connector (linux/cn_proc.h, linux/connector.h).
const (
	cnIdxProc         = 1
	cnValProc         = 1
	procCnMcastListen = 1
	procEventExit     = 0x80000000

	nlmsgHdrLen = 16 // struct nlmsghdr
	cnMsgLen    = 20 // struct cn_msg without data
	// struct proc_event up to the exit event's exit_signal: what, cpu,
	// timestamp_ns, then process_pid, process_tgid, exit_code, exit_signal.
	procEventExitLen = 4 + 4 + 8 + 4*4
)

// exitEvent is one process exit as the kernel reports it; PIDs are in the
// initial PID namespace.
type exitEvent struct {
	pid, tgid int
	status    unix.WaitStatus // the task's exit_code: a wait(2) status
}

// errNotPermitted means the connector will not report events to this
// process: it needs CAP_NET_ADMIN in the initial user and PID namespace.
var errNotPermitted = errors.New("process events connector not available here")

// procEvents is a subscription to the kernel's process events.
type procEvents struct {
	fd  int
	buf []byte
}

// listenProcEvents subscribes to process events. Events are multicast: a
// socket sees every process's exit from its subscription on.
func listenProcEvents() (*procEvents, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_CONNECTOR)
	if err != nil {
		return nil, fmt.Errorf("open process events connector: %w", err)
	}
	p := &procEvents{fd: fd, buf: make([]byte, 64<<10)}
	// A burst of exits (a build in some container) must not overflow the
	// queue while the recorder sleeps: losing an event loses an exit code.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20); err != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 8<<20)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: cnIdxProc, Pid: 0}); err != nil {
		p.Close()
		return nil, fmt.Errorf("bind process events connector: %w", err)
	}
	if err := p.send(procCnMcastListen); err != nil {
		p.Close()
		if errors.Is(err, unix.EPERM) {
			return nil, fmt.Errorf("%w: %v", errNotPermitted, err)
		}
		return nil, fmt.Errorf("subscribe to process events: %w", err)
	}
	return p, nil
}

// send writes a connector control message (listen or ignore).
func (p *procEvents) send(op uint32) error {
	msg := make([]byte, nlmsgHdrLen+cnMsgLen+4)
	ne := binary.NativeEndian
	ne.PutUint32(msg[0:], uint32(len(msg)))      // nlmsg_len
	ne.PutUint16(msg[4:], unix.NLMSG_DONE)       // nlmsg_type
	ne.PutUint32(msg[12:], uint32(os.Getpid()))  // nlmsg_pid
	ne.PutUint32(msg[nlmsgHdrLen+0:], cnIdxProc) // cn_msg.id.idx
	ne.PutUint32(msg[nlmsgHdrLen+4:], cnValProc) // cn_msg.id.val
	ne.PutUint16(msg[nlmsgHdrLen+16:], 4)        // cn_msg.len
	ne.PutUint32(msg[nlmsgHdrLen+cnMsgLen:], op) // the operation
	return unix.Sendto(p.fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
}

// read blocks for the next datagram and returns the exits in it. An
// overflowed queue is reported as unix.ENOBUFS: events were lost.
func (p *procEvents) read() ([]exitEvent, error) {
	n, _, err := unix.Recvfrom(p.fd, p.buf, 0)
	if err != nil {
		return nil, err
	}
	return parseExits(p.buf[:n]), nil
}

// setReadTimeout bounds read so that the caller can look at other things
// (its context, the idle check) now and then.
func (p *procEvents) setReadTimeout(d int64) error {
	tv := unix.NsecToTimeval(d)
	return unix.SetsockoptTimeval(p.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
}

// Close ends the subscription.
func (p *procEvents) Close() error { return unix.Close(p.fd) }

// parseExits decodes the exit events of a netlink datagram from the
// connector; other events and malformed messages are skipped.
func parseExits(b []byte) []exitEvent {
	var out []exitEvent
	ne := binary.NativeEndian
	for len(b) >= nlmsgHdrLen {
		l := int(ne.Uint32(b[0:]))
		if l < nlmsgHdrLen || l > len(b) {
			break
		}
		msg := b[nlmsgHdrLen:l]
		b = b[min(len(b), (l+3)&^3):] // netlink messages are 4-byte aligned
		if len(msg) < cnMsgLen {
			continue
		}
		if ne.Uint32(msg[0:]) != cnIdxProc || ne.Uint32(msg[4:]) != cnValProc {
			continue
		}
		data := msg[cnMsgLen:]
		if dl := int(ne.Uint16(msg[16:])); dl < len(data) {
			data = data[:dl]
		}
		if len(data) < procEventExitLen || ne.Uint32(data[0:]) != procEventExit {
			continue
		}
		ev := data[16:]
		out = append(out, exitEvent{
			pid:    int(int32(ne.Uint32(ev[0:]))),
			tgid:   int(int32(ne.Uint32(ev[4:]))),
			status: unix.WaitStatus(ne.Uint32(ev[8:])),
		})
	}
	return out
}

// Package fifopump reads many pipes with one goroutine.
//
// A node's containers write their stdout and stderr into FIFOs that the
// runtime reads into log files. Most containers write little and rarely;
// a goroutine (and, before, a read buffer) per stream waiting on each FIFO
// costs the agent memory per pod for nothing. A Pump waits on all of them
// with one epoll set and one read buffer, and hands what it reads to each
// source's sink on its goroutine.
package fifopump

import (
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// ErrRemoved is what done receives for a source that Remove ended.
var ErrRemoved = errors.New("fifopump: source removed")

// ErrClosed is returned by Add after Close, and what done receives for a
// source still registered when the Pump closes.
var ErrClosed = errors.New("fifopump: pump closed")

// readsPerWake bounds how many reads one ready source gets before the
// others have their turn (epoll is level-triggered: it comes back).
const readsPerWake = 16

// Pump reads registered file descriptors until each reaches EOF or fails.
// Its methods are safe for concurrent use, except from a sink or done
// callback, which run on the Pump's goroutine and must not block on it.
// A slow sink delays every other source (their writers block once their
// pipes are full), so sinks hand the bytes on without waiting: the
// runtime's append to a log file and queue a copy for attached clients.
type Pump struct {
	epfd int
	wake int // eventfd: Remove and Close queue work and wake the loop
	buf  []byte

	mu      sync.Mutex
	sources map[int]*Source
	removes []*Source
	closed  bool
	exited  chan struct{}
}

// Source is one registered file descriptor.
type Source struct {
	p    *Pump
	fd   int
	sink func([]byte) error
	done func(error)
	gone chan struct{} // closed after done was called
}

// New starts a Pump whose reads take up to bufSize bytes at a time.
func New(bufSize int) (*Pump, error) {
	if bufSize <= 0 {
		return nil, fmt.Errorf("fifopump: buffer size %d", bufSize)
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("fifopump: epoll_create1: %w", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("fifopump: eventfd: %w", err)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wake)}); err != nil {
		unix.Close(wake)
		unix.Close(epfd)
		return nil, fmt.Errorf("fifopump: watch eventfd: %w", err)
	}
	p := &Pump{epfd: epfd, wake: wake, buf: make([]byte, bufSize), sources: map[int]*Source{}, exited: make(chan struct{})}
	go p.loop()
	return p, nil
}

// Add hands fd, a non-blocking read end, to the Pump, which owns it from
// then on. The Pump calls sink with what it reads, in order, until the
// writers all close it (EOF), a read fails or sink returns an error; then
// it closes fd and calls done with nil (EOF) or that error. The Source's
// Remove, or Close, end it early. The slice handed to sink is only valid
// during the call. On error Add leaves fd open.
func (p *Pump) Add(fd int, sink func([]byte) error, done func(error)) (*Source, error) {
	s := &Source{p: p, fd: fd, sink: sink, done: done, gone: make(chan struct{})}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	if _, dup := p.sources[fd]; dup {
		return nil, fmt.Errorf("fifopump: fd %d added twice", fd)
	}
	p.sources[fd] = s
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
		delete(p.sources, fd)
		return nil, fmt.Errorf("fifopump: watch fd %d: %w", fd, err)
	}
	return s, nil
}

// Remove ends s (done receives ErrRemoved unless s had ended already) and
// returns once done has returned and s's descriptor is closed.
func (s *Source) Remove() {
	p := s.p
	p.mu.Lock()
	if !p.closed {
		p.removes = append(p.removes, s)
	}
	p.mu.Unlock()
	p.poke()
	<-s.gone
}

// Close ends every source still registered (done receives ErrClosed),
// stops the Pump's goroutine and releases its descriptors.
func (p *Pump) Close() error {
	p.mu.Lock()
	already := p.closed
	p.closed = true
	p.mu.Unlock()
	if !already {
		p.poke()
	}
	<-p.exited
	return nil
}

func (p *Pump) poke() {
	one := [8]byte{1}
	_, _ = unix.Write(p.wake, one[:]) // EAGAIN: a wake-up is pending anyway
}

func (p *Pump) loop() {
	defer close(p.exited)
	events := make([]unix.EpollEvent, 64)
	for {
		n, err := unix.EpollWait(p.epfd, events, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			// Only a bug gets here (EBADF, EINVAL); end every source so
			// that nobody waits forever.
			p.shutdown(fmt.Errorf("fifopump: epoll_wait: %w", err))
			return
		}
		for _, ev := range events[:n] {
			fd := int(ev.Fd)
			if fd == p.wake {
				var b [8]byte
				_, _ = unix.Read(p.wake, b[:])
				continue
			}
			p.mu.Lock()
			s := p.sources[fd]
			p.mu.Unlock()
			if s != nil {
				p.drain(s)
			}
		}
		p.mu.Lock()
		removes, closed := p.removes, p.closed
		p.removes = nil
		p.mu.Unlock()
		for _, s := range removes {
			p.finish(s, ErrRemoved)
		}
		if closed {
			p.shutdown(ErrClosed)
			return
		}
	}
}

// drain reads s until it would block, up to readsPerWake reads.
func (p *Pump) drain(s *Source) {
	for range readsPerWake {
		n, err := unix.Read(s.fd, p.buf)
		switch {
		case n > 0:
			if err := s.sink(p.buf[:n]); err != nil {
				p.finish(s, err)
				return
			}
		case errors.Is(err, unix.EINTR):
		case errors.Is(err, unix.EAGAIN):
			return
		case err != nil:
			p.finish(s, fmt.Errorf("read fd %d: %w", s.fd, err))
			return
		default:
			p.finish(s, nil) // EOF
			return
		}
	}
}

// finish unregisters s, closes its descriptor and calls done, once.
func (p *Pump) finish(s *Source, err error) {
	p.mu.Lock()
	cur, ok := p.sources[s.fd]
	if ok && cur == s {
		delete(p.sources, s.fd)
	}
	p.mu.Unlock()
	if !ok || cur != s {
		return // ended before
	}
	_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, s.fd, nil)
	unix.Close(s.fd)
	s.done(err)
	close(s.gone)
}

// shutdown ends every source with err and releases the Pump's descriptors.
func (p *Pump) shutdown(err error) {
	p.mu.Lock()
	p.closed = true
	left := make([]*Source, 0, len(p.sources))
	for _, s := range p.sources {
		left = append(left, s)
	}
	removes := p.removes
	p.removes = nil
	p.mu.Unlock()
	for _, s := range left {
		p.finish(s, err)
	}
	for _, s := range removes {
		p.finish(s, err) // no-op unless still registered
	}
	unix.Close(p.wake)
	unix.Close(p.epfd)
}

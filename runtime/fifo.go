package runtime

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// fifoChunk is how much of a container's output one read takes.
const fifoChunk = 4096

// fifoBuffers lends read buffers to the output copiers while they copy.
// Two copiers per container wait for output most of their life; with a
// buffer each they held ~0.5 MiB of idle memory at 110 pods, and only
// the few with output at a time need one.
var fifoBuffers = sync.Pool{New: func() any { return new([fifoChunk]byte) }}

// copyFIFO hands what f's writers write to sink until they all close it
// (EOF), sink fails, or f is closed (os.ErrClosed). f must be
// non-blocking, so that Go's poller waits for output; the copier holds a
// read buffer only while output is there to read.
func copyFIFO(f *os.File, sink func([]byte) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("copy %s: %w", f.Name(), err)
	}
	var copyErr error
	err = rc.Read(func(fd uintptr) bool {
		buf := fifoBuffers.Get().(*[fifoChunk]byte)
		defer fifoBuffers.Put(buf)
		for {
			n, err := unix.Read(int(fd), buf[:])
			switch {
			case n > 0:
				if err := sink(buf[:n]); err != nil {
					copyErr = err
					return true
				}
			case errors.Is(err, unix.EINTR):
			case errors.Is(err, unix.EAGAIN):
				return false // wait for more
			case err != nil:
				copyErr = fmt.Errorf("read %s: %w", f.Name(), err)
				return true
			default:
				return true // EOF: every writer closed
			}
		}
	})
	if err != nil {
		// RawConn reports a Close during the wait as internal/poll's
		// ErrFileClosing; the file's own methods say os.ErrClosed.
		if _, serr := f.Stat(); errors.Is(serr, os.ErrClosed) {
			err = os.ErrClosed
		}
		return fmt.Errorf("copy %s: %w", f.Name(), err)
	}
	return copyErr
}

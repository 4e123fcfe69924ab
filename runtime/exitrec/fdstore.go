package exitrec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// The recorder also keeps file descriptors for the runtime, as systemd's
// file descriptor store does for services: the pty master of a TTY
// container and the write end of a container's stdin pipe live in the
// process that starts the container, and would close with it — a shell
// on a terminal would get SIGHUP, `cat` on stdin an EOF. Held by the
// recorder they survive kedge, and a restarted kedge takes them back.

const fdSocketName = "fdstore.sock"

// fdRequest is one request on the fd store socket; fds travel beside it
// as SCM_RIGHTS.
type fdRequest struct {
	Op    string   `json:"op"` // "put", "get" or "drop"
	Key   string   `json:"key"`
	Names []string `json:"names,omitempty"` // put: one name per fd
}

// fdReply answers a request; for "get" the fds travel beside it.
type fdReply struct {
	Names []string `json:"names,omitempty"`
	Error string   `json:"error,omitempty"`
}

// fdStore is the recorder's side: fds by key.
type fdStore struct {
	mu   sync.Mutex
	held map[string]heldFDs
	log  *slog.Logger
}

type heldFDs struct {
	names []string
	files []*os.File
}

func (s *fdStore) put(key string, names []string, files []*os.File) {
	s.mu.Lock()
	old := s.held[key]
	s.held[key] = heldFDs{names: names, files: files}
	s.mu.Unlock()
	closeAll(old.files)
}

// drop closes what is held for key.
func (s *fdStore) drop(key string) {
	s.mu.Lock()
	old, ok := s.held[key]
	delete(s.held, key)
	s.mu.Unlock()
	if ok {
		closeAll(old.files)
		s.log.Info("released file descriptors", "key", key)
	}
}

func (s *fdStore) get(key string) (heldFDs, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.held[key]
	return h, ok
}

func (s *fdStore) closeAll() {
	s.mu.Lock()
	held := s.held
	s.held = map[string]heldFDs{}
	s.mu.Unlock()
	for _, h := range held {
		closeAll(h.files)
	}
}

func closeAll(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

// serve answers requests on lis until it is closed.
func (s *fdStore) serve(lis *net.UnixListener) {
	for {
		conn, err := lis.AcceptUnix()
		if err != nil {
			return
		}
		go s.handle(conn)
	}
}

func (s *fdStore) handle(conn *net.UnixConn) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var req fdRequest
	files, err := readMsg(conn, &req)
	if err != nil {
		closeAll(files)
		s.log.Warn("fd store: bad request", "err", err)
		return
	}
	var reply fdReply
	var send []*os.File
	switch req.Op {
	case "put":
		if len(files) != len(req.Names) {
			closeAll(files)
			reply.Error = fmt.Sprintf("%d names for %d file descriptors", len(req.Names), len(files))
			break
		}
		s.put(req.Key, req.Names, files)
		s.log.Info("holding file descriptors", "key", req.Key, "names", req.Names)
	case "get":
		closeAll(files)
		if h, ok := s.get(req.Key); ok {
			reply.Names, send = h.names, h.files
		}
	case "drop":
		closeAll(files)
		s.drop(req.Key)
	default:
		closeAll(files)
		reply.Error = fmt.Sprintf("unknown op %q", req.Op)
	}
	if err := writeMsg(conn, reply, send); err != nil {
		s.log.Warn("fd store: reply", "err", err)
	}
}

// listenFDStore opens the fd store socket in dir, replacing a stale one
// (the caller holds the recorder lock, so no other recorder uses it).
func listenFDStore(dir string) (*net.UnixListener, error) {
	path := filepath.Join(dir, fdSocketName)
	_ = os.Remove(path)
	lis, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen on fd store socket: %w", err)
	}
	lis.SetUnlinkOnClose(false) // a leaving recorder must not remove its successor's socket
	if err := os.Chmod(path, 0o600); err != nil {
		lis.Close()
		return nil, fmt.Errorf("fd store socket: %w", err)
	}
	return lis, nil
}

// writeMsg sends v as one JSON message with files as SCM_RIGHTS.
func writeMsg(conn *net.UnixConn, v any, files []*os.File) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var oob []byte
	if len(files) > 0 {
		fds := make([]int, len(files))
		for i, f := range files {
			fds[i] = int(f.Fd())
		}
		oob = unix.UnixRights(fds...)
	}
	_, _, err = conn.WriteMsgUnix(b, oob, nil)
	return err
}

// readMsg reads one JSON message into v and the files sent with it.
func readMsg(conn *net.UnixConn, v any) ([]*os.File, error) {
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(16*4))
	n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, err
	}
	var files []*os.File
	if oobn > 0 {
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return nil, fmt.Errorf("parse control message: %w", err)
		}
		for _, m := range msgs {
			fds, err := unix.ParseUnixRights(&m)
			if err != nil {
				continue
			}
			for _, fd := range fds {
				unix.CloseOnExec(fd)
				files = append(files, os.NewFile(uintptr(fd), "passed"))
			}
		}
	}
	if err := json.Unmarshal(buf[:n], v); err != nil {
		return files, fmt.Errorf("decode message: %w", err)
	}
	return files, nil
}

// fdCall makes one request to the recorder's fd store in dir.
func fdCall(ctx context.Context, dir string, req fdRequest, files []*os.File) (fdReply, []*os.File, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", filepath.Join(dir, fdSocketName))
	if err != nil {
		return fdReply{}, nil, fmt.Errorf("reach the exit recorder's fd store: %w", err)
	}
	conn := c.(*net.UnixConn)
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	} else {
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	}
	if err := writeMsg(conn, req, files); err != nil {
		return fdReply{}, nil, fmt.Errorf("fd store %s: %w", req.Op, err)
	}
	var reply fdReply
	got, err := readMsg(conn, &reply)
	if err != nil {
		closeAll(got)
		return fdReply{}, nil, fmt.Errorf("fd store %s: %w", req.Op, err)
	}
	if reply.Error != "" {
		closeAll(got)
		return reply, nil, fmt.Errorf("fd store %s: %s", req.Op, reply.Error)
	}
	return reply, got, nil
}

// StoreFiles hands the recorder copies of files to keep under key (a
// container ID), replacing what it kept for key; names label them for
// TakeFiles. The recorder releases them on DropFiles or when the
// container registered with key ends.
func (d *Dir) StoreFiles(ctx context.Context, key string, names []string, files []*os.File) error {
	if len(names) != len(files) {
		return errors.New("store files: one name per file")
	}
	_, _, err := fdCall(ctx, d.path, fdRequest{Op: "put", Key: key, Names: names}, files)
	return err
}

// TakeFiles returns copies of the files kept under key, by name; an empty
// map if none are kept.
func (d *Dir) TakeFiles(ctx context.Context, key string) (map[string]*os.File, error) {
	reply, files, err := fdCall(ctx, d.path, fdRequest{Op: "get", Key: key}, nil)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*os.File, len(files))
	for i, f := range files {
		if i < len(reply.Names) {
			out[reply.Names[i]] = f
		} else {
			f.Close()
		}
	}
	return out, nil
}

// DropFiles makes the recorder close what it keeps under key.
func (d *Dir) DropFiles(ctx context.Context, key string) error {
	_, _, err := fdCall(ctx, d.path, fdRequest{Op: "drop", Key: key}, nil)
	return err
}

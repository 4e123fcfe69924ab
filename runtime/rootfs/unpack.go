package rootfs

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// Whiteout markers of the OCI image layer format.
const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	whiteoutOpaque = ".wh..wh..opq"
)

// overlayOpaqueXattr marks a directory whose lower contents are hidden.
const overlayOpaqueXattr = "trusted.overlay.opaque"

// ErrUnsafePath is wrapped when a layer entry would land outside the layer.
var ErrUnsafePath = errors.New("unsafe path in layer")

// unpackTar extracts the layer tar r into dir (which must exist and be
// empty), converting OCI whiteouts into overlayfs whiteouts: ".wh.NAME"
// becomes a 0/0 character device NAME and ".wh..wh..opq" sets the opaque
// xattr on its directory. It returns the number of bytes of file content.
// Ownership, modes, xattrs and times are kept; directory times are set last
// because creating their children changes them.
func unpackTar(ctx context.Context, dir string, r io.Reader) (int64, error) {
	tr := tar.NewReader(r)
	type dirTime struct {
		path  string
		mtime time.Time
	}
	var dirTimes []dirTime
	var size int64
	for {
		if err := ctx.Err(); err != nil {
			return size, err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return size, fmt.Errorf("read layer tar: %w", err)
		}
		name := path.Clean("/" + hdr.Name)
		if name == "/" {
			continue
		}
		parentRel, base := path.Split(name)
		// Resolve the parent inside dir: a symlink created earlier in this
		// layer must not lead the write outside of it.
		parent, err := securejoin.SecureJoin(dir, parentRel)
		if err != nil {
			return size, fmt.Errorf("%w: %q: %v", ErrUnsafePath, hdr.Name, err)
		}
		if err := os.MkdirAll(parent, 0o755); err != nil {
			return size, fmt.Errorf("create parent of %q: %w", hdr.Name, err)
		}
		if strings.HasPrefix(base, whiteoutPrefix) {
			if err := applyWhiteout(parent, base); err != nil {
				return size, fmt.Errorf("whiteout %q: %w", hdr.Name, err)
			}
			continue
		}
		target := filepath.Join(parent, base)
		n, err := extractEntry(dir, target, hdr, tr)
		if err != nil {
			return size, fmt.Errorf("extract %q: %w", hdr.Name, err)
		}
		size += n
		if hdr.Typeflag == tar.TypeDir {
			dirTimes = append(dirTimes, dirTime{target, hdr.ModTime})
		}
	}
	for i := len(dirTimes) - 1; i >= 0; i-- {
		if err := setTimes(dirTimes[i].path, dirTimes[i].mtime); err != nil {
			return size, err
		}
	}
	return size, nil
}

func applyWhiteout(parent, base string) error {
	switch {
	case base == whiteoutOpaque:
		return unix.Lsetxattr(parent, overlayOpaqueXattr, []byte("y"), 0)
	case strings.HasPrefix(base, whiteoutMeta):
		// Other AUFS metadata (.wh..wh.plnk, .wh..wh.aufs) has no meaning here.
		return nil
	default:
		target := filepath.Join(parent, strings.TrimPrefix(base, whiteoutPrefix))
		if err := os.RemoveAll(target); err != nil {
			return err
		}
		return unix.Mknod(target, unix.S_IFCHR, 0)
	}
}

// extractEntry creates one non-whiteout entry at target.
func extractEntry(root, target string, hdr *tar.Header, r io.Reader) (int64, error) {
	// Replace whatever is there, except that a directory stays a directory.
	if fi, err := os.Lstat(target); err == nil {
		if !(fi.IsDir() && hdr.Typeflag == tar.TypeDir) {
			if err := os.RemoveAll(target); err != nil {
				return 0, err
			}
		}
	}
	var n int64
	mode := uint32(hdr.Mode & 0o7777)
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := os.Mkdir(target, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return 0, err
		}
	case tar.TypeReg, tar.TypeRegA:
		f, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return 0, err
		}
		n, err = io.Copy(f, r)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return n, err
		}
	case tar.TypeSymlink:
		if err := os.Symlink(hdr.Linkname, target); err != nil {
			return 0, err
		}
	case tar.TypeLink:
		src, err := securejoin.SecureJoin(root, path.Dir(path.Clean("/"+hdr.Linkname)))
		if err != nil {
			return 0, fmt.Errorf("%w: link %q: %v", ErrUnsafePath, hdr.Linkname, err)
		}
		src = filepath.Join(src, path.Base(hdr.Linkname))
		if err := os.Link(src, target); err != nil {
			return 0, err
		}
		// A hard link shares its inode's metadata, already set.
		return 0, nil
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		typ := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[hdr.Typeflag]
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknod(target, typ|mode, int(dev)); err != nil {
			return 0, err
		}
	case tar.TypeXGlobalHeader:
		return 0, nil
	default:
		return 0, fmt.Errorf("unsupported tar entry type %q", hdr.Typeflag)
	}
	if err := os.Lchown(target, hdr.Uid, hdr.Gid); err != nil {
		return n, err
	}
	for k, v := range hdr.PAXRecords {
		if attr, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			if err := unix.Lsetxattr(target, attr, []byte(v), 0); err != nil && !errors.Is(err, unix.ENOTSUP) {
				return n, fmt.Errorf("set xattr %s: %w", attr, err)
			}
		}
	}
	if hdr.Typeflag != tar.TypeSymlink {
		// After chown, which clears set-id bits.
		if err := unix.Fchmodat(unix.AT_FDCWD, target, mode, 0); err != nil {
			return n, err
		}
	}
	if hdr.Typeflag != tar.TypeDir {
		if err := setTimes(target, hdr.ModTime); err != nil {
			return n, err
		}
	}
	return n, nil
}

func setTimes(p string, mtime time.Time) error {
	ts := unix.NsecToTimespec(mtime.UnixNano())
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times of %s: %w", p, err)
	}
	return nil
}

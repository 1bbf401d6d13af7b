package image

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Whiteout file names of the OCI image layer format.
const (
	whiteoutPrefix = ".wh."
	whiteoutOpaque = ".wh..wh..opq"
	whiteoutMeta   = ".wh..wh."
)

// WhiteoutMode says what a layer's whiteouts become on disk.
type WhiteoutMode int

const (
	// ApplyWhiteouts deletes what the whiteouts name: the tar is applied
	// on top of the tree already in the directory (a flattened rootfs).
	ApplyWhiteouts WhiteoutMode = iota
	// OverlayWhiteouts writes overlayfs markers into an empty layer
	// directory: a 0:0 character device per deleted name and the
	// trusted.overlay.opaque xattr on opaque directories (needs root).
	OverlayWhiteouts
)

// UnpackOptions tune Unpack.
type UnpackOptions struct {
	Whiteouts WhiteoutMode
	// Privileged: chown to the recorded owners and create device nodes
	// (root). Otherwise files belong to the caller and devices are skipped.
	Privileged bool
}

// UnpackResult reports what Unpack did.
type UnpackResult struct {
	// Size is the number of bytes of tar stream read.
	Size int64
	// Skipped lists entries not created (device nodes without privilege).
	Skipped []string
}

// EscapeError is a layer entry that would reach outside the root.
type EscapeError struct {
	Entry, Reason string
}

func (e *EscapeError) Error() string {
	return fmt.Sprintf("layer entry %q escapes the root: %s", e.Entry, e.Reason)
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// Unpack extracts the (uncompressed) tar stream r into dir, which must
// exist. Every path is resolved inside dir: ".." cannot climb above it,
// absolute names and absolute symlink targets are taken relative to it,
// and a symlink met on the way is followed as if dir were "/", so no entry
// can create or change anything outside dir. Hard links must point inside
// dir too. Whiteouts are applied or turned into overlay markers.
func Unpack(r io.Reader, dir string, opt UnpackOptions) (UnpackResult, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return UnpackResult{}, err
	}
	cr := &countingReader{r: r}
	tr := tar.NewReader(cr)
	u := &unpacker{root: root, opt: opt, written: map[string]bool{}}
	var res UnpackResult
	type dirTime struct {
		path string
		mt   time.Time
	}
	var dirs []dirTime
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return res, fmt.Errorf("read layer: %w", err)
		}
		p, err := u.entry(hdr, tr)
		if err != nil {
			return res, err
		}
		if p == "" {
			if hdr.Typeflag == tar.TypeChar || hdr.Typeflag == tar.TypeBlock {
				res.Skipped = append(res.Skipped, hdr.Name)
			}
			continue
		}
		if hdr.Typeflag == tar.TypeDir {
			dirs = append(dirs, dirTime{p, hdr.ModTime})
		}
	}
	// Directory times last: creating their children changed them.
	for i := len(dirs) - 1; i >= 0; i-- {
		_ = setTimes(dirs[i].path, dirs[i].mt)
	}
	// Drain what follows the tar's end (padding) so callers can verify digests.
	_, _ = io.Copy(io.Discard, cr)
	res.Size = cr.n
	return res, nil
}

type unpacker struct {
	root string
	opt  UnpackOptions
	// written holds the paths this layer created: a whiteout or opaque
	// marker only removes what lower layers left.
	written map[string]bool
}

// clean turns an entry name into a slash path relative to the root;
// names that climb above the root are refused.
func clean(name string) (string, error) {
	n := path.Clean("/" + strings.TrimPrefix(name, "./"))
	raw := path.Clean(strings.TrimLeft(name, "/"))
	if raw == ".." || strings.HasPrefix(raw, "../") {
		return "", &EscapeError{Entry: name, Reason: `".." climbs above the root`}
	}
	return strings.TrimPrefix(n, "/"), nil
}

// resolve returns the host path of rel inside root, following every
// symlink in it as if root were "/" (securejoin's rules: ".." stops at the
// root, absolute targets restart at the root). Components that do not
// exist are appended as they are.
func resolve(root, rel string) (string, error) {
	var resolved string
	remaining := rel
	links := 0
	for remaining != "" {
		var part string
		part, remaining, _ = strings.Cut(remaining, "/")
		switch part {
		case "", ".":
			continue
		case "..":
			resolved = path.Dir(resolved)
			if resolved == "." || resolved == "/" {
				resolved = ""
			}
			continue
		}
		next := path.Join(resolved, part)
		fi, err := os.Lstat(filepath.Join(root, next))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
				resolved = next
				continue
			}
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			resolved = next
			continue
		}
		links++
		if links > 255 {
			return "", fmt.Errorf("resolve %q: %w", rel, unix.ELOOP)
		}
		target, err := os.Readlink(filepath.Join(root, next))
		if err != nil {
			return "", err
		}
		if path.IsAbs(target) {
			resolved = ""
		}
		if remaining == "" {
			remaining = target
		} else {
			remaining = target + "/" + remaining
		}
	}
	return filepath.Join(root, resolved), nil
}

// parent resolves the directory an entry goes into and creates it (and
// any missing parents) when needed; it returns the entry's host path.
func (u *unpacker) parent(rel string) (string, error) {
	dir, base := path.Split(rel)
	pdir, err := resolve(u.root, dir)
	if err != nil {
		return "", err
	}
	if !within(u.root, pdir) {
		return "", &EscapeError{Entry: rel, Reason: "parent resolves outside"}
	}
	if err := u.mkdirAll(pdir); err != nil {
		return "", err
	}
	return filepath.Join(pdir, base), nil
}

// mkdirAll creates the missing directories of p (already resolved, so no
// component is a symlink) with mode 0755.
func (u *unpacker) mkdirAll(p string) error {
	fi, err := os.Lstat(p)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("unpack: %s is not a directory", u.rel(p))
		}
		return nil
	}
	if p == u.root {
		return err
	}
	if err := u.mkdirAll(filepath.Dir(p)); err != nil {
		return err
	}
	if err := os.Mkdir(p, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return nil
}

func within(root, p string) bool {
	return p == root || strings.HasPrefix(p, root+string(filepath.Separator))
}

func (u *unpacker) rel(p string) string {
	r, _ := filepath.Rel(u.root, p)
	return "/" + r
}

// entry creates one tar entry; it returns its host path ("" when skipped).
func (u *unpacker) entry(hdr *tar.Header, r io.Reader) (string, error) {
	rel, err := clean(hdr.Name)
	if err != nil {
		return "", err
	}
	if rel == "" {
		return "", nil // the root itself
	}
	base := path.Base(rel)
	if strings.HasPrefix(base, whiteoutPrefix) {
		return "", u.whiteout(rel, base)
	}
	target, err := u.parent(rel)
	if err != nil {
		return "", fmt.Errorf("unpack %s: %w", hdr.Name, err)
	}
	if err := replaceExisting(target, hdr); err != nil {
		return "", fmt.Errorf("unpack %s: %w", hdr.Name, err)
	}
	if hdr.Typeflag == tar.TypeLink {
		return u.hardLink(hdr, target) // a hard link shares the target's metadata
	}
	made, err := u.create(hdr, target, r)
	if err != nil || !made {
		return "", err
	}
	u.written[target] = true
	if err := u.meta(target, hdr); err != nil {
		return "", fmt.Errorf("unpack %s: %w", hdr.Name, err)
	}
	return target, nil
}

// replaceExisting removes what is at target, except a directory that a
// directory entry replaces.
func replaceExisting(target string, hdr *tar.Header) error {
	if fi, err := os.Lstat(target); err == nil {
		if !(fi.IsDir() && hdr.Typeflag == tar.TypeDir) {
			return os.RemoveAll(target)
		}
	}
	return nil
}

// create makes the file, directory, symlink, FIFO or device an entry
// (not a hard link) describes at target, which nothing occupies except
// possibly a directory. It reports false for entries it skips: devices
// when unprivileged, and headers that carry no file.
func (u *unpacker) create(hdr *tar.Header, target string, r io.Reader) (bool, error) {
	mode := uint32(hdr.Mode) & 0o7777
	var err error
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err = os.Mkdir(target, 0o700); errors.Is(err, fs.ErrExist) {
			err = nil
		}
	case tar.TypeReg, tar.TypeGNUSparse: // archive/tar reads TypeRegA as TypeReg
		err = writeNewFile(target, r)
	case tar.TypeSymlink:
		// The target is stored as written; it is only ever followed by
		// resolve (inside the root) or inside the container.
		err = os.Symlink(hdr.Linkname, target)
	case tar.TypeFifo:
		err = unix.Mkfifo(target, mode)
	case tar.TypeChar, tar.TypeBlock:
		if !u.opt.Privileged {
			return false, nil
		}
		kind := uint32(unix.S_IFCHR)
		if hdr.Typeflag == tar.TypeBlock {
			kind = unix.S_IFBLK
		}
		err = unix.Mknod(target, kind|mode, int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))))
	default:
		return false, nil // pax/global headers and the like carry no file
	}
	if err != nil {
		return false, fmt.Errorf("unpack %s: %w", hdr.Name, err)
	}
	return true, nil
}

// writeNewFile creates target (which must not exist and is never
// followed if it is a symlink) and copies r into it.
func writeNewFile(target string, r io.Reader) error {
	f, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// hardLink links target to the entry's link target, which must resolve
// inside the root, exist and not be a directory.
func (u *unpacker) hardLink(hdr *tar.Header, target string) (string, error) {
	lrel, err := clean(hdr.Linkname)
	if err != nil {
		return "", err
	}
	ldir, lbase := path.Split(lrel)
	lpdir, err := resolve(u.root, ldir)
	if err != nil {
		return "", fmt.Errorf("unpack %s: %w", hdr.Name, err)
	}
	src := filepath.Join(lpdir, lbase)
	if !within(u.root, src) || src == u.root {
		return "", &EscapeError{Entry: hdr.Name, Reason: "hard link target " + hdr.Linkname + " is outside"}
	}
	fi, err := os.Lstat(src)
	if err != nil {
		return "", fmt.Errorf("unpack %s: hard link target %s: %w", hdr.Name, hdr.Linkname, err)
	}
	if fi.IsDir() {
		return "", fmt.Errorf("unpack %s: hard link target %s is a directory", hdr.Name, hdr.Linkname)
	}
	if err := os.Link(src, target); err != nil {
		return "", fmt.Errorf("unpack %s: %w", hdr.Name, err)
	}
	u.written[target] = true
	return target, nil
}

// meta applies ownership, xattrs, mode and times (directory times come
// at the end of Unpack).
func (u *unpacker) meta(p string, hdr *tar.Header) error {
	if u.opt.Privileged {
		if err := os.Lchown(p, hdr.Uid, hdr.Gid); err != nil {
			return err
		}
	}
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok || strings.HasPrefix(name, "trusted.overlay.") {
			continue // a layer must not forge overlay's own attributes
		}
		if err := unix.Lsetxattr(p, name, []byte(v), 0); err != nil {
			if errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP) {
				continue // e.g. security.* unprivileged, or a filesystem without xattrs
			}
			return fmt.Errorf("set xattr %s: %w", name, err)
		}
	}
	if hdr.Typeflag != tar.TypeSymlink {
		// After chown, which clears set-id bits.
		if err := os.Chmod(p, fs.FileMode(hdr.Mode&0o777)|setID(hdr.Mode)); err != nil {
			return err
		}
	}
	if hdr.Typeflag != tar.TypeDir {
		_ = setTimes(p, hdr.ModTime)
	}
	return nil
}

func setID(m int64) fs.FileMode {
	var out fs.FileMode
	if m&0o4000 != 0 {
		out |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		out |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		out |= fs.ModeSticky
	}
	return out
}

func setTimes(p string, mt time.Time) error {
	if mt.IsZero() {
		return nil
	}
	ts := unix.NsecToTimespec(mt.UnixNano())
	return unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
}

// whiteout handles .wh.NAME and .wh..wh..opq.
func (u *unpacker) whiteout(rel, base string) error {
	dir := path.Dir(rel)
	if dir == "." {
		dir = ""
	}
	switch {
	case base == whiteoutOpaque:
		if u.opt.Whiteouts == OverlayWhiteouts {
			pdir, err := u.parent(path.Join(dir, "x"))
			if err != nil {
				return fmt.Errorf("unpack %s: %w", rel, err)
			}
			pdir = filepath.Dir(pdir)
			if err := unix.Lsetxattr(pdir, "trusted.overlay.opaque", []byte("y"), 0); err != nil {
				return fmt.Errorf("unpack %s: mark opaque: %w", rel, err)
			}
			return nil
		}
		pdir, err := resolve(u.root, dir)
		if err != nil {
			return fmt.Errorf("unpack %s: %w", rel, err)
		}
		ents, err := os.ReadDir(pdir)
		if errors.Is(err, fs.ErrNotExist) || !within(u.root, pdir) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("unpack %s: %w", rel, err)
		}
		for _, e := range ents {
			p := filepath.Join(pdir, e.Name())
			if !u.written[p] {
				if err := os.RemoveAll(p); err != nil {
					return fmt.Errorf("unpack %s: %w", rel, err)
				}
			}
		}
		return nil
	case strings.HasPrefix(base, whiteoutMeta):
		return nil // other AUFS metadata (.wh..wh.plnk, ...)
	}
	name := strings.TrimPrefix(base, whiteoutPrefix)
	if name == "" || name == "." || name == ".." {
		return &EscapeError{Entry: rel, Reason: "whiteout of " + name}
	}
	if u.opt.Whiteouts == OverlayWhiteouts {
		target, err := u.parent(path.Join(dir, name))
		if err != nil {
			return fmt.Errorf("unpack %s: %w", rel, err)
		}
		_ = os.RemoveAll(target)
		if err := unix.Mknod(target, unix.S_IFCHR, 0); err != nil {
			return fmt.Errorf("unpack %s: overlay whiteout: %w", rel, err)
		}
		u.written[target] = true
		return nil
	}
	pdir, err := resolve(u.root, dir)
	if err != nil {
		return fmt.Errorf("unpack %s: %w", rel, err)
	}
	target := filepath.Join(pdir, name)
	if !within(u.root, pdir) || u.written[target] {
		return nil
	}
	if err := os.RemoveAll(target); err != nil {
		return fmt.Errorf("unpack %s: %w", rel, err)
	}
	return nil
}

// checkTar reports whether r is a readable tar stream.
func checkTar(r io.Reader) error {
	tr := tar.NewReader(r)
	for {
		_, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("not a tar archive: %w", err)
		}
	}
}

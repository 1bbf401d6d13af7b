package engine

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"time"

	"golang.org/x/sys/unix"
)

// rootFS is a directory tree every path of which is resolved inside it,
// as a process chrooted there would: symbolic links and ".." never leave
// it (openat2 RESOLVE_IN_ROOT for the directories, the *at calls without
// following for the last component).
type rootFS struct {
	dir  *os.File
	name string
}

func openRootFS(dir string) (*rootFS, error) {
	f, err := os.OpenFile(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return &rootFS{dir: f, name: dir}, nil
}

func (r *rootFS) Close() error { return r.dir.Close() }

// inRoot cleans p to an absolute path inside the root.
func inRoot(p string) string { return path.Clean("/" + p) }

func (r *rootFS) openat2(p string, flags uint64, mode uint64) (int, error) {
	fd, err := unix.Openat2(int(r.dir.Fd()), inRoot(p), &unix.OpenHow{
		Flags:   flags | unix.O_CLOEXEC,
		Mode:    mode,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: inRoot(p), Err: err}
	}
	return fd, nil
}

// parent opens p's directory (resolved in the root) and returns it with
// p's last component.
func (r *rootFS) parent(p string) (int, string, error) {
	p = inRoot(p)
	if p == "/" {
		return -1, "", &os.PathError{Op: "open", Path: p, Err: unix.EINVAL}
	}
	fd, err := r.openat2(path.Dir(p), unix.O_PATH|unix.O_DIRECTORY, 0)
	return fd, path.Base(p), err
}

// lstat describes p without following a final symbolic link.
func (r *rootFS) lstat(p string) (unix.Stat_t, error) {
	var st unix.Stat_t
	if inRoot(p) == "/" {
		return st, unix.Fstat(int(r.dir.Fd()), &st)
	}
	dfd, base, err := r.parent(p)
	if err != nil {
		return st, err
	}
	defer unix.Close(dfd)
	if err := unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return st, &os.PathError{Op: "lstat", Path: inRoot(p), Err: err}
	}
	return st, nil
}

// stat describes p, following symbolic links inside the root.
func (r *rootFS) stat(p string) (unix.Stat_t, error) {
	var st unix.Stat_t
	fd, err := r.openat2(p, unix.O_PATH, 0)
	if err != nil {
		return st, err
	}
	defer unix.Close(fd)
	return st, unix.Fstat(fd, &st)
}

// mkdirAll creates directory p and its missing parents inside the root,
// mode 0755 and owned by root; symbolic links on the way are followed
// inside the root.
func (r *rootFS) mkdirAll(p string) error {
	p = inRoot(p)
	if p == "/" {
		return nil
	}
	if st, err := r.stat(p); err == nil {
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return fmt.Errorf("%q is not a directory: %w", p, unix.ENOTDIR)
		}
		return nil
	}
	if err := r.mkdirAll(path.Dir(p)); err != nil {
		return err
	}
	dfd, base, err := r.parent(p)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	if err := unix.Mkdirat(dfd, base, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
		return &os.PathError{Op: "mkdir", Path: p, Err: err}
	}
	return unix.Fchmodat(dfd, base, 0o755, 0)
}

func (r *rootFS) readlink(p string) (string, error) {
	dfd, base, err := r.parent(p)
	if err != nil {
		return "", err
	}
	defer unix.Close(dfd)
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dfd, base, buf)
	if err != nil {
		return "", &os.PathError{Op: "readlink", Path: inRoot(p), Err: err}
	}
	return string(buf[:n]), nil
}

// readDir lists the directory p, sorted.
func (r *rootFS) readDir(p string) ([]string, error) {
	fd, err := r.openat2(p, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), inRoot(p))
	defer f.Close()
	names, err := f.Readdirnames(-1)
	sort.Strings(names)
	return names, err
}

// tarFrom writes p (named name in the archive) and, for a directory,
// everything below it to tw, without following symbolic links (but p's
// own with follow).
func (r *rootFS) tarFrom(tw *tar.Writer, p, name string, follow bool) error {
	var st unix.Stat_t
	var err error
	if follow {
		st, err = r.stat(p)
	} else {
		st, err = r.lstat(p)
	}
	if err != nil {
		return err
	}
	hdr, err := tarHeader(st, name)
	if err != nil {
		return nil // sockets cannot be archived: left out
	}
	if hdr.Typeflag == tar.TypeSymlink {
		if hdr.Linkname, err = r.readlink(p); err != nil {
			return err
		}
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeReg:
		flags := uint64(unix.O_RDONLY | unix.O_NONBLOCK)
		if !follow {
			flags |= unix.O_NOFOLLOW
		}
		fd, err := r.openat2(p, flags, 0)
		if err != nil {
			return err
		}
		f := os.NewFile(uintptr(fd), inRoot(p))
		defer f.Close()
		if _, err := io.CopyN(tw, f, hdr.Size); err != nil {
			return fmt.Errorf("%s: %w", inRoot(p), err)
		}
	case tar.TypeDir:
		names, err := r.readDir(p)
		if err != nil {
			return err
		}
		for _, n := range names {
			if err := r.tarFrom(tw, path.Join(p, n), path.Join(name, n), false); err != nil {
				return err
			}
		}
	}
	return nil
}

// tarHeader is the header of a file described by st.
func tarHeader(st unix.Stat_t, name string) (*tar.Header, error) {
	h := &tar.Header{
		Name: name, Mode: int64(st.Mode & 0o7777), Uid: int(st.Uid), Gid: int(st.Gid),
		ModTime: time.Unix(st.Mtim.Unix()), Format: tar.FormatPAX,
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		h.Typeflag, h.Size = tar.TypeReg, st.Size
	case unix.S_IFDIR:
		h.Typeflag = tar.TypeDir
		h.Name += "/"
	case unix.S_IFLNK:
		h.Typeflag = tar.TypeSymlink
	case unix.S_IFIFO:
		h.Typeflag = tar.TypeFifo
	case unix.S_IFCHR, unix.S_IFBLK:
		h.Typeflag = tar.TypeChar
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			h.Typeflag = tar.TypeBlock
		}
		h.Devmajor, h.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	default:
		return nil, errors.New("cannot archive a socket")
	}
	return h, nil
}

// extractOptions tune untar.
type extractOptions struct {
	// Rename replaces the archive's top-level name (the first component
	// of every entry) by another; "" keeps it.
	Rename string
	// Owner gives each entry's owner; nil keeps the archive's.
	Owner func(h *tar.Header) (uid, gid int)
	// NoChown leaves files owned by the caller.
	NoChown bool
	// Overwrite replaces a directory by a non-directory and back.
	Overwrite bool
}

// untar extracts the archive tr below dir (inside the root).
func (r *rootFS) untar(tr *tar.Reader, dir string, o extractOptions) error {
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		rel := archiveName(h.Name, o.Rename)
		if rel == "" {
			continue
		}
		if h.Typeflag == tar.TypeLink {
			h.Linkname = path.Join(inRoot(dir), archiveName(h.Linkname, o.Rename))
		}
		if err := r.extractOne(tr, h, path.Join(inRoot(dir), rel), o); err != nil {
			return err
		}
	}
}

// archiveName cleans an archive entry's name to a relative path ("" for
// the archive's root), its first component replaced by rename when given.
func archiveName(name, rename string) string {
	rel := inRoot(name)[1:]
	if rename == "" {
		return rel
	}
	if rel == "" {
		return rename
	}
	_, rest, _ := cutPath(rel)
	return path.Join(rename, rest)
}

func cutPath(p string) (first, rest string, ok bool) {
	for i := 0; i < len(p); i++ {
		if p[i] == '/' {
			return p[:i], p[i+1:], true
		}
	}
	return p, "", false
}

// extractOne creates one entry at target.
func (r *rootFS) extractOne(tr *tar.Reader, h *tar.Header, target string, o extractOptions) error {
	if target == "/" {
		return nil // the root itself
	}
	dfd, base, err := r.parent(target)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	var cur unix.Stat_t
	exists := unix.Fstatat(dfd, base, &cur, unix.AT_SYMLINK_NOFOLLOW) == nil
	isDir := exists && cur.Mode&unix.S_IFMT == unix.S_IFDIR
	if exists && isDir != (h.Typeflag == tar.TypeDir) {
		if isDir && !o.Overwrite {
			return fmt.Errorf("cannot overwrite directory %q with non-directory (see --overwrite)", target)
		}
		if !isDir && !o.Overwrite {
			return fmt.Errorf("cannot overwrite non-directory %q with directory (see --overwrite)", target)
		}
	}
	if exists && !(isDir && h.Typeflag == tar.TypeDir) {
		flag := 0
		if isDir {
			flag = unix.AT_REMOVEDIR
		}
		if err := unix.Unlinkat(dfd, base, flag); err != nil {
			return &os.PathError{Op: "replace", Path: target, Err: err}
		}
	}
	mode := uint32(h.Mode & 0o7777)
	switch h.Typeflag {
	case tar.TypeDir:
		if !isDir {
			err = unix.Mkdirat(dfd, base, 0o700)
		}
	case tar.TypeReg:
		err = writeFileAt(dfd, base, tr)
	case tar.TypeSymlink:
		err = unix.Symlinkat(h.Linkname, dfd, base)
	case tar.TypeLink:
		err = r.linkAt(h.Linkname, dfd, base)
	case tar.TypeFifo:
		err = unix.Mknodat(dfd, base, unix.S_IFIFO|mode, 0)
	case tar.TypeChar, tar.TypeBlock:
		kind := uint32(unix.S_IFCHR)
		if h.Typeflag == tar.TypeBlock {
			kind = unix.S_IFBLK
		}
		err = unix.Mknodat(dfd, base, kind|mode, int(unix.Mkdev(uint32(h.Devmajor), uint32(h.Devminor))))
	default:
		return nil // extended headers and the like
	}
	if err != nil {
		return &os.PathError{Op: "create", Path: target, Err: err}
	}
	return setMeta(dfd, base, h, o)
}

func writeFileAt(dfd int, base string, src io.Reader) error {
	fd, err := unix.Openat(dfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), base)
	_, err = io.Copy(f, src)
	return errors.Join(err, f.Close())
}

// linkAt makes base in dfd a hard link to old.
func (r *rootFS) linkAt(old string, dfd int, base string) error {
	ofd, obase, err := r.parent(old)
	if err != nil {
		return err
	}
	defer unix.Close(ofd)
	return unix.Linkat(ofd, obase, dfd, base, 0)
}

// setMeta gives the new entry its owner, mode and modification time.
func setMeta(dfd int, base string, h *tar.Header, o extractOptions) error {
	if !o.NoChown {
		uid, gid := h.Uid, h.Gid
		if o.Owner != nil {
			uid, gid = o.Owner(h)
		}
		if err := unix.Fchownat(dfd, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &os.PathError{Op: "chown", Path: base, Err: err}
		}
	}
	if h.Typeflag == tar.TypeSymlink {
		return nil
	}
	mode := uint32(h.Mode & 0o7777)
	if o.NoChown {
		// Copied out to the caller: a container's set-user-ID or
		// set-group-ID file must not become the caller's.
		mode &^= unix.S_ISUID | unix.S_ISGID
	}
	if err := unix.Fchmodat(dfd, base, mode, 0); err != nil {
		return &os.PathError{Op: "chmod", Path: base, Err: err}
	}
	ts := []unix.Timespec{unix.NsecToTimespec(h.ModTime.UnixNano()), unix.NsecToTimespec(h.ModTime.UnixNano())}
	_ = unix.UtimesNanoAt(dfd, base, ts, unix.AT_SYMLINK_NOFOLLOW)
	return nil
}

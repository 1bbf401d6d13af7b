package engine

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/runspec"
	"github.com/berthnet/berth/internal/safefile"
)

// CopyEnd is one side of a copy: a path in a container, or on the host
// when Container is empty; the host path "-" is a tar stream (stdin as
// the source, stdout as the destination).
type CopyEnd struct {
	Container string
	Path      string
}

// CopyOptions tune Copy.
type CopyOptions struct {
	Stdin  io.Reader
	Stdout io.Writer
	// Archive gives files copied into a container the owner of the
	// container's user (Podman's --archive, the default); otherwise they
	// keep their owners.
	Archive bool
	// Overwrite lets a directory replace a non-directory and back.
	Overwrite bool
	// MakeParents creates a missing destination directory of a tar
	// stream copied in, and its missing parents (mode 0755, root's), as
	// an image build's COPY does.
	MakeParents bool
}

// ErrCopyNotFound is a copy source that does not exist.
var ErrCopyNotFound = errors.New("no such file or directory")

// copyEnd is an opened side: its root and path in it.
type copyEnd struct {
	fs      *rootFS
	path    string
	where   string // "container NAME" or "host"
	owner   func(*tar.Header) (int, int)
	host    bool
	release func()
}

// Copy copies files between a container (running or not) and the host,
// as `podman cp` does. Paths in the container are resolved inside its
// root filesystem (with its volumes and mounts while it runs): no
// symbolic link leads out of it.
func (e *Engine) Copy(src, dst CopyEnd, o CopyOptions) (err error) {
	if (src.Container == "") == (dst.Container == "") {
		return fmt.Errorf("invalid arguments %s, %s: you must use just one container", src.Path, dst.Path)
	}
	s, err := e.openCopyEnd(src)
	if err != nil {
		return err
	}
	defer s.release()
	d, err := e.openCopyEnd(dst)
	if err != nil {
		return err
	}
	defer d.release()
	ext := extractOptions{Overwrite: o.Overwrite, NoChown: d.host}
	if !d.host && o.Archive {
		ext.Owner = d.owner
	}
	if src.Container == "" && src.Path == "-" {
		if o.MakeParents && !d.host {
			if err := d.fs.mkdirAll(d.path); err != nil {
				return fmt.Errorf("create %q in %s: %w", d.path, d.where, err)
			}
		}
		return copyFromStream(o.Stdin, d, ext)
	}
	st, err := statSource(s)
	if err != nil {
		return err
	}
	srcIsDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
	contents := strings.HasSuffix(s.path, "/.") || inRoot(s.path) == "/"
	base := path.Base(inRoot(s.path))
	if dst.Container == "" && dst.Path == "-" {
		if contents {
			base = "."
		}
		tw := tar.NewWriter(o.Stdout)
		return errors.Join(s.fs.tarFrom(tw, inRoot(s.path), base, follows(s.path)), tw.Close())
	}
	dstSt, derr := d.fs.stat(d.path)
	dir, name, err := copyTarget(srcIsDir, contents, base, d.path, derr == nil, derr == nil && dstSt.Mode&unix.S_IFMT == unix.S_IFDIR)
	if err != nil {
		return err
	}
	ext.Rename = name
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		pw.CloseWithError(errors.Join(s.fs.tarFrom(tw, inRoot(s.path), base, follows(s.path)), tw.Close()))
	}()
	err = d.fs.untar(tar.NewReader(pr), dir, ext)
	pr.CloseWithError(io.ErrClosedPipe)
	return err
}

// follows reports whether p asks to follow a final symbolic link, with
// a trailing slash or "/.".
func follows(p string) bool { return trailing(p) != "" }

func statSource(s *copyEnd) (unix.Stat_t, error) {
	var st unix.Stat_t
	var err error
	if follows(s.path) {
		st, err = s.fs.stat(s.path)
	} else {
		st, err = s.fs.lstat(s.path)
	}
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return st, fmt.Errorf("%q could not be found on the %s: %w", s.path, s.where, ErrCopyNotFound)
	}
	return st, err
}

// copyFromStream extracts a tar stream into the destination directory.
func copyFromStream(r io.Reader, d *copyEnd, ext extractOptions) error {
	st, err := d.fs.stat(d.path)
	if err != nil {
		return fmt.Errorf("%q could not be found on the %s: %w", d.path, d.where, ErrCopyNotFound)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("destination %q must be a directory when copying from stdin", d.path)
	}
	return d.fs.untar(tar.NewReader(r), d.path, ext)
}

// copyTarget decides, as cp does, where a copy of the source (a directory
// or not; contents: its contents only, "SRC/."; base: its name) lands for
// the destination dst: in directory dir, under name (which replaces the
// source's name; "." is dir itself).
func copyTarget(srcIsDir, contents bool, base, dst string, dstExists, dstIsDir bool) (dir, name string, err error) {
	clean := inRoot(dst)
	switch {
	case contents && !srcIsDir:
		return "", "", fmt.Errorf("source is not a directory: %w", unix.ENOTDIR)
	case contents:
		if dstExists && !dstIsDir {
			return "", "", fmt.Errorf("cannot copy a directory's contents to %q, which is not a directory", dst)
		}
		return clean, ".", nil
	case dstExists && dstIsDir:
		return clean, base, nil
	case dstExists && srcIsDir:
		return "", "", fmt.Errorf("cannot copy directory to %q, which is not a directory", dst)
	case !dstExists && strings.HasSuffix(dst, "/") && !srcIsDir:
		return "", "", fmt.Errorf("destination directory %q does not exist: %w", dst, ErrCopyNotFound)
	case clean == "/":
		return "/", ".", nil
	}
	return path.Dir(clean), path.Base(clean), nil
}

// openCopyEnd opens the root a copy end's path is in.
func (e *Engine) openCopyEnd(end CopyEnd) (*copyEnd, error) {
	if end.Container == "" {
		if end.Path == "-" {
			return &copyEnd{path: "-", host: true, where: "host", release: func() {}}, nil
		}
		abs, err := filepath.Abs(end.Path)
		if err != nil {
			return nil, err
		}
		if abs != "/" {
			abs += trailing(end.Path) // keep what asks to follow a link
		}
		fs, err := openRootFS("/")
		if err != nil {
			return nil, err
		}
		return &copyEnd{fs: fs, path: abs, host: true, where: "host", release: func() { fs.Close() }}, nil
	}
	c, err := e.Get(end.Container)
	if err != nil {
		return nil, err
	}
	root, release, err := e.containerRoot(c)
	if err != nil {
		return nil, err
	}
	fs, err := openRootFS(root)
	if err != nil {
		release()
		return nil, fmt.Errorf("open the root filesystem of %s: %w", c.Config.Name, err)
	}
	uid, gid := containerOwner(c, root)
	return &copyEnd{
		fs: fs, path: inRoot(end.Path) + trailing(end.Path), where: "container " + c.Config.Name,
		owner:   func(*tar.Header) (int, int) { return uid, gid },
		release: func() { fs.Close(); release() },
	}, nil
}

// trailing is the part of p that asks to follow a final link.
func trailing(p string) string {
	switch {
	case strings.HasSuffix(p, "/."):
		return "/."
	case strings.HasSuffix(p, "/") && p != "/":
		return "/"
	}
	return ""
}

// containerOwner is the uid and gid of the container's user.
func containerOwner(c *Container, root string) (int, int) {
	if c.Config.User == "" {
		return 0, 0
	}
	passwd, _ := safefile.ReadInRoot(root, "etc/passwd", safefile.DefaultLimit)
	group, _ := safefile.ReadInRoot(root, "etc/group", safefile.DefaultLimit)
	uid, gid, err := runspec.ResolveUser(c.Config.User, passwd, group)
	if err != nil {
		return 0, 0
	}
	return int(uid), int(gid)
}

// containerRoot is the directory holding the container's files: its
// init's root while it runs (with its mounts), else its root filesystem,
// mounted for the copy when needed (under the start lock, so the
// container does not start meanwhile).
func (e *Engine) containerRoot(c *Container) (string, func(), error) {
	if c.Running() && c.State.Pid > 0 {
		return "/proc/" + strconv.Itoa(c.State.Pid) + "/root", func() {}, nil
	}
	unlock, err := e.lock(c.Config.ID)
	if err != nil {
		return "", nil, err
	}
	switch {
	case c.Config.Rootfs != "":
		return c.Config.Rootfs, unlock, nil
	case e.cfg.Images == nil:
		unlock()
		return "", nil, ErrNoImages
	}
	root, err := e.cfg.Images.Mount(c.Config.ImageID, c.Config.ID)
	if err != nil {
		unlock()
		return "", nil, fmt.Errorf("mount the root filesystem of %s: %w", c.Config.Name, err)
	}
	return root, func() {
		if err := e.cfg.Images.Unmount(c.Config.ID); err != nil && !errors.Is(err, os.ErrNotExist) {
			e.log.Warn("unmount after cp", "container", c.Config.Name, "error", err)
		}
		unlock()
	}, nil
}

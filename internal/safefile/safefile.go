// Package safefile reads files that another user, another program or a
// mistake may have replaced with something hostile: a FIFO (which would
// block the reader forever), a device such as /dev/zero (which never ends)
// or a very large file. Read opens without blocking, accepts regular files
// only and stops at a size limit, so a bad file becomes an error naming it
// instead of a hang or an exhausted memory.
package safefile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// Errors Read returns, wrapped with the file's path; match with errors.Is.
var (
	// ErrNotRegular: the path is a FIFO, socket, device or directory.
	ErrNotRegular = errors.New("not a regular file")
	// ErrTooLarge: the file is larger than the limit given.
	ErrTooLarge = errors.New("file too large")
)

// DefaultLimit is the limit for configuration files: 1 MiB, far above any
// real network, containers.conf or resolv.conf file.
const DefaultLimit = 1 << 20

// Read returns the contents of the regular file at path, refusing files
// that are not regular or are larger than limit bytes. A missing file is
// an error that matches os.ErrNotExist.
func Read(path string, limit int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return read(f, path, limit)
}

// ReadInRoot reads the file rel of the directory tree at root (a
// container's root filesystem) as Read does, resolving every symbolic link
// and ".." inside root, as the container would see it: a link to
// /etc/shadow reads root's etc/shadow, never the host's. It needs
// openat2 (Linux 5.6).
func ReadInRoot(root, rel string, limit int64) ([]byte, error) {
	dir, err := os.Open(root)
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	fd, err := unix.Openat2(int(dir.Fd()), rel, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_NONBLOCK | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: filepath.Join(root, rel), Err: err}
	}
	return read(os.NewFile(uintptr(fd), filepath.Join(root, rel)), filepath.Join(root, rel), limit)
}

// read checks and reads the open file f, and closes it.
func read(f *os.File, path string, limit int64) ([]byte, error) {
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %w (it is a %s)", path, ErrNotRegular, Kind(st.Mode()))
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("%s: %w (%d bytes, at most %d are read)", path, ErrTooLarge, st.Size(), limit)
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: %w (more than %d bytes)", path, ErrTooLarge, limit)
	}
	return b, nil
}

// Kind names the type of a file for messages: "regular file",
// "directory", "FIFO", "socket", "character device", "block device",
// "symbolic link" or "special file".
func Kind(m os.FileMode) string {
	switch {
	case m.IsRegular():
		return "regular file"
	case m.IsDir():
		return "directory"
	case m&os.ModeNamedPipe != 0:
		return "FIFO"
	case m&os.ModeSocket != 0:
		return "socket"
	case m&os.ModeCharDevice != 0:
		return "character device"
	case m&os.ModeDevice != 0:
		return "block device"
	case m&os.ModeSymlink != 0:
		return "symbolic link"
	}
	return "special file"
}

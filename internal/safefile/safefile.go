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
	"syscall"
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

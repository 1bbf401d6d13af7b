package aardvarkconf

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The control socket is berth's addition to the aardvark-dns protocol.
// SIGHUP, netavark's only signal, says "reload" but not "done", so a
// container's name could be unresolvable for a moment after setup
// returned. berth's DNS server also listens on a Unix socket in the
// directory; a writer that has changed the files connects, sends
// "reload\n" and gets "ok\n" once a reload that began after the request
// has been served. A server without the socket (aardvark-dns itself) is
// signalled as before.

// ControlSocketName is the control socket's name in the directory: a
// hidden name, which no network can have (network names start with a
// letter or digit) and which the DNS servers skip.
const ControlSocketName = ".berth-dns.sock"

// ErrNoControl is returned by RequestReload when the running server has
// no control socket: the caller signals it instead.
var ErrNoControl = errors.New("the DNS server has no control socket")

// ControlSocket is the control socket's path.
func (d Dir) ControlSocket() string { return filepath.Join(d.Path, ControlSocketName) }

// shortPath opens the directory and returns a name of the control socket
// that fits in a socket address (108 bytes) however deep the directory
// is: /proc/self/fd/N/.berth-dns.sock. The directory must stay open while
// the name is used; close releases it.
func (d Dir) shortPath() (path string, close func(), err error) {
	fd, err := unix.Open(d.Path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", nil, fmt.Errorf("open %s: %w", d.Path, err)
	}
	return fmt.Sprintf("/proc/self/fd/%d/%s", fd, ControlSocketName), func() { unix.Close(fd) }, nil
}

// ListenControl creates the control socket. A socket that a live server
// still answers on is left alone (ErrControlInUse); a stale one is
// replaced. Closing the returned listener removes the socket.
func (d Dir) ListenControl() (net.Listener, error) {
	path, release, err := d.shortPath()
	if err != nil {
		return nil, err
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		release()
		return nil, fmt.Errorf("%s: %w", d.ControlSocket(), ErrControlInUse)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		release()
		return nil, fmt.Errorf("remove stale %s: %w", d.ControlSocket(), err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		release()
		return nil, fmt.Errorf("listen on %s: %w", d.ControlSocket(), err)
	}
	// Only the server's user may ask for reloads.
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		release()
		return nil, fmt.Errorf("chmod %s: %w", d.ControlSocket(), err)
	}
	return &controlListener{Listener: l, release: release}, nil
}

// ErrControlInUse: another live server answers on the control socket.
var ErrControlInUse = errors.New("control socket in use by another server")

// controlListener keeps the directory open until the socket is removed.
type controlListener struct {
	net.Listener
	release func()
}

func (l *controlListener) Close() error {
	err := l.Listener.Close() // unlinks through the /proc/self/fd name
	l.release()
	return err
}

// ServeControl answers one control connection: it reads the request and
// calls reload, which returns once a reload begun after the call has been
// served, and reports the result. It closes c.
func ServeControl(c net.Conn, reload func() error) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	line, err := bufio.NewReader(io.LimitReader(c, 64)).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "reload" {
		_, _ = c.Write([]byte("error: unknown request\n"))
		return
	}
	if err := reload(); err != nil {
		_, _ = fmt.Fprintf(c, "error: %s\n", strings.ReplaceAll(err.Error(), "\n", "; "))
		return
	}
	_, _ = c.Write([]byte("ok\n"))
}

// RequestReload asks the server with process ID pid to reload and waits
// until it has, at most timeout. It returns ErrNoControl (at once) when
// nothing listens on the control socket, or when what listens there is
// not that process.
func (d Dir) RequestReload(pid int, timeout time.Duration) error {
	path, release, err := d.shortPath()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNoControl, err)
	}
	defer release()
	conn, err := net.DialTimeout("unix", path, timeout)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNoControl, err)
	}
	defer conn.Close()
	c := conn.(*net.UnixConn)
	if peer, err := peerPID(c); err != nil || peer != pid {
		return fmt.Errorf("%w: the socket is served by process %d, not %d", ErrNoControl, peer, pid)
	}
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte("reload\n")); err != nil {
		return fmt.Errorf("request reload: %w", err)
	}
	line, err := bufio.NewReader(io.LimitReader(c, 1024)).ReadString('\n')
	if err != nil {
		return fmt.Errorf("wait for reload: %w", err)
	}
	if line = strings.TrimSpace(line); line != "ok" {
		return fmt.Errorf("reload: %s", strings.TrimPrefix(line, "error: "))
	}
	return nil
}

func peerPID(c *net.UnixConn) (int, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, err
	}
	if cerr != nil {
		return 0, cerr
	}
	return int(cred.Pid), nil
}

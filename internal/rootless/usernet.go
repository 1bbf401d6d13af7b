package rootless

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/link"
	"github.com/berthnet/berth/internal/netns"
)

// Program names a user-mode network program: berth's slirp4netns or
// pasta (a separate binary beside berth, or berth itself called by that
// name).
type Program struct {
	Path  string
	Argv0 string
}

// Beside returns the program name beside the berth executable self, else
// self called as name.
func Beside(self, name string) Program {
	p := filepath.Join(filepath.Dir(self), name)
	if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
		return Program{Path: p, Argv0: p}
	}
	return Program{Path: self, Argv0: name}
}

// SlirpBeside returns the slirp4netns beside the berth executable self,
// else self called as slirp4netns.
func SlirpBeside(self string) Program { return Beside(self, CmdSlirp) }

// PastaBeside returns the pasta beside the berth executable self, else
// self called as pasta.
func PastaBeside(self string) Program { return Beside(self, CmdPasta) }

// Uplink is how the rootless netns reaches the host: Cmd (CmdPasta or
// CmdSlirp) names which of the programs runs; PastaOptions are
// containers.conf's pasta_options.
type Uplink struct {
	Cmd          string
	Pasta, Slirp Program
	PastaOptions []string
}

// readyTimeout bounds the wait for the user-mode stack to come up.
const readyTimeout = 15 * time.Second

// StartSlirp starts the user-mode stack for the namespace at nsPath with
// args (before NSPATH TAP), detached in its own session, with its log in
// logPath; it returns its PID once it reports ready. hostNS, when set, is
// the network namespace its sockets live in (the host's); the stack
// otherwise starts in the caller's.
func StartSlirp(s Program, hostNS string, args []string, nsPath, logPath string) (int, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer r.Close()
	lf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		w.Close()
		return 0, fmt.Errorf("user-mode network log: %w", err)
	}
	defer lf.Close()
	argv := append([]string{s.Argv0}, args...)
	argv = append(argv, "--ready-fd=3", "--netns-type=path", nsPath, "tap0")
	cmd := &exec.Cmd{Path: s.Path, Args: argv, Stdout: lf, Stderr: lf, Dir: "/"}
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	start := cmd.Start
	if hostNS != "" {
		ns, err := netns.Open(hostNS)
		if err != nil {
			w.Close()
			return 0, err
		}
		defer ns.Close()
		start = func() error { return ns.Do(cmd.Start) }
	}
	err = start()
	w.Close()
	if err != nil {
		return 0, fmt.Errorf("start the user-mode network (%s): %w", s.Path, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	ready := make(chan error, 1)
	go func() {
		b := make([]byte, 1)
		_, err := r.Read(b)
		ready <- err
	}()
	fail := func(why string) (int, error) {
		_ = cmd.Process.Kill()
		msg, _ := os.ReadFile(logPath)
		return 0, fmt.Errorf("user-mode network for %s %s: %s", nsPath, why, strings.TrimSpace(lastLines(msg, 3)))
	}
	select {
	case err := <-ready:
		if err != nil {
			// The pipe closed without a byte: the process died.
			select {
			case <-done:
			case <-time.After(time.Second):
			}
			return fail("exited before it was ready")
		}
	case <-time.After(readyTimeout):
		return fail("was not ready in time")
	}
	return cmd.Process.Pid, nil
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "; ")
}

// Alive reports whether pid is a running process whose command line
// contains marker (so a reused PID is not mistaken for ours).
func Alive(pid int, marker string) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err == nil {
		if i := bytes.LastIndexByte(st, ')'); i > 0 && len(st) > i+2 && st[i+2] == 'Z' {
			return false
		}
	}
	return bytes.Contains(b, []byte(marker))
}

// Stop terminates pid if it is alive and its command line contains
// marker, and waits briefly for it to go.
func Stop(pid int, marker string) {
	if !Alive(pid, marker) {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	for i := 0; i < 100 && Alive(pid, marker); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if Alive(pid, marker) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// ReadPID reads a PID file (0 when missing or malformed).
func ReadPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// NetNS is the rootless network namespace that holds the user's bridge
// networks, with its user-mode uplink.
type NetNS struct {
	Dir string // its state directory: netns, api.sock, uplink.pid, uplink.log
}

// Path is the namespace's bind mount.
func (n NetNS) Path() string { return filepath.Join(n.Dir, "netns") }

// API is the uplink's API socket (slirp4netns's add_hostfwd...).
func (n NetNS) API() string { return filepath.Join(n.Dir, "api.sock") }

func (n NetNS) pidFile() string { return filepath.Join(n.Dir, "uplink.pid") }

// Ensure creates the namespace and starts its uplink when they are
// missing (an uplink that died is restarted: its port forwards are then
// gone, restarted reports true so the caller re-adds them). The uplink is
// pasta, as Podman 5 starts it for its rootless netns, plus berth's API
// socket (port forwards come and go with containers), or slirp4netns.
func (n NetNS) Ensure(up Uplink, hostNS string) (restarted bool, err error) {
	if err := os.MkdirAll(n.Dir, 0o700); err != nil {
		return false, fmt.Errorf("rootless netns directory: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(n.Dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return false, err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return false, err
	}
	pinned := false
	if ns, err := netns.Open(n.Path()); err == nil {
		ino, _ := ns.Inode()
		self, _ := netns.Current()
		var selfIno uint64
		if self != nil {
			selfIno, _ = self.Inode()
			self.Close()
		}
		ns.Close()
		pinned = ino != selfIno
	}
	if pinned && Alive(ReadPID(n.pidFile()), n.Path()) {
		return false, nil
	}
	if !pinned {
		_ = netns.Unpin(n.Path())
		ns, err := netns.NewPinned(n.Path())
		if err != nil {
			return false, fmt.Errorf("create the rootless network namespace: %w", err)
		}
		err = link.LoopbackUpIn(ns)
		ns.Close()
		if err != nil {
			_ = netns.Unpin(n.Path())
			return false, err
		}
	}
	pid, err := n.startUplink(up, hostNS)
	if err != nil {
		if !pinned {
			_ = netns.Unpin(n.Path())
		}
		return false, err
	}
	if err := os.WriteFile(n.pidFile(), []byte(strconv.Itoa(pid)), 0o600); err != nil {
		Stop(pid, n.Path())
		return false, err
	}
	return pinned, nil
}

// startUplink starts the namespace's uplink and returns its PID.
func (n NetNS) startUplink(up Uplink, hostNS string) (int, error) {
	logFile := filepath.Join(n.Dir, "uplink.log")
	cmd, err := NetworkCmd(up.Cmd)
	if err != nil {
		return 0, err
	}
	if cmd == CmdSlirp {
		args := []string{"--configure", "--mtu=65520", "--disable-host-loopback", "--enable-ipv6", "--api-socket=" + n.API()}
		return StartSlirp(up.Slirp, hostNS, args, n.Path(), logFile)
	}
	_ = os.Remove(logFile)
	opts := append(append([]string{}, up.PastaOptions...), "--berth-api-socket", n.API(), "-l", logFile)
	pc, err := PastaArgs(PastaSetup{Options: opts, PIDFile: n.pidFile(), NetNS: n.Path()})
	if err != nil {
		return 0, err
	}
	pid, err := StartPasta(up.Pasta, hostNS, pc.Args, n.pidFile())
	if err != nil {
		return 0, fmt.Errorf("rootless network namespace uplink: %w", err)
	}
	return pid, nil
}

// Remove stops the uplink and removes the namespace.
func (n NetNS) Remove() error {
	Stop(ReadPID(n.pidFile()), n.Path())
	os.Remove(n.pidFile())
	os.Remove(n.API())
	if err := netns.Unpin(n.Path()); err != nil {
		return err
	}
	return nil
}

// Exists reports whether the namespace is pinned.
func (n NetNS) Exists() bool {
	var st unix.Statfs_t
	if unix.Statfs(n.Path(), &st) != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}

// ResolvConf returns the resolver file the DNS server of the namespace's
// bridge networks forwards to: with pasta as the uplink, a file of the
// namespace's own naming pasta's DNS forward address (written when it
// differs), as Podman 5 gives its rootless netns, since the host's
// resolvers may sit on a loopback the namespace cannot reach; "" with
// slirp4netns (the host's file, as before).
func (n NetNS) ResolvConf(up Uplink) (string, error) {
	cmd, err := NetworkCmd(up.Cmd)
	if err != nil || cmd != CmdPasta {
		return "", err
	}
	pc, err := PastaArgs(PastaSetup{Options: up.PastaOptions, PIDFile: n.pidFile(), NetNS: n.Path()})
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, a := range pc.DNSForward {
		b.WriteString("nameserver " + a + "\n")
	}
	path := filepath.Join(n.Dir, "resolv.conf")
	if old, err := os.ReadFile(path); err == nil && string(old) == b.String() {
		return path, nil
	}
	if err := os.MkdirAll(n.Dir, 0o700); err != nil {
		return "", err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return "", fmt.Errorf("rootless netns resolv.conf: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("rootless netns resolv.conf: %w", err)
	}
	return path, nil
}

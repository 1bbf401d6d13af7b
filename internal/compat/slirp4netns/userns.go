package slirp4netns

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/rootless"
	"github.com/berthnet/berth/internal/usernet"
)

// helperFlag marks the helper process that opens the TAP inside a user
// namespace (--userns-path); its value is the socket fd to send it over.
const helperFlag = "berth-tap-helper"

// joinedFlag marks slirp4netns re-executed inside the container's user
// namespace.
const joinedFlag = "berth-joined-userns"

// joinUserns re-executes this slirp4netns, same PID and descriptors, under
// nsenter(1) in the user namespace at o.usernsPath, keeping its
// credentials: when the user is root there (rootless Podman maps it so),
// the process may open the TAP and the kernel-path port forwards in the
// container's namespace itself. It returns only on error (the user is not
// root there, or nsenter is missing).
func joinUserns(o *options, log *slog.Logger) error {
	if !mapsToRoot(o.usernsPath, os.Getuid()) {
		return errors.New("the user is not root in the container's user namespace")
	}
	self, err := selfPath()
	if err != nil {
		return err
	}
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		return err
	}
	argv := append([]string{"nsenter", "--user=" + o.usernsPath, "--preserve-credentials", "--", self}, o.args...)
	argv = append(argv, "--"+joinedFlag)
	// Flags after the positional arguments: parse() takes them anywhere.
	log.Debug("joining the container's user namespace", "userns", o.usernsPath)
	return syscall.Exec(nsenter, argv, os.Environ())
}

// mapsToRoot reports whether uid is 0 in the user namespace at path, read
// from the uid_map of the process the path belongs to (/proc/PID/ns/user).
func mapsToRoot(path string, uid int) bool {
	dir, ok := strings.CutSuffix(path, "/ns/user")
	if !ok || !strings.HasPrefix(dir, "/proc/") {
		return false
	}
	b, err := os.ReadFile(dir + "/uid_map")
	if err != nil {
		return false
	}
	m, err := rootless.ParseIDMap(string(b))
	if err != nil {
		return false
	}
	for _, t := range m {
		if t[0] == 0 {
			return t[1] == uid
		}
	}
	return false
}

// openTAPInUserns opens (and with configure, configures) the TAP inside
// netnsPath, a namespace owned by the user namespace userns. A Go process
// cannot join a user namespace (it is multithreaded), so, as slirp4netns
// forks a child for this, berth runs itself again under nsenter(1) in both
// namespaces and receives the TAP's descriptor over a socket pair.
func openTAPInUserns(o *options) (int, error) {
	self, err := selfPath()
	if err != nil {
		return -1, err
	}
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socketpair: %w", err)
	}
	parent := os.NewFile(uintptr(pair[0]), "tap-helper-parent")
	child := os.NewFile(uintptr(pair[1]), "tap-helper-child")
	defer parent.Close()

	// --preserve-credentials: an unprivileged user namespace denies
	// setgroups; the caller maps to root in it (rootless), which keeps the
	// capabilities across exec.
	args := []string{"--user=" + o.usernsPath, "--net=" + o.netnsPath(), "--preserve-credentials", "--", self, "--" + helperFlag + "=3"}
	args = append(args, o.helperArgs()...)
	cmd := exec.Command("nsenter", args...)
	cmd.ExtraFiles = []*os.File{child}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		child.Close()
		return -1, fmt.Errorf("start TAP helper (nsenter): %w", err)
	}
	child.Close()
	fd, recvErr := recvFD(int(parent.Fd()))
	if err := cmd.Wait(); err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return -1, fmt.Errorf("TAP helper in user namespace %s: %w: %s", o.usernsPath, err, strings.TrimSpace(stderr.String()))
	}
	if recvErr != nil {
		return -1, fmt.Errorf("receive TAP descriptor: %w", recvErr)
	}
	unix.CloseOnExec(fd)
	return fd, nil
}

// selfPath is the executable to run as the helper, by the name it was
// called by (the multi-call binary picks its role from it).
func selfPath() (string, error) {
	a := os.Args[0]
	if !strings.Contains(a, "/") {
		return exec.LookPath(a)
	}
	return filepath.Abs(a)
}

// helperArgs are the options the helper needs to open and configure the
// TAP, as command-line flags.
func (o *options) helperArgs() []string {
	args := []string{"--mtu=" + strconv.Itoa(o.mtu), "--netns-type=path"}
	if o.configure {
		args = append(args, "--configure")
	}
	if o.cidr != "" {
		args = append(args, "--cidr="+o.cidr)
	}
	if o.mac != "" {
		args = append(args, "--macaddress="+o.mac)
	}
	return append(args, "/proc/self/ns/net", o.tap)
}

// runHelper is the helper's side: it runs inside the target namespaces,
// opens the TAP, configures it, and sends the descriptor over fd sock.
func runHelper(o *options, cfg usernet.Config, mac net.HardwareAddr) error {
	sock := o.helperFD
	defer unix.Close(sock)
	fd, err := usernet.OpenTAPHere(o.tap, o.configure, cfg, mac)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Sendmsg(sock, []byte{0}, unix.UnixRights(fd), nil, 0); err != nil {
		return fmt.Errorf("send TAP descriptor: %w", err)
	}
	return nil
}

func recvFD(sock int) (int, error) {
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(sock, buf, oob, 0)
	if err != nil {
		return -1, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return -1, errors.New("no descriptor in the helper's message")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return -1, errors.New("no descriptor in the helper's message")
	}
	return fds[0], nil
}

package rootless

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/safefile"
)

// Environment variables berth sets for itself inside the user namespace.
const (
	// EnvUID holds the user's real UID: its presence means "inside".
	EnvUID = "BERTH_ROOTLESS_UID"
	// EnvPause holds the pause process's PID (its /proc/PID/ns/net is the
	// host's network namespace).
	EnvPause = "BERTH_ROOTLESS_PAUSE"
)

// PauseArg is the hidden first argument that makes berth the pause
// process.
const PauseArg = "__berth-rootless-pause"

// Inside reports whether this process is berth inside its user namespace.
func Inside() bool { return os.Getenv(EnvUID) != "" }

// RealUID is the user's UID outside the namespace (the process's own UID
// when not inside).
func RealUID() int {
	if v, err := strconv.Atoi(os.Getenv(EnvUID)); err == nil {
		return v
	}
	return os.Getuid()
}

// HostNetNS is the path of the host's network namespace as seen from
// inside (the pause process's), "" when not inside.
func HostNetNS() string {
	if p := os.Getenv(EnvPause); p != "" {
		return "/proc/" + p + "/ns/net"
	}
	return ""
}

// Pause is the pause process's body: it holds the namespaces and waits
// for SIGTERM or SIGINT.
func Pause() int {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	return 0
}

// Join runs berth again as root of the user's namespace, starting the
// pause process first when there is none: it execs nsenter(1) and returns
// only on error. runDir holds the pause PID file (the user's berth run
// root); self is the berth executable.
func Join(runDir, self string, args []string) error {
	if err := os.MkdirAll(runDir, 0o700); err != nil {
		return fmt.Errorf("rootless run directory: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(runDir, "pause.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("rootless pause lock: %w", err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		lock.Close()
		return fmt.Errorf("rootless pause lock: %w", err)
	}
	pidFile := filepath.Join(runDir, "pause.pid")
	pid, ok := runningPause(pidFile)
	if !ok {
		if pid, err = startPause(self); err != nil {
			lock.Close()
			return err
		}
		if err := os.WriteFile(pidFile, []byte(strconv.Itoa(pid)), 0o600); err != nil {
			syscall.Kill(pid, syscall.SIGKILL)
			lock.Close()
			return fmt.Errorf("rootless pause PID file: %w", err)
		}
	}
	lock.Close()
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		return fmt.Errorf("rootless berth needs nsenter (util-linux): %w", err)
	}
	wd, _ := os.Getwd()
	argv := []string{"nsenter", "--user=/proc/" + strconv.Itoa(pid) + "/ns/user",
		"--mount=/proc/" + strconv.Itoa(pid) + "/ns/mnt"}
	if wd != "" {
		argv = append(argv, "--wd="+wd)
	}
	argv = append(append(argv, "--", self), args...)
	env := append(os.Environ(), EnvUID+"="+strconv.Itoa(os.Getuid()), EnvPause+"="+strconv.Itoa(pid))
	return syscall.Exec(nsenter, argv, env)
}

// runningPause returns the PID in pidFile if it is a live berth pause
// process of this user.
func runningPause(pidFile string) (int, bool) {
	pid := ReadPID(pidFile)
	if pid <= 0 {
		return 0, false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), PauseArg) {
		return 0, false
	}
	var st syscall.Stat_t
	if syscall.Stat(fmt.Sprintf("/proc/%d", pid), &st) != nil || int(st.Uid) != os.Getuid() {
		return 0, false
	}
	// The user namespace must be mapped (a pause process whose creator
	// died before newuidmap ran is useless).
	m, err := os.ReadFile(fmt.Sprintf("/proc/%d/uid_map", pid))
	if err != nil || strings.TrimSpace(string(m)) == "" {
		return 0, false
	}
	return pid, true
}

// startPause starts the pause process in a new user and mount namespace
// and maps its IDs: the user's subordinate IDs through newuidmap and
// newgidmap when /etc/subuid and /etc/subgid have them, else only the
// user itself (as Podman without subordinate IDs).
func startPause(self string) (int, error) {
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return 0, err
	}
	defer devnull.Close()
	cmd := exec.Command(self, PauseArg)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
		Setsid:     true,
	}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start the rootless pause process: %w", err)
	}
	pid := cmd.Process.Pid
	go func() { _ = cmd.Wait() }()
	if err := mapIDs(pid); err != nil {
		_ = cmd.Process.Kill()
		return 0, err
	}
	return pid, nil
}

// mapIDs writes the uid and gid maps of pid's user namespace.
func mapIDs(pid int) error {
	uid, gid := os.Getuid(), os.Getgid()
	name := strconv.Itoa(uid)
	if u, err := user.LookupId(name); err == nil {
		name = u.Username
	}
	subuid, _ := safefile.Read("/etc/subuid", safefile.DefaultLimit)
	subgid, _ := safefile.Read("/etc/subgid", safefile.DefaultLimit)
	uids := ParseSubIDs(string(subuid), name, uid)
	gids := ParseSubIDs(string(subgid), name, gid)
	if len(uids) > 0 && len(gids) > 0 {
		if err := runMap("newuidmap", pid, MapArgs(uid, uids)); err != nil {
			return err
		}
		return runMap("newgidmap", pid, MapArgs(gid, gids))
	}
	// Only the user: allowed without helpers once setgroups is denied.
	p := fmt.Sprintf("/proc/%d/", pid)
	if err := os.WriteFile(p+"uid_map", []byte(fmt.Sprintf("0 %d 1\n", uid)), 0); err != nil {
		return fmt.Errorf("write uid_map (no subordinate IDs for %s in /etc/subuid): %w", name, err)
	}
	if err := os.WriteFile(p+"setgroups", []byte("deny"), 0); err != nil {
		return fmt.Errorf("deny setgroups: %w", err)
	}
	if err := os.WriteFile(p+"gid_map", []byte(fmt.Sprintf("0 %d 1\n", gid)), 0); err != nil {
		return fmt.Errorf("write gid_map: %w", err)
	}
	return nil
}

func runMap(tool string, pid int, args []string) error {
	path, err := exec.LookPath(tool)
	if err != nil {
		return fmt.Errorf("rootless berth with subordinate IDs needs %s (Debian package uidmap): %w", tool, err)
	}
	out, err := exec.Command(path, append([]string{strconv.Itoa(pid)}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %d %s: %s: %w", tool, pid, strings.Join(args, " "), strings.TrimSpace(string(out)), err)
	}
	return nil
}

// StopPause stops the user's pause process (berth system reset / migrate);
// processes that joined its namespaces keep them.
func StopPause(runDir string) error {
	pidFile := filepath.Join(runDir, "pause.pid")
	pid, ok := runningPause(pidFile)
	if !ok {
		os.Remove(pidFile)
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop pause process %d: %w", pid, err)
	}
	for i := 0; i < 100; i++ {
		if syscall.Kill(pid, 0) != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	os.Remove(pidFile)
	return nil
}

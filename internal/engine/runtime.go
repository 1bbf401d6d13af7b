package engine

// The OCI runtime (runc) and the spec the engine hands it.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/berthnet/berth/internal/events"
	"github.com/berthnet/berth/internal/rootless"
	"github.com/berthnet/berth/internal/runopts"
	"github.com/berthnet/berth/internal/runspec"
	"github.com/berthnet/berth/internal/safefile"
)

func (e *Engine) runc(args ...string) (string, error) {
	out, err := exec.Command(e.cfg.Runtime, append([]string{"--root", e.RuncRoot()}, args...)...).CombinedOutput()
	return string(out), err
}

// runcStatus is runc's status of the container, "" when runc does not
// know it. OCI runtimes (runc, crun, youki) keep a container's state in
// a directory named by its ID under their root: without that directory
// the runtime is not asked.
func (e *Engine) runcStatus(id string) string {
	if !e.runcKnows(id) {
		return ""
	}
	out, err := exec.Command(e.cfg.Runtime, "--root", e.RuncRoot(), "state", id).Output()
	if err != nil {
		return ""
	}
	var st struct {
		Status string `json:"status"`
	}
	if json.Unmarshal(out, &st) != nil {
		return ""
	}
	return st.Status
}

// runcKnows reports whether the runtime may have state for the container
// (its state directory exists).
func (e *Engine) runcKnows(id string) bool {
	_, err := os.Lstat(filepath.Join(e.RuncRoot(), id))
	return !errors.Is(err, os.ErrNotExist)
}

// runcDelete has the runtime forget the container, killing what is left
// of it; without state for it the runtime is not run.
func (e *Engine) runcDelete(id string) error {
	if !e.runcKnows(id) {
		return nil
	}
	out, err := e.runc("delete", "--force", id)
	if err == nil || strings.Contains(out, "does not exist") || e.runcStatus(id) == "" {
		return nil
	}
	return fmt.Errorf("runc delete: %s: %w", strings.TrimSpace(out), err)
}

func (e *Engine) signal(id, sig string) error {
	s, err := ParseSignal(sig)
	if err != nil {
		return err
	}
	if out, err := e.runc("kill", id, strconv.Itoa(int(s))); err != nil {
		if strings.Contains(out, "not running") || strings.Contains(out, "does not exist") || strings.Contains(out, "process already finished") {
			return nil
		}
		return fmt.Errorf("runc kill: %s: %w", strings.TrimSpace(out), err)
	}
	return nil
}

// Exec runs a command in a running container through runc exec with the
// caller's stdio and returns its exit code (126/127 when it cannot run).
func (e *Engine) Exec(ref string, p runspec.Process, detach bool, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	return e.ExecWith(ref, p, ExecIO{Detach: detach, Stdin: stdin, Stdout: stdout, Stderr: stderr})
}

// ExecIO are an exec session's streams and how it runs.
type ExecIO struct {
	// Detach returns once the process runs.
	Detach         bool
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Terminal, when set, is resized by the caller while a session with
	// a terminal (and without a terminal of the caller's as stdin) runs.
	Terminal *Terminal
}

// ExecWith is Exec with a resizable terminal.
func (e *Engine) ExecWith(ref string, p runspec.Process, o ExecIO) (int, error) {
	detach := o.Detach
	c, err := e.Get(ref)
	if err != nil {
		return 125, err
	}
	if !c.Running() {
		return 125, fmt.Errorf("can only create exec sessions on running containers: %w", ErrRunning)
	}
	procFile, err := e.execProcess(c, p)
	if err != nil {
		return 125, err
	}
	defer os.Remove(procFile)
	cmdline := map[string]string{events.AttrExecCommand: strings.Join(p.Args, " ")}
	e.containerEvent(c, "exec", cmdline)
	code, err := e.runExec(c, procFile, p.Terminal, o)
	if !detach && err == nil {
		cmdline[events.AttrExitCode] = strconv.Itoa(code)
		e.containerEvent(c, "exec_died", cmdline)
	}
	return code, err
}

// runExec runs the process of procFile in c with runc exec.
func (e *Engine) runExec(c *Container, procFile string, terminal bool, o ExecIO) (int, error) {
	detach, stdin, stdout, stderr := o.Detach, o.Stdin, o.Stdout, o.Stderr
	args := []string{"--root", e.RuncRoot(), "exec", "--process", procFile}
	if terminal {
		args = append(args, "--tty")
	}
	if detach {
		args = append(args, "--detach")
	}
	errTail := &tailWriter{w: stderr}
	if terminal && !detach && !isTerminal(stdin) {
		// No terminal to hand runc: the session gets a terminal of
		// its own, copied to and from the caller's streams.
		return execResult(e.execOnPTY(args, c.Config.ID, stdin, stdout, errTail, o.Terminal), string(errTail.tail))
	}
	cmd := exec.Command(e.cfg.Runtime, append(args, c.Config.ID)...)
	cmd.Stdin, cmd.Stdout = stdin, stdout
	cmd.Stderr = errTail
	return execResult(cmd.Run(), string(errTail.tail))
}

// isTerminal reports whether r is a terminal device.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// execOnPTY runs runc exec (args without the container ID) on a terminal
// of its own: runc's stdin and stdout are a new terminal's slave side, whose
// master side is copied to stdout and fed from stdin (when not nil), as
// Podman does for exec -t without a terminal. runc's errors go to stderr.
// tty, when not nil, resizes the terminal while runc runs.
func (e *Engine) execOnPTY(args []string, id string, stdin io.Reader, stdout, stderr io.Writer, tty *Terminal) error {
	master, slave, err := openRawPTY()
	if err != nil {
		return fmt.Errorf("allocate a terminal: %w", err)
	}
	defer master.Close()
	cmd := exec.Command(e.cfg.Runtime, append(args, id)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, stderr
	if tty != nil {
		// The size asked for so far is the one runc copies at its start.
		tty.open(master)
		defer tty.close()
	}
	err = cmd.Start()
	slave.Close()
	if err != nil {
		return err
	}
	if tty != nil {
		tty.started(cmd.Process)
	}
	if stdin != nil {
		go func() { _, _ = io.Copy(master, stdin) }()
	}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		// Ends with EIO once every holder of the slave side is gone.
		_, _ = io.Copy(stdout, master)
	}()
	err = cmd.Wait()
	<-copied
	return err
}

// openPTY opens a new terminal's master and slave sides.
func openPTY() (master, slave *os.File, err error) {
	master, err = os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("unlock terminal: %w", err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("terminal number: %w", err)
	}
	slave, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	return master, slave, nil
}

// openRawPTY opens a new terminal in raw mode. runc makes the terminal
// it is given raw too, but only once the container's terminal exists;
// until then a cooked one would echo the caller's first input (the
// container's terminal echoes it already) and translate it.
func openRawPTY() (master, slave *os.File, err error) {
	master, slave, err = openPTY()
	if err != nil {
		return nil, nil, err
	}
	if _, err := term.MakeRaw(int(slave.Fd())); err != nil {
		master.Close()
		slave.Close()
		return nil, nil, fmt.Errorf("raw terminal: %w", err)
	}
	return master, slave, nil
}

// execProcess writes the OCI process of an exec session into the
// container's run directory and returns the file's path.
func (e *Engine) execProcess(c *Container, p runspec.Process) (string, error) {
	if p.Cwd == "" {
		p.Cwd = c.Config.WorkingDir
	}
	p.Env = runspec.MergeEnv(c.Config.Env, p.Env)
	if p.UID == 0 && p.GID == 0 && c.Config.User != "" {
		root := c.State.Mounted
		passwd, _ := safefile.ReadInRoot(root, "etc/passwd", safefile.DefaultLimit)
		group, _ := safefile.ReadInRoot(root, "etc/group", safefile.DefaultLimit)
		var err error
		if p.UID, p.GID, err = runspec.ResolveUser(c.Config.User, passwd, group); err != nil {
			return "", err
		}
	}
	p.NoFile = noFile()
	if ulimitHost(c.Config.Runtime) {
		p.NoFile = 0
	}
	sec, err := processSecurity(c.Config.Runtime)
	if err != nil {
		return "", err
	}
	p.Security = sec
	proc, err := runspec.BuildProcess(p)
	if err != nil {
		return "", err
	}
	b, _ := json.Marshal(proc)
	f, err := os.CreateTemp(e.RunDir(c.Config.ID), "exec-*.json")
	if err != nil {
		return "", err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// execResult maps runc exec's outcome to Podman's exit codes: the
// command's own, 126 when it cannot run, 127 when it is not found, 125
// when runc itself failed.
func execResult(err error, tail string) (int, error) {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		if err != nil {
			return 125, fmt.Errorf("runc exec: %w", err)
		}
		return 0, nil
	}
	const marker = "unable to start container process: "
	i := strings.Index(tail, marker)
	if i < 0 {
		return ee.ExitCode(), nil
	}
	msg := strings.Trim(strings.TrimSpace(tail[i+len(marker):]), "\"")
	msg = "runc: exec failed: " + strings.ReplaceAll(msg, `\"`, `"`)
	switch {
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"):
		return 127, fmt.Errorf("%s: OCI runtime attempted to invoke a command that was not found", msg)
	case strings.Contains(msg, "permission denied"):
		return 126, fmt.Errorf("%s: OCI permission denied", msg)
	}
	return 126, errors.New(msg)
}

// tailWriter forwards writes and keeps the last 4 KiB (runc's error).
type tailWriter struct {
	w    io.Writer
	tail []byte
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.tail = append(t.tail, p...)
	if len(t.tail) > 4096 {
		t.tail = t.tail[len(t.tail)-4096:]
	}
	// runc's own error lines are not the container's output.
	if strings.Contains(string(p), "unable to start container process") {
		return len(p), nil
	}
	return t.w.Write(p)
}

func (e *Engine) spec(c *Container, rootfs string, st State, binds []runspec.Bind) (any, error) {
	passwd, _ := safefile.ReadInRoot(rootfs, "etc/passwd", safefile.DefaultLimit)
	group, _ := safefile.ReadInRoot(rootfs, "etc/group", safefile.DefaultLimit)
	uid, gid, err := runspec.ResolveUser(c.Config.User, passwd, group)
	if err != nil {
		return nil, err
	}
	mounts, err := e.storageMounts(c, rootfs, uid, gid)
	if err != nil {
		return nil, err
	}
	env := runspec.MergeEnv([]string{"container=berth", "HOSTNAME=" + c.Config.Hostname}, c.Config.Env)
	var ipcNS, utsNS string
	if c.Config.Pod != "" && !c.Config.Infra && c.Config.Net.Kind == runopts.ModeContainer {
		infra, err := e.reconcile(c.Config.Net.Target)
		if err != nil {
			return nil, err
		}
		if !infra.Running() {
			return nil, fmt.Errorf("the infra container of the pod is not running")
		}
		ipcNS = fmt.Sprintf("/proc/%d/ns/ipc", infra.State.Pid)
		utsNS = fmt.Sprintf("/proc/%d/ns/uts", infra.State.Pid)
	}
	sec, extra, groups, err := e.runtimeSpec(c, group)
	if err != nil {
		return nil, err
	}
	nofile := noFile()
	if ulimitHost(c.Config.Runtime) {
		nofile = 0
	}
	return runspec.Generate(runspec.Options{
		IPCNS: ipcNS, UTSNS: utsNS,
		Process: runspec.Process{
			Args: c.Config.Args, Env: env, Cwd: c.Config.WorkingDir,
			UID: uid, GID: gid, Terminal: c.Config.Terminal, NoFile: nofile,
			Groups: groups, Security: sec,
		},
		Extra:       extra,
		Rootfs:      rootfs,
		Hostname:    c.Config.Hostname,
		NetNS:       st.NetNS,
		HostNetwork: c.Config.Net.Kind == runopts.ModeHost,
		Binds:       binds,
		Mounts:      mounts,
		CgroupsPath: "/berth/" + c.Config.ID,
		ReadOnly:    c.Config.ReadOnly,
		Rootless:    e.cfg.Rootless,
		NoTTYGroup:  e.cfg.Rootless && !gidMapped(5),
	})
}

// gidMapped reports whether gid exists in this process's user namespace.
func gidMapped(gid int) bool {
	b, err := os.ReadFile("/proc/self/gid_map")
	if err != nil {
		return true
	}
	m, err := rootless.ParseIDMap(string(b))
	return err != nil || rootless.InMap(m, gid)
}

// noFile is the open-files limit containers get: the host's hard limit, as
// Podman gives when it cannot raise it to 1048576.
func noFile() uint64 {
	var r unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &r); err != nil {
		return 0
	}
	return min(r.Max, 1048576)
}

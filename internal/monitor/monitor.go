// Package monitor is berth's conmon: the process that runs beside a
// container for its whole life. It is a child subreaper, runs `runc create`
// and `runc start` (with runc's console socket for -t), holds the published
// host ports open so no one else can take them, writes the container's
// output to a k8s-file log, serves attach clients over a unix socket, reaps
// the container's init and records its exit code and time crash-safely
// (atomic rename) before the caller's exit hook tears the network down.
// When the restart policy says so, it runs the container again in place
// (same bundle, namespace and held ports) after a backoff; beside each
// run it starts what the caller supervises it with (the health checks).
package monitor

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/rollback"
)

// Attach stream identifiers: each frame is one byte of stream, a big-endian
// uint32 length and the payload.
const (
	StreamStdout = 1
	StreamStderr = 2
	// StreamExit carries the exit code in decimal; it is the last frame.
	StreamExit = 3
)

// Config configures one monitor.
type Config struct {
	ID string
	// Runtime is runc; RuntimeRoot its --root; Bundle holds config.json.
	Runtime, RuntimeRoot, Bundle string
	// LogPath is the k8s-file log; ExitFile receives the exit record;
	// AttachSocket is where attach clients connect; Dir holds the pid file
	// and console socket.
	LogPath, ExitFile, AttachSocket, Dir string
	Terminal, Stdin                      bool
	// ResizeSocket, with Terminal, is where clients resize the
	// container's terminal (see Resize).
	ResizeSocket string
	// WaitAttach holds `runc start` until the first attach client is
	// connected (foreground runs see all output).
	WaitAttach bool
	// Sync receives the progress lines of Start: {"stage":"created","pid":N},
	// {"stage":"started"} or {"error":"..."}; it is closed after start.
	Sync io.WriteCloser
	// Ports are the published host ports, held open until the container
	// exits.
	Ports []*os.File
	// OnStarted records the running state; OnExited records the exit and
	// cleans up (network teardown, --rm).
	OnStarted func(pid int) error
	OnExited  func(code int, at time.Time)
	// Restart, when set, is asked after each exit whether the restart
	// policy starts the container again (it records the exit if so). A
	// restart keeps the published ports, the log and the attach socket
	// (its clients get the exit frame and are dropped); it comes after a
	// backoff (see NextBackoff) during which KeepRestarting is asked
	// whether it still stands, and runs under RestartLock, with
	// OnRestarted recording the new process.
	Restart        func(code int, at time.Time) bool
	KeepRestarting func() bool
	RestartLock    func() (unlock func(), err error)
	OnRestarted    func(pid int) error
	// Supervise, when set, is called once the container runs (pid: its
	// process) and returns what to call when that run ended (it starts
	// and stops the health checks).
	Supervise func(pid int) (stop func())
	Log       *slog.Logger
	Now       func() time.Time
}

// Exit is the content of the exit file.
type Exit struct {
	Code int       `json:"exit_code"`
	At   time.Time `json:"finished_at"`
}

// ReadExit reads an exit file; os.ErrNotExist when there is none yet.
func ReadExit(path string) (Exit, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Exit{}, err
	}
	var e Exit
	if err := json.Unmarshal(b, &e); err != nil {
		return Exit{}, fmt.Errorf("exit file %s: %w", path, err)
	}
	return e, nil
}

// WriteFileAtomic writes data to path through a temporary file and rename.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

type syncMsg struct {
	Stage string `json:"stage,omitempty"`
	Pid   int    `json:"pid,omitempty"`
	Error string `json:"error,omitempty"`
	// Code is an exit-code hint for start errors (127: command not found,
	// 126: not executable).
	Code int `json:"code,omitempty"`
}

// monitor is the running state.
type monitor struct {
	cfg     Config
	logMu   sync.Mutex // guards logFile writes
	logFile *os.File
	mu      sync.Mutex // guards clients and console
	clients []net.Conn
	// console is the master side of the container's terminal (with
	// Terminal; a restart brings a new one).
	console *os.File
	// size is the last size a client asked for, kept for the terminal
	// of a restart and for a request that came before the terminal.
	size *unix.Winsize
	// stdin is where the first attach client's input goes (nil without -i).
	stdin    io.WriteCloser
	stdinSet bool
	attached chan struct{}
}

// Run monitors the container until it exits. The returned error is a
// failure to start; after a successful start Run returns nil once the exit
// is recorded and OnExited ran.
func Run(cfg Config) (err error) {
	m := newMonitor(cfg)
	syncEnc := json.NewEncoder(m.cfg.Sync)
	defer func() { m.endStart(syncEnc, err) }()
	// What the monitor holds until Run returns (log, sockets, terminal).
	var closers rollback.Stack
	defer closers.Run()
	closeAttach, err := m.open(&closers)
	if err != nil {
		return err
	}
	// What one run of the container holds (its terminal).
	var run rollback.Stack
	outputs, pid, err := m.create(&run)
	if err != nil {
		run.Run()
		return err
	}
	if err := m.start(syncEnc, pid); err != nil {
		run.Run()
		return err
	}
	started := m.cfg.Now()
	m.supervise(pid, &run)
	code := m.wait(outputs, pid)
	run.Run()
	code, at := m.restarts(code, started)
	m.exited(code, at, closeAttach)
	return nil
}

// supervise starts what runs beside the container's run of pid; run
// stops it when the run ended.
func (m *monitor) supervise(pid int, run *rollback.Stack) {
	if m.cfg.Supervise != nil {
		if stop := m.cfg.Supervise(pid); stop != nil {
			run.Defer(stop)
		}
	}
}

// Backoff delays between restarts, as Docker's: 100 ms doubling up to a
// minute, back to 100 ms after a run of at least ten seconds.
const (
	BackoffMin   = 100 * time.Millisecond
	BackoffMax   = time.Minute
	BackoffReset = 10 * time.Second
)

// NextBackoff returns the delay before the next restart, given the delay
// before the previous one (0: none yet) and how long the container ran.
func NextBackoff(prev, ran time.Duration) time.Duration {
	if prev <= 0 || ran >= BackoffReset {
		return BackoffMin
	}
	return min(prev*2, BackoffMax)
}

// restarts starts the container again for as long as the restart policy
// says so, and returns the last exit code and time.
func (m *monitor) restarts(code int, started time.Time) (int, time.Time) {
	var delay time.Duration
	for {
		at := m.cfg.Now().UTC()
		if m.cfg.Restart == nil || !m.cfg.Restart(code, at) {
			return code, at
		}
		// The exit is recorded: attach clients learn it, runc forgets
		// the old process.
		m.broadcast(StreamExit, []byte(strconv.Itoa(code)))
		m.dropClients()
		if out, err := m.runc("delete", "--force", m.cfg.ID); err != nil {
			m.cfg.Log.Warn("runc delete before restart", "error", err, "output", out)
		}
		delay = NextBackoff(delay, at.Sub(started))
		if !m.backoff(delay) {
			return code, at
		}
		var run rollback.Stack
		outputs, pid, ok := m.restart(&run)
		if !ok {
			run.Run()
			return code, at
		}
		started = m.cfg.Now()
		m.supervise(pid, &run)
		code = m.wait(outputs, pid)
		run.Run()
	}
}

// backoff waits d unless the restart is called off meanwhile; it reports
// whether the restart still stands.
func (m *monitor) backoff(d time.Duration) bool {
	const step = 50 * time.Millisecond
	for deadline := time.Now().Add(d); ; {
		if m.cfg.KeepRestarting != nil && !m.cfg.KeepRestarting() {
			return false
		}
		left := time.Until(deadline)
		if left <= 0 {
			return true
		}
		time.Sleep(min(left, step))
	}
}

// restart runs the container again under the restart lock, unless the
// restart was called off while the lock was awaited; closers receives
// what the new run holds.
func (m *monitor) restart(closers *rollback.Stack) ([]io.Reader, int, bool) {
	if m.cfg.RestartLock != nil {
		unlock, err := m.cfg.RestartLock()
		if err != nil {
			m.cfg.Log.Warn("restart: lock", "error", err)
			return nil, 0, false
		}
		defer unlock()
	}
	if m.cfg.KeepRestarting != nil && !m.cfg.KeepRestarting() {
		return nil, 0, false
	}
	outputs, pid, err := m.create(closers)
	if err == nil {
		if out, rerr := m.runc("start", m.cfg.ID); rerr != nil {
			m.runc("delete", "--force", m.cfg.ID)
			err = runcFailure("start", rerr, out)
		}
	}
	if err != nil {
		m.cfg.Log.Warn("restart", "error", err)
		return nil, 0, false
	}
	if m.cfg.OnRestarted != nil {
		if err := m.cfg.OnRestarted(pid); err != nil {
			m.cfg.Log.Warn("record restart", "error", err)
		}
	}
	return outputs, pid, true
}

// newMonitor fills in cfg's defaults.
func newMonitor(cfg Config) *monitor {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &monitor{cfg: cfg, attached: make(chan struct{})}
}

// endStart reports a start failure (err) on the sync pipe, closes the pipe
// and releases the published ports if the exit has not already.
func (m *monitor) endStart(enc *json.Encoder, err error) {
	if err != nil {
		code := 0
		var ce *codeError
		if errors.As(err, &ce) {
			code = ce.code
		}
		_ = enc.Encode(syncMsg{Error: err.Error(), Code: code})
	}
	m.cfg.Sync.Close()
	m.closePorts()
}

// open makes the monitor a child subreaper, opens the log and serves
// attach clients; closers receives what Run closes on return, and
// closeAttach stops the attach service early.
func (m *monitor) open(closers *rollback.Stack) (closeAttach func(), err error) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("become subreaper: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(m.cfg.LogPath), 0o700); err != nil {
		return nil, err
	}
	m.logFile, err = os.OpenFile(m.cfg.LogPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	logFile := m.logFile
	closers.Defer(func() { logFile.Close() })
	os.Remove(m.cfg.AttachSocket)
	al, err := ListenUnix(m.cfg.AttachSocket)
	if err != nil {
		return nil, fmt.Errorf("listen on attach socket: %w", err)
	}
	var attachOnce sync.Once
	closeAttach = func() {
		attachOnce.Do(func() {
			al.Close()
			os.Remove(m.cfg.AttachSocket)
		})
	}
	closers.Defer(closeAttach)
	go m.acceptAttach(al)
	if m.cfg.Terminal && m.cfg.ResizeSocket != "" {
		os.Remove(m.cfg.ResizeSocket)
		rl, err := ListenUnix(m.cfg.ResizeSocket)
		if err != nil {
			return nil, fmt.Errorf("listen on resize socket: %w", err)
		}
		closers.Defer(func() {
			rl.Close()
			os.Remove(m.cfg.ResizeSocket)
		})
		go m.acceptResize(rl)
	}
	return closeAttach, nil
}

// create runs `runc create` and returns the container's output streams
// ([stdout, stderr], or [pty] with a terminal) and its pid.
func (m *monitor) create(closers *rollback.Stack) ([]io.Reader, int, error) {
	pidFile := filepath.Join(m.cfg.Dir, "pidfile")
	os.Remove(pidFile)
	args := []string{"--root", m.cfg.RuntimeRoot, "create", "--bundle", m.cfg.Bundle, "--pid-file", pidFile}
	var outputs []io.Reader
	var err error
	if m.cfg.Terminal {
		outputs, err = m.createWithTerminal(args, closers)
	} else {
		outputs, err = m.createWithPipes(args)
	}
	if err != nil {
		return nil, 0, err
	}
	for _, r := range outputs {
		if c, ok := r.(io.Closer); ok {
			closers.Defer(func() { c.Close() })
		}
	}
	pid, err := readPid(pidFile)
	if err != nil {
		return nil, 0, err
	}
	return outputs, pid, nil
}

// createWithTerminal runs `runc create` (args without the container ID)
// with a console socket and returns the terminal's master side, which runc
// sends over it; it is also the container's stdin with -i.
func (m *monitor) createWithTerminal(args []string, closers *rollback.Stack) ([]io.Reader, error) {
	// runc dials the console socket by path: it must be short.
	sockDir, err := os.MkdirTemp("", "berth-console-")
	if err != nil {
		return nil, err
	}
	closers.Defer(func() { os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "console.sock")
	cl, err := net.Listen("unix", sock)
	if err != nil {
		return nil, fmt.Errorf("listen on console socket: %w", err)
	}
	closers.Defer(func() { cl.Close() })
	ptyCh := make(chan *os.File, 1)
	go func() { ptyCh <- receivePTY(cl) }()
	var runcErr bytes.Buffer
	create := exec.Command(m.cfg.Runtime, append(args, "--console-socket", sock, m.cfg.ID)...)
	create.Stdout, create.Stderr = &runcErr, &runcErr
	if err := create.Run(); err != nil {
		return nil, runcFailure("create", err, runcErr.String())
	}
	var pty *os.File
	select {
	case pty = <-ptyCh:
	case <-time.After(10 * time.Second):
	}
	if pty == nil {
		return nil, errors.New("runc did not send the terminal")
	}
	closers.Defer(func() { pty.Close() })
	m.mu.Lock()
	m.console = pty
	if m.size != nil {
		_ = unix.IoctlSetWinsize(int(pty.Fd()), unix.TIOCSWINSZ, m.size)
	}
	m.mu.Unlock()
	if m.cfg.Stdin {
		m.stdin = pty
	}
	return []io.Reader{pty}, nil
}

// createWithPipes runs `runc create` (args without the container ID) with
// the container's stdout and stderr, and its stdin with -i, on pipes, and
// returns the read ends of stdout and stderr.
func (m *monitor) createWithPipes(args []string) ([]io.Reader, error) {
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	create := exec.Command(m.cfg.Runtime, append(args, m.cfg.ID)...)
	create.Stdout, create.Stderr = outW, errW
	var closeAfterCreate []io.Closer
	if m.cfg.Stdin {
		inR, inW, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		create.Stdin = inR
		m.stdin = inW
		closeAfterCreate = append(closeAfterCreate, inR)
	}
	closeAfterCreate = append(closeAfterCreate, outW, errW)
	err = create.Run()
	for _, c := range closeAfterCreate {
		c.Close()
	}
	if err != nil {
		// runc wrote its error to the container's stderr pipe.
		msg, _ := io.ReadAll(io.LimitReader(errR, 64<<10))
		out, _ := io.ReadAll(io.LimitReader(outR, 64<<10))
		return nil, runcFailure("create", err, string(msg)+string(out))
	}
	return []io.Reader{outR, errR}, nil
}

// readPid reads the container's pid from runc's pid file.
func readPid(pidFile string) (int, error) {
	pidData, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, fmt.Errorf("read runc pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(pidData)))
	if err != nil {
		return 0, fmt.Errorf("runc pid file: %w", err)
	}
	return pid, nil
}

// start reports the created container on the sync pipe, waits for the
// first attach client if asked to, runs `runc start` (deleting the
// container if that fails), records the running state, reports the start
// and closes the sync pipe.
func (m *monitor) start(enc *json.Encoder, pid int) error {
	if err := enc.Encode(syncMsg{Stage: "created", Pid: pid}); err != nil {
		m.runc("delete", "--force", m.cfg.ID)
		return fmt.Errorf("report creation: %w", err)
	}
	if m.cfg.WaitAttach {
		select {
		case <-m.attached:
		case <-time.After(time.Minute):
		}
	}
	if out, err := m.runc("start", m.cfg.ID); err != nil {
		m.runc("delete", "--force", m.cfg.ID)
		return runcFailure("start", err, out)
	}
	if m.cfg.OnStarted != nil {
		if err := m.cfg.OnStarted(pid); err != nil {
			m.cfg.Log.Warn("record running state", "error", err)
		}
	}
	_ = enc.Encode(syncMsg{Stage: "started", Pid: pid})
	m.cfg.Sync.Close()
	return nil
}

// wait copies the container's output to the log and the attach clients,
// reaps the container and returns its exit code once the output is drained
// (or two seconds later, when something else still holds it open).
func (m *monitor) wait(outputs []io.Reader, pid int) int {
	var copiers sync.WaitGroup
	for i, r := range outputs {
		copiers.Add(1)
		go func(stream byte, r io.Reader) {
			defer copiers.Done()
			m.pump(stream, r)
		}(byte(i+1), r)
	}
	code := reap(pid)
	done := make(chan struct{})
	go func() { copiers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
	return code
}

// exited records the exit: it closes the attach service, writes the exit
// file, sends the exit frame to the attach clients and drops them,
// releases the published ports and runs OnExited.
func (m *monitor) exited(code int, at time.Time, closeAttach func()) {
	// No new attach clients; the socket goes before the exit is recorded,
	// so a restart's monitor never loses its socket to this one.
	closeAttach()
	ex, _ := json.Marshal(Exit{Code: code, At: at})
	if err := WriteFileAtomic(m.cfg.ExitFile, ex, 0o644); err != nil {
		m.cfg.Log.Warn("write exit file", "error", err)
	}
	m.broadcast(StreamExit, []byte(strconv.Itoa(code)))
	m.dropClients()
	m.closePorts()
	if m.cfg.OnExited != nil {
		m.cfg.OnExited(code, at)
	}
}

// dropClients closes every attach client.
func (m *monitor) dropClients() {
	m.mu.Lock()
	for _, c := range m.clients {
		c.Close()
	}
	m.clients = nil
	m.mu.Unlock()
}

// closePorts releases the published host ports, once.
func (m *monitor) closePorts() {
	for _, p := range m.cfg.Ports {
		p.Close()
	}
	m.cfg.Ports = nil
}

// runc runs the runtime with args and returns its combined output.
func (m *monitor) runc(args ...string) (string, error) {
	out, err := exec.Command(m.cfg.Runtime, append([]string{"--root", m.cfg.RuntimeRoot}, args...)...).CombinedOutput()
	return string(out), err
}

type codeError struct {
	code int
	err  error
}

func (e *codeError) Error() string { return e.err.Error() }
func (e *codeError) Unwrap() error { return e.err }

// runcFailure turns runc's output into an error, with Podman's exit codes
// for a command that is missing (127) or cannot be executed (126).
func runcFailure(op string, err error, out string) error {
	msg := strings.TrimSpace(out)
	// runc prints "runc create failed: unable to start container process: ...".
	if i := strings.LastIndex(msg, "unable to start container process: "); i >= 0 {
		msg = msg[i+len("unable to start container process: "):]
	}
	msg = strings.ReplaceAll(strings.Trim(msg, "\" \n"), `\"`, `"`)
	if msg == "" {
		msg = err.Error()
	}
	e := fmt.Errorf("runc %s: %s", op, msg)
	switch {
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"):
		return &codeError{code: 127, err: e}
	case strings.Contains(msg, "permission denied"):
		return &codeError{code: 126, err: e}
	}
	return e
}

// reap waits for pid as the subreaper, reaping every other child too, and
// returns its exit code (128+signal when killed).
func reap(pid int) int {
	for {
		var ws unix.WaitStatus
		got, err := unix.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			// No children left: the process is gone without us seeing it.
			return -1
		}
		if got != pid {
			continue
		}
		if ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ws.ExitStatus()
	}
}

// receivePTY accepts runc's connection on the console socket and returns
// the terminal's master side.
func receivePTY(l net.Listener) *os.File {
	c, err := l.Accept()
	if err != nil {
		return nil
	}
	defer c.Close()
	uc := c.(*net.UnixConn)
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := uc.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) == 0 {
		return nil
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) == 0 {
		return nil
	}
	return os.NewFile(uintptr(fds[0]), "pty-master")
}

func (m *monitor) acceptAttach(l net.Listener) {
	first := true
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		m.mu.Lock()
		m.clients = append(m.clients, c)
		m.mu.Unlock()
		if m.stdin != nil && !m.stdinSet {
			m.stdinSet = true
			go func() {
				_, _ = io.Copy(m.stdin, c)
				if !m.cfg.Terminal {
					m.stdin.Close()
				}
			}()
		}
		if first {
			first = false
			close(m.attached)
		}
	}
}

// pump copies one output stream to the log and the attach clients.
func (m *monitor) pump(stream byte, r io.Reader) {
	name := "stdout"
	if stream == StreamStderr {
		name = "stderr"
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			m.writeLog(name, buf[:n])
			m.broadcast(stream, buf[:n])
		}
		if err != nil {
			return
		}
	}
}

// writeLog appends data in the k8s-file format:
// "<RFC3339Nano> stdout F line" per complete line, P for a partial one.
func (m *monitor) writeLog(stream string, data []byte) {
	ts := m.cfg.Now().Format(time.RFC3339Nano)
	var b bytes.Buffer
	for len(data) > 0 {
		line, rest, complete := bytes.Cut(data, []byte("\n"))
		tag := "F"
		if !complete {
			tag = "P"
		}
		fmt.Fprintf(&b, "%s %s %s %s\n", ts, stream, tag, line)
		data = rest
	}
	m.logMu.Lock()
	_, _ = m.logFile.Write(b.Bytes())
	m.logMu.Unlock()
}

func (m *monitor) broadcast(stream byte, data []byte) {
	frame := make([]byte, 5+len(data))
	frame[0] = stream
	binary.BigEndian.PutUint32(frame[1:5], uint32(len(data)))
	copy(frame[5:], data)
	m.mu.Lock()
	defer m.mu.Unlock()
	keep := m.clients[:0]
	for _, c := range m.clients {
		_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(frame); err != nil {
			c.Close()
			continue
		}
		keep = append(keep, c)
	}
	m.clients = keep
}

// ReadFrame reads one attach frame.
func ReadFrame(r io.Reader) (stream byte, data []byte, err error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	data = make([]byte, binary.BigEndian.Uint32(hdr[1:5]))
	if _, err := io.ReadFull(r, data); err != nil {
		return 0, nil, err
	}
	return hdr[0], data, nil
}

// SyncMessage is one line the monitor writes on its sync pipe.
type SyncMessage = syncMsg

// StartError is a start failure reported over the sync pipe, with the
// exit code Podman uses for it (125, or 126/127 for exec failures).
type StartError struct {
	Msg  string
	Code int
}

func (e *StartError) Error() string { return e.Msg }

// ReadSync reads sync lines until stage (or an error) arrives and returns
// the container pid.
func ReadSync(dec *json.Decoder, stage string) (int, error) {
	for {
		var msg syncMsg
		if err := dec.Decode(&msg); err != nil {
			if errors.Is(err, io.EOF) {
				return 0, errors.New("the monitor exited before the container started")
			}
			return 0, fmt.Errorf("read from monitor: %w", err)
		}
		if msg.Error != "" {
			code := msg.Code
			if code == 0 {
				code = 125
			}
			return 0, &StartError{Msg: msg.Error, Code: code}
		}
		if msg.Stage == stage {
			return msg.Pid, nil
		}
	}
}

// shortPath returns a path for a unix socket that fits sun_path: long
// paths go through an open descriptor of their directory
// (/proc/self/fd/N/name), as conmon does; the returned file is that
// descriptor, to be closed after use.
func shortPath(path string) (string, *os.File, error) {
	if len(path) < 100 {
		return path, nil, nil
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return "", nil, err
	}
	return fmt.Sprintf("/proc/self/fd/%d/%s", d.Fd(), filepath.Base(path)), d, nil
}

// ListenUnix listens on a unix socket at path, however long.
func ListenUnix(path string) (net.Listener, error) {
	p, d, err := shortPath(path)
	if err != nil {
		return nil, err
	}
	if d != nil {
		defer d.Close()
	}
	return net.Listen("unix", p)
}

// DialUnix connects to a unix socket at path, however long.
func DialUnix(path string) (net.Conn, error) {
	p, d, err := shortPath(path)
	if err != nil {
		return nil, err
	}
	if d != nil {
		defer d.Close()
	}
	return net.Dial("unix", p)
}

package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/firewall"
	"github.com/berthnet/berth/internal/firewall/firewalld"
	fwnft "github.com/berthnet/berth/internal/firewall/nftables"
)

// The firewall watcher restores berth's rules soon after anyone else
// removed or changed them, without waiting for the next setup or teardown
// (which heal as well). It is one long-running process per state
// directory and host namespace (WatchFirewall), holding an flock on
// <config>/berth/firewall-watch.pid, which also holds its PID. The first
// firewalled setup starts it when that lock is free (Config.
// FirewallWatcher), which costs a setup one open and flock when it runs;
// a systemd unit may run it instead (berth firewall-watch --stay).
//
// It listens for the kernel's announcements of nftables commits (the
// nftables driver's and iptables-nft's changes, and everybody else's),
// waits until a burst of them has settled (debounce), then, under the
// state lock that setups and teardowns take, does what they do first:
// heal. So a container removed on purpose, gone from the records, is not
// restored, and its teardown's own commits find the ruleset at the
// generation berth recorded (fwgen.go): checked in one request. Its own
// repairs are not announced to it. The iptables driver on an
// iptables-legacy backend announces nothing: then it checks every second.
// On firewalld's Reloaded signal it re-applies every container's rules
// (the firewalld driver's objects, and the trusted-zone bindings made
// alongside firewalld), as `netavark firewalld-reload` does. Every 30 s,
// and after each check, it looks whether any firewalled network still has
// containers, and exits when none has (unless it stays as a service).

// WatchCommand is the subcommand that runs the firewall watcher in
// berth's programs: EXE firewall-watch --config DIR --firewall-driver
// NAME --dns-port N [--stay].
const WatchCommand = "firewall-watch"

// Files of the watcher in the state directory (<config>/berth).
const (
	watchPidName = "firewall-watch.pid"
	// WatchLogName is the log of a watcher a setup started.
	WatchLogName = "firewall-watch.log"
	// watchLogMax is the size past which a new watcher's log starts
	// afresh (the old one kept as .1).
	watchLogMax = 1 << 20
)

// The watcher's timing.
const (
	watchQuiet  = 30 * time.Millisecond  // a burst has settled this long after its last change
	watchMost   = 200 * time.Millisecond // but is checked this long after its first at the latest
	watchPeriod = 30 * time.Second       // the periodic check
	watchPoll   = time.Second            // the check when changes are not announced
	// At most repairLimit repairs in repairWindow: another program that
	// undoes every repair at once is not fought in a loop.
	repairLimit  = 10
	repairWindow = 10 * time.Second
)

// ErrWatcherRunning is returned by WatchFirewall when another watcher
// holds the lock of the state directory.
var ErrWatcherRunning = errors.New("a firewall watcher already runs for this state directory")

// WatchOptions configure WatchFirewall.
type WatchOptions struct {
	// Stay keeps the watcher running while no network has containers
	// (a service); otherwise it returns then.
	Stay bool
}

// WatchLogger is the watcher's logger: text lines with times, from info
// level, on w (its standard error).
func WatchLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// WatchFirewall runs the firewall watcher of this state directory until
// ctx ends or no firewalled network has containers (see the top of
// watch.go). It fails with ErrWatcherRunning when another one runs.
func (m *Manager) WatchFirewall(ctx context.Context, o WatchOptions) error {
	lock, err := m.waitWatcher(ctx, o.Stay)
	if err != nil || lock == nil {
		return err
	}
	defer lock.release()
	w := &watcher{m: m, o: o, lock: lock,
		deb:   debounce{quiet: watchQuiet, most: watchMost},
		guard: repairGuard{limit: repairLimit, window: repairWindow},
	}
	defer w.close()
	w.subscribe(ctx)
	return w.run(ctx)
}

// waitWatcher takes the watcher's lock; when another watcher holds it,
// it fails with ErrWatcherRunning, or with stay, waits for that one to
// end (looking once a second). A nil lock and error: ctx ended.
func (m *Manager) waitWatcher(ctx context.Context, stay bool) (*watchLock, error) {
	for said := false; ; said = true {
		lock, err := m.lockWatcher()
		if !stay || !errors.Is(err, ErrWatcherRunning) {
			return lock, err
		}
		if !said {
			m.log.Info("another firewall watcher runs for this state directory; waiting for it to end")
		}
		select {
		case <-ctx.Done():
			return nil, nil
		case <-time.After(time.Second):
		}
	}
}

// watcher is one run of WatchFirewall.
type watcher struct {
	m     *Manager
	o     WatchOptions
	lock  *watchLock
	deb   debounce
	guard repairGuard

	mon     *fwnft.Monitor
	commits <-chan fwnft.Commit // nil: changes are not announced
	reloads <-chan struct{}     // firewalld's reloads; nil: none
	period  time.Duration
	warned  bool // the repair guard held a repair back
	stop    bool // the state directory is gone
}

// subscribe starts listening for nftables commits (drivers that heal
// whose changes the kernel announces) and firewalld's reloads, and picks
// the period of the checks.
func (w *watcher) subscribe(ctx context.Context) {
	fw := w.m.cfg.Firewall
	_, heals := fw.(firewall.Healer)
	p, polled := fw.(firewall.Polled)
	w.period = watchPeriod
	if heals && polled && p.Unannounced() {
		w.period = watchPoll
	} else if heals {
		mon, err := fwnft.Subscribe(w.m.hostFd())
		if err != nil {
			w.m.log.Warn("no nftables events; checking the firewall every second", "error", err)
			w.period = watchPoll
		} else {
			w.mon, w.commits = mon, mon.Commits()
		}
	}
	w.followFirewalld(ctx)
	w.m.log.Info("firewall watcher started", "pid", os.Getpid(), "state", w.m.cfg.ConfigDir, "driver", fw.Name(),
		"nftables_events", w.commits != nil, "firewalld_reloads", w.reloads != nil, "period", w.period)
}

// followFirewalld subscribes to firewalld's reloads on the system bus
// and reports whether it did. The periodic check tries again while there
// is no subscription (no bus yet, or its connection ended).
func (w *watcher) followFirewalld(ctx context.Context) bool {
	reloads, err := firewalld.Reloads(ctx, "")
	if err != nil {
		w.m.log.Debug("not following firewalld's reloads", "error", err)
		return false
	}
	w.reloads = reloads
	return true
}

func (w *watcher) close() {
	if w.mon != nil {
		w.mon.Close()
	}
}

// run is the watcher's loop; it returns nil when ctx ends or the watcher
// has nothing left to watch.
func (w *watcher) run(ctx context.Context) error {
	tick := time.NewTicker(w.period)
	defer tick.Stop()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	active := w.check(false)
	for !w.stop && (active || w.o.Stay) {
		select {
		case <-ctx.Done():
			return nil
		case c, ok := <-w.commits:
			if !ok {
				w.m.log.Warn("nftables events ended; checking the firewall every second", "error", w.mon.Err())
				w.commits = nil
				tick.Reset(watchPoll)
				continue
			}
			w.m.log.Debug("ruleset changed", "generation", c.Gen, "process", c.Proc, "pid", c.PID, "lost", c.Lost)
			w.deb.add(time.Now())
			w.arm(timer)
			continue
		case _, ok := <-w.reloads:
			if !ok {
				w.m.log.Info("the system bus connection ended; following firewalld's reloads again at the next periodic check")
				w.reloads = nil
				continue
			}
			w.m.log.Info("firewalld reloaded; re-applying the firewall rules of every container")
			active = w.check(true)
		case <-timer.C:
			if at := w.guard.next(time.Now()); time.Now().Before(at) {
				w.holdBack(timer, at)
				continue
			}
			w.deb.done()
			active = w.check(false)
		case <-tick.C:
			// A reload may have gone unseen while not subscribed.
			active = w.check(w.reloads == nil && w.followFirewalld(ctx))
		}
		if _, pending := w.deb.due(); pending {
			w.arm(timer)
		}
	}
	if !w.stop {
		w.m.log.Info("no network with containers left; firewall watcher exits")
	}
	return nil
}

// arm sets timer to when the pending changes are due.
func (w *watcher) arm(timer *time.Timer) {
	if at, ok := w.deb.due(); ok {
		timer.Reset(time.Until(at))
	}
}

// holdBack delays the pending check until at: repairs did not hold.
func (w *watcher) holdBack(timer *time.Timer, at time.Time) {
	if !w.warned {
		w.warned = true
		w.m.log.Warn("berth's firewall rules keep being removed right after each repair; repairing less often",
			"repairs", repairLimit, "per", repairWindow)
	}
	timer.Reset(time.Until(at))
}

// check is one look at the firewall (a repair when damaged; with force,
// a re-application of every container's rules) under the state lock. It
// reports whether a firewalled network has containers; when none has and
// the watcher does not stay, it gives up its lock there, before the
// state lock, so that a setup that comes next starts a new watcher.
func (w *watcher) check(force bool) (active bool) {
	if w.lock.gone() {
		w.m.log.Warn("the state directory was removed; firewall watcher exits")
		w.stop = true
		return false
	}
	sess, err := w.m.state.open()
	if err != nil {
		w.m.log.Warn("firewall check: cannot open the state", "error", err)
		return true
	}
	defer sess.close()
	active = firewalledActive(sess)
	if !active {
		if !w.o.Stay {
			w.lock.release()
		}
		return false
	}
	if force {
		w.forced(sess)
		return true
	}
	if w.m.heal(sess, "") {
		w.guard.record(time.Now())
	}
	w.m.settleFirewall(sess, true)
	return true
}

// forced re-applies every container's rules (firewalld reloaded).
func (w *watcher) forced(sess *session) {
	ids, err := w.m.reload(context.Background(), sess)
	if err != nil {
		w.m.log.Warn("re-applying the firewall rules failed", "error", err)
		return
	}
	w.m.log.Info("firewall rules re-applied", "containers", len(ids))
}

// firewalledActive reports whether a firewalled network has containers.
func firewalledActive(sess *session) bool {
	for _, n := range sess.activeNetworks() {
		if n.Firewalled() {
			return true
		}
	}
	return false
}

// hostFd is the descriptor of the host namespace (-1: this process's).
func (m *Manager) hostFd() int {
	if m.cfg.HostNS != nil {
		return m.cfg.HostNS.Fd()
	}
	return -1
}

// watchLock is the watcher's hold on its pid file.
type watchLock struct {
	f    *os.File
	path string
}

// lockWatcher takes the watcher's lock and writes this process's PID. A
// lock held for a moment only (a setup looking whether a watcher runs)
// is waited for, briefly.
func (m *Manager) lockWatcher() (*watchLock, error) {
	if err := os.MkdirAll(m.state.dir, 0o755); err != nil {
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	p := filepath.Join(m.state.dir, watchPidName)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", p, err)
	}
	for try := 0; ; try++ {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) || try == 5 {
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, ErrWatcherRunning
			}
			return nil, fmt.Errorf("lock %s: %w", p, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	err = f.Truncate(0)
	if err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("write %s: %w", p, err)
	}
	return &watchLock{f: f, path: p}, nil
}

// release empties the pid file and gives up the lock; once only.
func (l *watchLock) release() {
	if l.f == nil {
		return
	}
	_ = l.f.Truncate(0)
	l.f.Close()
	l.f = nil
}

// gone reports whether the pid file is no longer the one locked (the
// state directory was removed).
func (l *watchLock) gone() bool {
	if l.f == nil {
		return false
	}
	var have, now unix.Stat_t
	if unix.Fstat(int(l.f.Fd()), &have) != nil || unix.Stat(l.path, &now) != nil {
		return true
	}
	return have.Ino != now.Ino || have.Dev != now.Dev
}

// watcherRunning reports whether a process holds the watcher's lock at
// p: one open and one flock, which a setup can afford.
func watcherRunning(p string) bool {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	err = unix.Flock(fd, unix.LOCK_SH|unix.LOCK_NB)
	return errors.Is(err, unix.EWOULDBLOCK)
}

// WatcherPID returns the PID of the running firewall watcher of this
// state directory, or 0.
func (m *Manager) WatcherPID() int {
	p := filepath.Join(m.state.dir, watchPidName)
	if !watcherRunning(p) {
		return 0
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// WatchLogPath is where the log of a watcher a setup started goes.
func (m *Manager) WatchLogPath() string { return filepath.Join(m.state.dir, WatchLogName) }

// watches reports whether the driver has anything for a watcher to do.
func (m *Manager) watches() bool {
	_, heals := m.cfg.Firewall.(firewall.Healer)
	return heals || m.cfg.Firewall.Name() == firewall.DriverFirewalld
}

// ensureWatcher starts the firewall watcher unless one runs; a firewalled
// setup calls it at its end, under the state lock (so a watcher that
// finds nothing left to watch and gives up its lock does so before or
// after, never during). Failures are logged: the setup stands.
func (m *Manager) ensureWatcher() {
	if m.cfg.FirewallWatcher == "" || m.cfg.Rootless || !m.watches() {
		return
	}
	if watcherRunning(filepath.Join(m.state.dir, watchPidName)) {
		return
	}
	if err := m.startWatcher(); err != nil {
		m.log.Warn("cannot start the firewall watcher", "error", err)
	}
}

// startWatcher starts `EXE firewall-watch ...` in the host namespace, in
// a session of its own (a systemd scope of its own on a host run by
// systemd, so it outlives the caller's unit), its standard error on the
// log in the state directory.
func (m *Manager) startWatcher() error {
	logf, err := openWatchLog(m.WatchLogPath())
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := scoped(m.cfg.FirewallWatcher, []string{WatchCommand, "--config", m.cfg.ConfigDir,
		"--firewall-driver", m.cfg.Firewall.Name(), "--dns-port", strconv.Itoa(int(m.cfg.DNSPort))}, false)
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	start := func() error { return cmd.Start() }
	if m.cfg.HostNS != nil {
		err = m.cfg.HostNS.Do(start)
	} else {
		err = start()
	}
	if err != nil {
		return fmt.Errorf("start %s %s: %w", m.cfg.FirewallWatcher, WatchCommand, err)
	}
	m.log.Debug("started the firewall watcher", "pid", cmd.Process.Pid)
	go func() { _ = cmd.Wait() }() // reaped when it exits before this process
	return nil
}

// openWatchLog opens the watcher's log for appending; one grown past
// watchLogMax is moved to .1 first.
func openWatchLog(p string) (*os.File, error) {
	if st, err := os.Stat(p); err == nil && st.Size() > watchLogMax {
		_ = os.Rename(p, p+".1")
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open the firewall watcher's log: %w", err)
	}
	return f, nil
}

// scoped is the command bin args, on a host run by systemd run through
// `systemd-run -q --scope` (with --user when rootless): a process of its
// own scope outlives the unit of whoever started it.
func scoped(bin string, args []string, rootless bool) *exec.Cmd {
	if st, err := os.Stat("/run/systemd/system"); err == nil && st.IsDir() {
		if sr, err := exec.LookPath("systemd-run"); err == nil {
			pre := []string{"-q", "--scope"}
			if rootless {
				pre = append(pre, "--user")
			}
			return exec.Command(sr, append(append(pre, bin), args...)...)
		}
	}
	return exec.Command(bin, args...)
}

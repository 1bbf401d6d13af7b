package pasta

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/compat/slirp4netns"
	"github.com/berthnet/berth/internal/usernet"
)

// Env is what the front-end reads from its process.
type Env struct {
	Stdout, Stderr io.Writer
}

// Run executes pasta with args and returns the exit status. Unless told to
// stay in the foreground (-f, or a command to run), it starts the network
// in a background process of its own and returns once that one has the
// namespace configured and its forwards listening, as pasta forks once
// ready (Podman waits for this process to end).
func Run(ctx context.Context, args []string, env Env) int {
	if os.Getenv(daemonEnv) != "" {
		return runDaemon(ctx, args)
	}
	if os.Getenv(execEnv) != "" {
		return execCommand(args, env)
	}
	o, err := Parse(args)
	if err != nil {
		fmt.Fprintln(env.Stderr, err)
		var ue *UsageError
		if errors.As(err, &ue) && ue.ShowUsage {
			fmt.Fprint(env.Stderr, Usage)
		}
		return ExitUsage
	}
	switch {
	case o.Help:
		fmt.Fprint(env.Stdout, Usage)
		return 0
	case o.Version:
		fmt.Fprint(env.Stdout, VersionText())
		return 0
	}
	if o.PID == 0 && (len(o.Target) > 0 || o.NetNS == "") {
		return runCommand(ctx, o, env)
	}
	if o.Foreground {
		log := logger(o, env.Stderr)
		if err := serve(ctx, o, log, func(error) {}); err != nil {
			fmt.Fprintln(env.Stderr, err)
			return 1
		}
		return 0
	}
	return startDaemon(args, env)
}

// logger writes diagnostics as pasta's verbosity options ask: --debug and
// --trace everything, --quiet only errors, else warnings; to the log file
// when -l names one.
func logger(o *Options, stderr io.Writer) *slog.Logger {
	level := slog.LevelWarn
	switch {
	case o.Debug || o.Trace:
		level = slog.LevelDebug
	case o.Quiet:
		level = slog.LevelError
	}
	w := stderr
	if o.LogFile != "" {
		if f, err := os.OpenFile(o.LogFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600); err == nil {
			w = f
		}
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// netnsPath is the namespace pasta works on: --netns, or the PID's.
func netnsPath(o *Options) (string, error) {
	if o.NetNS != "" {
		return o.NetNS, nil
	}
	if o.PID > 0 {
		return "/proc/" + strconv.Itoa(o.PID) + "/ns/net", nil
	}
	return "", usagef("No target namespace: give --netns PATH, a PID or a command")
}

// serve configures the namespace, starts the stack and its forwards,
// writes the PID file, calls ready (nil) and serves until ctx ends or the
// namespace goes away. A failure before that is returned (and given to
// ready).
func serve(ctx context.Context, o *Options, log *slog.Logger, ready func(error)) error {
	st, gone, err := start(o, log)
	if err != nil {
		ready(err)
		return err
	}
	defer st.Close()
	if o.APISocket != "" {
		_ = os.Remove(o.APISocket)
		ln, err := net.Listen("unix", o.APISocket)
		if err != nil {
			err = fmt.Errorf("API socket %s: %w", o.APISocket, err)
			ready(err)
			return err
		}
		defer ln.Close()
		go slirp4netns.ServeAPI(ln, st, log)
	}
	if o.PIDFile != "" {
		if err := writePID(o.PIDFile); err != nil {
			ready(err)
			return err
		}
	}
	ready(nil)
	waitGone(ctx, o, gone, log)
	return nil
}

// start brings the network up in the target namespace.
func start(o *Options, log *slog.Logger) (*usernet.Stack, <-chan struct{}, error) {
	nsPath, err := netnsPath(o)
	if err != nil {
		return nil, nil, err
	}
	if _, err := os.Stat(nsPath); err != nil {
		//lint:ignore ST1005 pasta's own message, which Podman shows
		return nil, nil, fmt.Errorf("Couldn't open network namespace %s: %w", nsPath, unwrapPath(err))
	}
	cfg, err := plan(o)
	if err != nil {
		return nil, nil, err
	}
	cfg.Logger = log
	if isLocal(cfg.Pasta) {
		log.Warn("No external interface as template, switch to local mode")
	}
	cfg.GuestNetNS = nsPath
	fd, err := usernet.OpenTAPAt(nsPath, cfg.Pasta.IfName, o.ConfigNet, cfg, o.NSMAC)
	if err != nil {
		return nil, nil, err
	}
	ep, tapClosed, err := usernet.NewTAPEndpoint(fd, cfg)
	if err != nil {
		unix.Close(fd)
		return nil, nil, err
	}
	st, err := usernet.New(cfg, ep)
	if err != nil {
		return nil, nil, err
	}
	if err := addForwards(st, o); err != nil {
		st.Close()
		return nil, nil, err
	}
	log.Info("pasta: namespace configured", "netns", nsPath, "ifname", cfg.Pasta.IfName,
		"ipv4", cfg.Pasta.Addr4, "ipv6", cfg.Pasta.Addr6, "ignored", o.Ignored)
	return st, tapClosed, nil
}

// unwrapPath drops the path an *os.PathError repeats.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// writePID writes this process's PID, as pasta --pid does.
func writePID(path string) error {
	if err := os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		//lint:ignore ST1005 pasta's own message, which Podman shows
		return fmt.Errorf("Failed to write PID file %s: %w", path, unwrapPath(err))
	}
	return nil
}

// waitGone blocks until ctx ends, the TAP goes away, or the namespace
// does: its path no longer names the namespace it named at start (Podman
// unmounts and removes it), or the target process exits. pasta(1) quits
// then too, unless --no-netns-quit.
func waitGone(ctx context.Context, o *Options, tapClosed <-chan struct{}, log *slog.Logger) {
	nsPath, _ := netnsPath(o)
	var first unix.Stat_t
	_ = unix.Stat(nsPath, &first)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tapClosed:
			log.Info("pasta: the namespace's interface is gone")
			return
		case <-tick.C:
			if o.NoNetNSQuit {
				continue
			}
			var now unix.Stat_t
			if err := unix.Stat(nsPath, &now); err != nil || now.Ino != first.Ino || now.Dev != first.Dev {
				log.Info("pasta: the namespace is gone", "netns", nsPath)
				return
			}
		}
	}
}

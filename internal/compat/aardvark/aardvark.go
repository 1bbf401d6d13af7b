// Package aardvark is berth's aardvark-dns-compatible front-end: the command
// line netavark (and berth) use to start the DNS server
// (`aardvark-dns --config DIR -p PORT run`), the fork-and-report-ready start
// (the parent exits once the server listens, or fails with the reason), the
// pid file, SIGHUP reloads, confirmed reloads over the control socket, and
// exit when no network is left.
package aardvark

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/berthnet/berth/internal/aardvarkconf"
	"github.com/berthnet/berth/internal/buildinfo"
	"github.com/berthnet/berth/internal/dns"
	"github.com/berthnet/berth/internal/safefile"
)

// Env is what the front-end reads from its process.
type Env struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
}

const childEnv = "BERTH_AARDVARK_CHILD"

// ServeHostEnv turns answering the host itself on ("1", as aardvark-dns
// does) or off ("0", the default: the server is the containers'). Sources
// that are neither the host nor a container on the network listening there
// are always refused.
const ServeHostEnv = "BERTH_DNS_SERVE_HOST"

func serveHostSetting(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "true", "yes", "on":
		return true, nil
	case "", "0", "false", "no", "off":
		return false, nil
	}
	return false, fmt.Errorf("%s=%q: want 1 or 0", ServeHostEnv, v)
}

// Run executes the front-end and returns the exit code. It uses pflag
// alone (no cobra): this front-end is the long-running DNS server, kept small.
func Run(ctx context.Context, args []string, env Env) int {
	if env.Getenv == nil {
		env.Getenv = os.Getenv
	}
	fs := pflag.NewFlagSet("aardvark-dns", pflag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	config := fs.StringP("config", "c", "/run/containers/networks/aardvark-dns", "configuration directory (one file per network)")
	port := fs.Uint16P("port", "p", 5533, "port to listen on at each network's gateway addresses")
	filter := fs.StringP("filter-search-domain", "f", dns.DefaultFilterDomain, "search domain stripped from queries and never forwarded")
	foreground := fs.Bool("foreground", false, "run: do not fork (berth extension; logs to stderr)")
	version := fs.BoolP("version", "V", false, "print the version")
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "Usage: aardvark-dns [--config DIR] [--port N] [--filter-search-domain D] run|version\n\n"+
			"berth's name server for container networks (aardvark-dns compatible).\n"+
			"run starts the server; it forks, and the parent exits once the server is ready.\n\nFlags:\n%s", fs.FlagUsages())
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *version {
		fmt.Fprintf(env.Stdout, "aardvark-dns %s (berth)\n", buildinfo.Version)
		return 0
	}
	rest := fs.Args()
	if len(rest) != 1 {
		fs.Usage()
		return 2
	}
	switch rest[0] {
	case "version":
		fmt.Fprintf(env.Stdout, "aardvark-dns %s (berth)\n", buildinfo.Version)
		return 0
	case "help":
		fs.Usage()
		return 0
	case "run":
		serveHost, err := serveHostSetting(env.Getenv(ServeHostEnv))
		if err != nil {
			fmt.Fprintf(env.Stderr, "Error: %v\n", err)
			return 2
		}
		cfg := dns.Config{Dir: *config, Port: *port, FilterDomain: *filter, NoProxy: env.Getenv("AARDVARK_NO_PROXY") != "", ServeHost: serveHost,
			ResolvConf: env.Getenv(dns.ResolvConfEnv)}
		if *foreground || env.Getenv(childEnv) != "" {
			return serve(ctx, cfg, env)
		}
		if err := spawn(env); err != nil {
			fmt.Fprintf(env.Stderr, "Error: %v\n", err)
			return 1
		}
		return 0
	}
	fmt.Fprintf(env.Stderr, "Error: unknown command %q (want run or version)\n", rest[0])
	return 2
}

// spawn starts this program again as the daemon and waits until it reports
// that it listens (or why it could not).
func spawn(env Env) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer devnull.Close()
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Args[0] = os.Args[0]
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		r.Close()
		return fmt.Errorf("start server: %w", err)
	}
	w.Close()
	msg, _ := io.ReadAll(io.LimitReader(r, 4096))
	r.Close()
	_ = cmd.Process.Release()
	switch s := string(msg); {
	case s == "ready":
		return nil
	case s == "":
		return errors.New("server exited before it was ready")
	default:
		return errors.New(s)
	}
}

// serve runs the server in this process until SIGTERM/SIGINT, or until no
// network is left.
func serve(ctx context.Context, cfg dns.Config, env Env) int {
	var ready *os.File
	if env.Getenv(childEnv) != "" {
		ready = os.NewFile(3, "ready")
	}
	report := func(msg string) {
		if ready != nil {
			_, _ = ready.WriteString(msg)
			ready.Close()
			ready = nil
		}
	}
	// A long-running server with a small working set: collect garbage
	// before the heap grows past a few megabytes.
	debug.SetMemoryLimit(8 << 20)
	logger := slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: level(env.Getenv("RUST_LOG"))}))
	cfg.Logger = logger
	srv, err := dns.New(cfg)
	if err != nil {
		report(err.Error())
		fmt.Fprintln(env.Stderr, err)
		return 1
	}
	defer srv.Close()
	dir := aardvarkconf.Dir{Path: cfg.Dir}
	hup := make(chan os.Signal, 4)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	n, err := srv.Reload()
	if err != nil {
		report(err.Error())
		fmt.Fprintln(env.Stderr, err)
		return 1
	}
	// The control socket exists before the pid file names this process,
	// so whoever finds the pid file can ask for confirmed reloads.
	reqs := make(chan chan error)
	done := make(chan struct{})
	defer close(done)
	if ln, err := dir.ListenControl(); err != nil {
		logger.Warn("no control socket; reloading on SIGHUP only", "error", err)
	} else {
		defer ln.Close()
		go acceptControl(ln, reqs, done)
	}
	if err := dir.WritePid(os.Getpid()); err != nil {
		report(fmt.Sprintf("write pid file: %v", err))
		return 1
	}
	defer removeOwnPidFile(dir.PidFile())
	report("ready")
	if n == 0 {
		logger.Info("no networks configured; exiting")
		return 0
	}
	for {
		select {
		case <-ctx.Done():
			return 0
		case <-hup:
			if exit, _ := reload(srv, dir, logger); exit {
				return 0
			}
		case w := <-reqs:
			// Every request queued so far arrived before this reload
			// begins, so one reload answers them all.
			waiters := []chan error{w}
		drain:
			for {
				select {
				case w := <-reqs:
					waiters = append(waiters, w)
				default:
					break drain
				}
			}
			exit, err := reload(srv, dir, logger)
			for _, w := range waiters {
				w <- err
			}
			if exit {
				return 0
			}
		}
	}
}

// reload re-reads the configuration and reports whether the server should
// exit because no network is left.
func reload(srv *dns.Server, dir aardvarkconf.Dir, logger *slog.Logger) (exit bool, err error) {
	n, err := srv.Reload()
	if err != nil {
		logger.Error("reload", "error", err)
		return false, err
	}
	if n > 0 {
		return false, nil
	}
	// Remove the pid file first, then look once more: a setup that
	// signalled us before the removal has already written its file; one
	// that comes after starts a new server.
	removeOwnPidFile(dir.PidFile())
	if n, _ = srv.Reload(); n == 0 {
		logger.Info("no networks left; exiting")
		return true, nil
	}
	if err := dir.WritePid(os.Getpid()); err != nil {
		logger.Error("rewrite pid file", "error", err)
	}
	return false, nil
}

// acceptControl serves the control socket: each request is handed to the
// main loop on reqs, and answered once the main loop has reloaded.
func acceptControl(ln net.Listener, reqs chan<- chan error, done <-chan struct{}) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		go aardvarkconf.ServeControl(c, func() error {
			w := make(chan error, 1)
			select {
			case reqs <- w:
			case <-done:
				return errors.New("server is exiting")
			}
			select {
			case err := <-w:
				return err
			case <-done:
				select {
				case err := <-w: // answered just before exiting
					return err
				default:
					return errors.New("server is exiting")
				}
			}
		})
	}
}

// removeOwnPidFile removes the pid file if it still names this process.
func removeOwnPidFile(p string) {
	b, err := safefile.Read(p, 64)
	if err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(os.Getpid()) {
		os.Remove(p)
	}
}

func level(rustLog string) slog.Level {
	if i := strings.LastIndex(rustLog, "="); i >= 0 {
		rustLog = rustLog[i+1:]
	}
	switch strings.ToLower(rustLog) {
	case "trace", "debug":
		return slog.LevelDebug
	case "info":
		return slog.LevelInfo
	case "error":
		return slog.LevelError
	}
	return slog.LevelWarn
}

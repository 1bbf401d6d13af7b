package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthnet/berth/internal/dockerapi"
	"github.com/berthnet/berth/internal/sdactivation"
)

// serviceCmd is `berth system service`: the Docker Engine API on a
// socket, as `podman system service` serves it.
func serviceCmd(env Env, g *globals) *cobra.Command {
	var idle uint
	c := &cobra.Command{
		Use:   "service [options] [URI]",
		Short: "Serve the Docker Engine API",
		Long: `Serve the Docker Engine API (versions ` + dockerapi.MinVersion + ` to ` + dockerapi.MaxVersion + `) so that
Docker clients drive berth: DOCKER_HOST=unix:///run/berth/docker.sock docker network ls.

URI is unix:///PATH (default /run/berth/docker.sock, rootless
$XDG_RUNTIME_DIR/berth/docker.sock) or tcp://HOST:PORT (no TLS and no
authentication: anyone who reaches it controls berth). Under systemd
socket activation the passed socket is used instead. The service exits
after --time seconds without a connection (0: never).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			w, err := openWorld(env, g)
			if err != nil {
				return err
			}
			uri := ""
			if len(args) == 1 {
				uri = args[0]
			}
			ln, cleanup, err := serviceListener(env, uri)
			if err != nil {
				return err
			}
			defer cleanup()
			return serveAPI(cmd.Context(), w, ln, time.Duration(idle)*time.Second)
		},
	}
	c.Flags().UintVarP(&idle, "time", "t", 5, "seconds without a connection before the service exits (0: never)")
	return c
}

// defaultServiceSocket is where the API listens without a URI.
func defaultServiceSocket(env Env) string {
	if env.Rootless {
		return filepath.Join(rootlessRuntimeDir(env.getenv, env.UID), "berth", "docker.sock")
	}
	return "/run/berth/docker.sock"
}

// serviceListener opens the socket the API is served on; cleanup removes
// a unix socket file the service created.
func serviceListener(env Env, uri string) (net.Listener, func(), error) {
	nop := func() {}
	if ln, err := sdactivation.Listener(env.getenv); ln != nil || err != nil {
		return ln, nop, err
	}
	if uri == "" {
		uri = "unix://" + defaultServiceSocket(env)
	}
	u, err := url.Parse(uri)
	if err != nil {
		return nil, nop, fmt.Errorf("URI %q: %w", uri, err)
	}
	switch u.Scheme {
	case "tcp":
		ln, err := net.Listen("tcp", u.Host)
		return ln, nop, err
	case "unix":
	default:
		return nil, nop, fmt.Errorf("URI %q: want unix:///PATH or tcp://HOST:PORT", uri)
	}
	path := u.Path
	if path == "" {
		return nil, nop, fmt.Errorf("URI %q: no socket path", uri)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, nop, err
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, nop, err
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, nop, err
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, nop, err
	}
	return ln, func() { os.Remove(path) }, nil
}

// removeStaleSocket removes a socket file nothing listens on; a live one
// is an error (another service is running).
func removeStaleSocket(path string) error {
	st, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("%s exists and is not a socket", path)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("%s: another service is listening on it", path)
	}
	return os.Remove(path)
}

// serveAPI serves until a signal, the context's end, or idle without a
// connection (0: never).
func serveAPI(ctx context.Context, w *world, ln net.Listener, idle time.Duration) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if p := os.Getenv("BERTH_CPUPROFILE"); p != "" { // profiling the service (bench)
		if f, err := os.Create(p); err == nil {
			defer f.Close() // after the profile is written
			if pprof.StartCPUProfile(f) == nil {
				defer pprof.StopCPUProfile()
			}
		}
	}
	tr := &idleTracker{idle: idle, done: make(chan struct{})}
	srv := &http.Server{
		Handler:           dockerapi.New(dockerBackend{w: w}, w.log),
		ReadHeaderTimeout: 30 * time.Second,
		ConnState:         tr.connState,
	}
	tr.arm()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	case <-tr.done:
		w.log.Info("no connection, exiting", "after", idle)
	}
	shut, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shut); err != nil {
		return srv.Close()
	}
	return nil
}

// idleTracker closes done after idle passes with no open connection.
type idleTracker struct {
	mu    sync.Mutex
	idle  time.Duration
	open  int
	timer *time.Timer
	done  chan struct{}
	once  sync.Once
}

func (t *idleTracker) arm() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.idle <= 0 {
		return
	}
	if t.timer == nil {
		t.timer = time.AfterFunc(t.idle, func() { t.once.Do(func() { close(t.done) }) })
		return
	}
	t.timer.Reset(t.idle)
}

func (t *idleTracker) connState(_ net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew:
		t.mu.Lock()
		t.open++
		if t.timer != nil {
			t.timer.Stop()
		}
		t.mu.Unlock()
	case http.StateHijacked, http.StateClosed:
		t.mu.Lock()
		t.open--
		last := t.open == 0
		t.mu.Unlock()
		if last {
			t.arm()
		}
	}
}

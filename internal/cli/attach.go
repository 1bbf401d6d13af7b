package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/berthnet/berth/internal/engine"
	"github.com/berthnet/berth/internal/monitor"
)

func attachCmd(env Env, g *globals) *cobra.Command {
	var noStdin, sigProxy bool
	var keys string
	c := &cobra.Command{
		Use:   "attach [options] CONTAINER",
		Short: "Attach to a running container",
		Long: "Print a running container's output as it comes (through its monitor's attach socket)\n" +
			"and send it this input, unless --no-stdin. The detach keys (default ctrl-p,ctrl-q)\n" +
			"leave it running; otherwise berth exits with the container's exit code.",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("%q requires a name, id, or the \"--latest\" flag", cmd.CommandPath())
			}
			seq, err := parseDetachKeys(keys)
			if err != nil {
				return err
			}
			_, e, err := openEngine(env, g)
			if err != nil {
				return err
			}
			c, err := e.Get(args[0])
			if err != nil {
				return notFound(err, 125)
			}
			if !c.Running() {
				return fmt.Errorf("you can only attach to running containers: %w", engine.ErrRunning)
			}
			conn, err := monitor.DialUnix(e.AttachSocket(c.Config.ID))
			if err != nil {
				return fmt.Errorf("attach to %s: %w", c.Config.Name, err)
			}
			stdin := !noStdin && c.Config.Stdin
			if sigProxy {
				defer proxySignals(e, c.Config.ID)()
			}
			if f, ok := env.Stdin.(*os.File); ok && stdin && c.Config.Terminal && term.IsTerminal(int(f.Fd())) {
				if st, err := term.MakeRaw(int(f.Fd())); err == nil {
					defer func() { _ = term.Restore(int(f.Fd()), st) }()
				}
			}
			return attachTo(e, c.Config.ID, conn, env, stdin, seq)
		},
	}
	c.Flags().BoolVar(&noStdin, "no-stdin", false, "do not attach stdin")
	c.Flags().StringVar(&keys, "detach-keys", "ctrl-p,ctrl-q", "key sequence that detaches: a character [a-Z] or comma-separated ctrl-<value>; empty: none")
	c.Flags().BoolVar(&sigProxy, "sig-proxy", true, "proxy received signals to the container's process")
	return c
}

// proxySignals sends the signals berth receives to the container until
// the returned function is called.
func proxySignals(e *engine.Engine, id string) func() {
	sigs := make(chan os.Signal, 8)
	done := make(chan struct{})
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
	go func() {
		for {
			select {
			case s := <-sigs:
				if sig, ok := s.(syscall.Signal); ok {
					_, _ = e.Kill(id, strconv.Itoa(int(sig)))
				}
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(sigs); close(done) }
}

// attachTo copies the container's output from conn (and stdin to it)
// until the container exits, returning its exit code as an exitError, or
// until the detach keys were typed.
func attachTo(e *engine.Engine, id string, conn net.Conn, env Env, stdin bool, seq []byte) error {
	defer conn.Close()
	var detached atomic.Bool
	if stdin {
		dr := &detachReader{r: env.Stdin, seq: seq, onDetach: func() {
			detached.Store(true)
			conn.Close()
		}}
		go func() {
			_, _ = io.Copy(conn, dr)
			if uc, ok := conn.(*net.UnixConn); ok && !detached.Load() {
				_ = uc.CloseWrite()
			}
		}()
	}
	for {
		stream, data, err := monitor.ReadFrame(conn)
		if err != nil {
			break
		}
		switch stream {
		case monitor.StreamStdout:
			_, _ = env.Stdout.Write(data)
		case monitor.StreamStderr:
			_, _ = env.Stderr.Write(data)
		case monitor.StreamExit:
			var code int
			if _, err := fmt.Sscan(string(data), &code); err == nil {
				return exitCodeError(code)
			}
		}
	}
	if detached.Load() {
		return nil
	}
	c, err := e.Wait(id)
	if err != nil {
		if errors.Is(err, engine.ErrNoSuchContainer) {
			return nil
		}
		return err
	}
	return exitCodeError(c.State.ExitCode)
}

func exitCodeError(code int) error {
	if code != 0 {
		return &exitError{code: code}
	}
	return nil
}

// parseDetachKeys parses Podman's --detach-keys: one character or a
// comma-separated list of keys, each a character or ctrl-<value> with
// value one of a-z, @, [, \, ], ^ and _. An empty list disables detach.
func parseDetachKeys(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	var out []byte
	for _, k := range strings.Split(s, ",") {
		switch {
		case len(k) == 1:
			out = append(out, k[0])
		case strings.HasPrefix(k, "ctrl-") && len(k) == 6:
			c := k[5]
			switch {
			case c >= 'a' && c <= 'z':
				out = append(out, c-'a'+1)
			case strings.IndexByte("@[\\]^_", c) >= 0:
				out = append(out, c-'@')
			default:
				return nil, fmt.Errorf("invalid detach keys: %s", s)
			}
		default:
			return nil, fmt.Errorf("invalid detach keys: %s", s)
		}
	}
	return out, nil
}

// detachReader passes input through until the detach sequence has been
// read; then it calls onDetach and ends. The bytes of a partial
// sequence are held back until it is clear they are not one.
type detachReader struct {
	r        io.Reader
	seq      []byte
	matched  int
	pending  []byte
	onDetach func()
	done     bool
	err      error
}

var errDetached = errors.New("detached")

func (d *detachReader) Read(p []byte) (int, error) {
	for len(d.pending) == 0 {
		if d.done {
			if d.onDetach != nil {
				d.onDetach()
				d.onDetach = nil
			}
			return 0, errDetached
		}
		if d.err != nil {
			return 0, d.err
		}
		buf := make([]byte, len(p))
		n, err := d.r.Read(buf)
		d.err = err
		d.pending = d.scan(buf[:n])
	}
	n := copy(p, d.pending)
	d.pending = d.pending[n:]
	return n, nil
}

// scan returns the input of b to pass on, holding back what may be the
// start of the detach sequence.
func (d *detachReader) scan(b []byte) []byte {
	var out bytes.Buffer
	for _, c := range b {
		switch {
		case len(d.seq) == 0:
			out.WriteByte(c)
		case c == d.seq[d.matched]:
			d.matched++
			if d.matched == len(d.seq) {
				d.done = true
				return out.Bytes()
			}
		default:
			out.Write(d.seq[:d.matched])
			d.matched = 0
			if c == d.seq[0] {
				d.matched = 1
			} else {
				out.WriteByte(c)
			}
		}
	}
	return out.Bytes()
}

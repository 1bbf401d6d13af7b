package dockerapi

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berthnet/berth/internal/monitor"
)

// attachments hands the monitor's attach connection of a container that
// is started after a client attached (`docker run` attaches, then
// starts) from the start handler to the waiting attach handler, and
// keeps the exit codes attach streams saw, for `wait` of a container
// that was removed at its exit (--rm).
type attachments struct {
	mu      sync.Mutex
	pending map[string][]chan net.Conn
	exits   map[string]int
}

func (a *attachments) add(id string) chan net.Conn {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.pending == nil {
		a.pending = map[string][]chan net.Conn{}
	}
	ch := make(chan net.Conn, 1)
	a.pending[id] = append(a.pending[id], ch)
	return ch
}

func (a *attachments) drop(id string, ch chan net.Conn) {
	a.mu.Lock()
	defer a.mu.Unlock()
	list := a.pending[id]
	for i, c := range list {
		if c == ch {
			a.pending[id] = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(a.pending[id]) == 0 {
		delete(a.pending, id)
	}
}

// take removes and returns the first waiting attach of id.
func (a *attachments) take(id string) chan net.Conn {
	a.mu.Lock()
	defer a.mu.Unlock()
	list := a.pending[id]
	if len(list) == 0 {
		return nil
	}
	a.pending[id] = list[1:]
	if len(a.pending[id]) == 0 {
		delete(a.pending, id)
	}
	return list[0]
}

func (a *attachments) exited(id string, code int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.exits == nil {
		a.exits = map[string]int{}
	}
	if len(a.exits) > 1000 {
		a.exits = map[string]int{}
	}
	a.exits[id] = code
}

func (a *attachments) exitCode(id string) (int, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c, ok := a.exits[id]
	return c, ok
}

// containerAttach hijacks the connection (HTTP 101 when the client asked
// to upgrade) and relays the container's output to it in Docker's frames
// (raw with a terminal), and its input to the container with stdin=1.
func (s *Server) containerAttach(w http.ResponseWriter, r *http.Request) error {
	if boolQuery(r, "logs") {
		return fmt.Errorf("attach with logs=1 is not supported by berth (use the logs endpoint): %w", ErrNotImplemented)
	}
	e, c, err := s.target(r)
	if err != nil {
		return err
	}
	id := c.Config.ID
	var mon net.Conn
	var wait chan net.Conn
	if c.Running() {
		if mon, err = monitor.DialUnix(e.AttachSocket(id)); err != nil {
			return fmt.Errorf("attach to %s: %w", c.Config.Name, err)
		}
	} else {
		wait = s.attach.add(id)
		defer s.attach.drop(id, wait)
	}
	conn, buf, err := hijack(w, r, c.Config.Terminal)
	if err != nil {
		return err
	}
	defer conn.Close()
	input, gone := clientInput(buf.Reader)
	if mon == nil {
		s.log.Debug("attach: waiting for the start", "id", id)
		if mon = s.awaitStart(wait, gone); mon == nil {
			s.log.Debug("attach: no start", "id", id)
			return nil
		}
	}
	defer mon.Close()
	q := r.URL.Query()
	s.pumpAttach(id, conn, input, mon, attachStreams{
		stdin: boolQuery(r, "stdin"), stdout: q.Get("stdout") == "" || boolQuery(r, "stdout"),
		stderr: q.Get("stderr") == "" || boolQuery(r, "stderr"), raw: c.Config.Terminal,
	})
	return nil
}

// hijack takes the connection over for a stream: 101 UPGRADED when the
// client asked to upgrade (Docker's CLI does), else 200; raw streams are
// a terminal's bytes, the others Docker's multiplexed frames.
func hijack(w http.ResponseWriter, r *http.Request, raw bool) (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return nil, nil, fmt.Errorf("connection cannot be hijacked")
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	ctype := "application/vnd.docker.multiplexed-stream"
	if raw {
		ctype = "application/vnd.docker.raw-stream"
	}
	if strings.EqualFold(r.Header.Get("Upgrade"), "tcp") {
		fmt.Fprintf(buf, "HTTP/1.1 101 UPGRADED\r\nContent-Type: %s\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n", ctype)
	} else {
		fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n\r\n", ctype)
	}
	if err := buf.Flush(); err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, buf, nil
}

// awaitStart waits for the start handler's monitor connection, for the
// client to go away (a read error other than end of input) or an hour.
// (The request's context ends with the hijack: it is no signal here.)
func (s *Server) awaitStart(wait chan net.Conn, gone <-chan struct{}) net.Conn {
	select {
	case m := <-wait:
		return m
	case <-gone:
	case <-time.After(time.Hour):
	}
	return nil
}

// clientInput reads the client's side from the start, so a hang-up is
// noticed while the attach waits for the start; its bytes are kept for
// the container's stdin.
func clientInput(in io.Reader) (io.Reader, <-chan struct{}) {
	pr, pw := io.Pipe()
	gone := make(chan struct{})
	go func() {
		_, err := io.Copy(pw, in)
		pw.CloseWithError(err)
		if err != nil {
			close(gone)
		}
	}()
	return pr, gone
}

type attachStreams struct{ stdin, stdout, stderr, raw bool }

func (s *Server) pumpAttach(id string, client net.Conn, in io.Reader, mon net.Conn, st attachStreams) {
	if st.stdin {
		go func() {
			_, _ = io.Copy(mon, in)
			if uc, ok := mon.(*net.UnixConn); ok {
				_ = uc.CloseWrite()
			}
		}()
	}
	for {
		stream, data, err := monitor.ReadFrame(mon)
		if err != nil {
			s.log.Debug("attach: monitor connection ended", "id", id, "err", err)
			return
		}
		s.log.Debug("attach: frame", "id", id, "stream", stream, "len", len(data))
		switch stream {
		case monitor.StreamStdout, monitor.StreamStderr:
			name := "stdout"
			if stream == monitor.StreamStderr {
				name = "stderr"
			}
			if (name == "stdout" && !st.stdout) || (name == "stderr" && !st.stderr) {
				continue
			}
			if err := writeFrame(client, st.raw, name, string(data)); err != nil {
				return
			}
		case monitor.StreamExit:
			if code, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
				s.attach.exited(id, code)
			}
			if tc, ok := client.(interface{ CloseWrite() error }); ok {
				_ = tc.CloseWrite()
			}
			return
		}
	}
}

// startAttachHook is the engine's start hook for a container a client
// attached to before its start: it connects to the monitor and hands
// the connection over.
func (s *Server) startAttachHook(e ContainerEngine, id string) func() error {
	ch := s.attach.take(id)
	if ch == nil {
		return nil
	}
	return func() error {
		s.log.Debug("attach: start connects the waiting client", "id", id)
		m, err := monitor.DialUnix(e.AttachSocket(id))
		if err != nil {
			return err
		}
		ch <- m
		return nil
	}
}

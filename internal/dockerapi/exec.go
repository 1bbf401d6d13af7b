package dockerapi

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/moby/moby/api/types/container"

	"github.com/berthnet/berth/internal/engine"
	"github.com/berthnet/berth/internal/runspec"
	"github.com/berthnet/berth/internal/safefile"
)

// execSession is one exec instance: created by POST /containers/{id}/exec,
// run by POST /exec/{id}/start, inspected by GET /exec/{id}/json.
type execSession struct {
	id, container string
	req           container.ExecCreateRequest
	proc          runspec.Process
	// term is the session's terminal (with Tty), resized by
	// POST /exec/{id}/resize.
	term engine.Terminal

	mu       sync.Mutex
	started  bool
	running  bool
	exitCode *int
}

type execSessions struct {
	mu sync.Mutex
	m  map[string]*execSession
}

func (x *execSessions) add(s *execSession) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.m == nil {
		x.m = map[string]*execSession{}
	}
	// Finished sessions beyond a few hundred are forgotten.
	if len(x.m) > 500 {
		for id, o := range x.m {
			o.mu.Lock()
			done := o.exitCode != nil
			o.mu.Unlock()
			if done {
				delete(x.m, id)
			}
		}
	}
	x.m[s.id] = s
}

func (x *execSessions) get(id string) (*execSession, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if s, ok := x.m[id]; ok {
		return s, nil
	}
	//lint:ignore ST1005 Docker's own message, which clients show and match
	return nil, fmt.Errorf("No such exec instance: %s: %w", id, ErrNotFound)
}

func (s *Server) execRoutes() {
	s.handle("POST /containers/{id}/exec", s.execCreate)
	s.handle("POST /exec/{id}/start", s.execStart)
	s.handle("GET /exec/{id}/json", s.execInspect)
	s.handle("POST /exec/{id}/resize", s.execResize)
	s.handle("POST /containers/{id}/resize", s.containerResize)
}

// containerResize sets the size of a running container's terminal (h
// rows, w columns), as docker run -it and docker attach send it; a
// container without a terminal ignores it.
func (s *Server) containerResize(w http.ResponseWriter, r *http.Request) error {
	rows, cols, err := termSize(r)
	if err != nil {
		return err
	}
	e, c, err := s.target(r)
	if err != nil {
		return err
	}
	if !c.Running() {
		//lint:ignore ST1005 Docker's own message, which clients show and match
		return fmt.Errorf("Container %s is not running: %w", c.Config.ID, ErrConflict)
	}
	if err := e.ResizeTerminal(c.Config.ID, rows, cols); err != nil {
		return classify(err, r.PathValue("id"))
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) execCreate(w http.ResponseWriter, r *http.Request) error {
	var req container.ExecCreateRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	if len(req.Cmd) == 0 {
		//lint:ignore ST1005 Docker's own message, which clients show and match
		return fmt.Errorf("No exec command specified: %w", ErrInvalid)
	}
	if req.Privileged {
		return fmt.Errorf("privileged exec sessions are not supported by berth: %w", ErrNotImplemented)
	}
	if req.WorkingDir != "" && !strings.HasPrefix(req.WorkingDir, "/") {
		return fmt.Errorf("WorkingDir %q: must be an absolute path: %w", req.WorkingDir, ErrInvalid)
	}
	_, c, err := s.target(r)
	if err != nil {
		return err
	}
	if !c.Running() {
		//lint:ignore ST1005 Docker's own message, which clients show and match
		return fmt.Errorf("Container %s is not running: %w", c.Config.ID, ErrConflict)
	}
	p := runspec.Process{Args: req.Cmd, Env: req.Env, Cwd: req.WorkingDir, Terminal: req.Tty}
	if req.User != "" {
		passwd, _ := safefile.ReadInRoot(c.State.Mounted, "etc/passwd", safefile.DefaultLimit)
		group, _ := safefile.ReadInRoot(c.State.Mounted, "etc/group", safefile.DefaultLimit)
		if p.UID, p.GID, err = runspec.ResolveUser(req.User, passwd, group); err != nil {
			//lint:ignore ST1005 Docker's own message, which clients show and match
			return fmt.Errorf("User %q: %v: %w", req.User, err, ErrInvalid)
		}
	}
	var b [32]byte
	_, _ = rand.Read(b[:])
	sess := &execSession{id: hex.EncodeToString(b[:]), container: c.Config.ID, req: req, proc: p}
	sess.consoleSize(req.ConsoleSize)
	s.execs.add(sess)
	writeJSON(w, http.StatusCreated, container.ExecCreateResponse{ID: sess.id})
	return nil
}

func (s *Server) execStart(w http.ResponseWriter, r *http.Request) error {
	sess, err := s.execs.get(r.PathValue("id"))
	if err != nil {
		return err
	}
	var req container.ExecStartRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	sess.mu.Lock()
	if sess.started {
		sess.mu.Unlock()
		//lint:ignore ST1005 Docker's own message, which clients show and match
		return fmt.Errorf("Error: Exec command %s has already run: %w", sess.id, ErrConflict)
	}
	sess.started, sess.running = true, true
	sess.mu.Unlock()
	sess.consoleSize(req.ConsoleSize)
	e, err := s.engine()
	if err != nil {
		return err
	}
	finish := func(code int) {
		sess.mu.Lock()
		sess.running, sess.exitCode = false, &code
		sess.mu.Unlock()
	}
	if req.Detach {
		code, err := e.Exec(sess.container, sess.proc, true, nil, io.Discard, io.Discard)
		if err != nil {
			finish(code)
			return classify(err, sess.container)
		}
		// runc exec --detach returns once the process runs; its exit code
		// is not known to berth afterwards.
		w.WriteHeader(http.StatusOK)
		return nil
	}
	conn, buf, err := hijack(w, r, sess.req.Tty)
	if err != nil {
		return err
	}
	defer conn.Close()
	var stdin io.Reader
	if sess.req.AttachStdin {
		pr, err := stdinPipe(buf.Reader)
		if err != nil {
			_ = writeFrame(conn, sess.req.Tty, "stderr", err.Error()+"\n")
			finish(126)
			return nil
		}
		defer pr.Close()
		stdin = pr
	}
	fr := &frames{w: conn, raw: sess.req.Tty}
	var so, se io.Writer = fr.writer("stdout"), fr.writer("stderr")
	if !sess.req.AttachStdout {
		so = io.Discard
	}
	if !sess.req.AttachStderr {
		se = io.Discard
	}
	code, err := e.ExecWith(sess.container, sess.proc, engine.ExecIO{Stdin: stdin, Stdout: so, Stderr: se, Terminal: &sess.term})
	if err != nil && code == 0 {
		code = 126
	}
	if err != nil {
		_ = writeFrame(conn, sess.req.Tty, "stderr", err.Error()+"\n")
	}
	finish(code)
	if tc, ok := conn.(interface{ CloseWrite() error }); ok {
		_ = tc.CloseWrite()
	}
	return nil
}

// consoleSize applies the initial size [height, width] newer clients send
// with the create and the start.
func (sess *execSession) consoleSize(size *[2]uint) {
	if size == nil || !sess.req.Tty || size[0] > 0xffff || size[1] > 0xffff {
		return
	}
	_ = sess.term.Resize(uint16(size[0]), uint16(size[1]))
}

// frames writes Docker stream frames (or raw output) of two streams to
// one connection, a whole frame at a time.
type frames struct {
	mu  sync.Mutex
	w   io.Writer
	raw bool
}

func (f *frames) writer(stream string) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if err := writeFrame(f.w, f.raw, stream, string(p)); err != nil {
			return 0, err
		}
		return len(p), nil
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func (s *Server) execInspect(w http.ResponseWriter, r *http.Request) error {
	sess, err := s.execs.get(r.PathValue("id"))
	if err != nil {
		return err
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	resp := container.ExecInspectResponse{
		ID: sess.id, Running: sess.running, ExitCode: sess.exitCode, ContainerID: sess.container,
		OpenStdin: sess.req.AttachStdin, OpenStdout: sess.req.AttachStdout, OpenStderr: sess.req.AttachStderr,
		ProcessConfig: &container.ExecProcessConfig{Tty: sess.req.Tty, Entrypoint: sess.req.Cmd[0], Arguments: sess.req.Cmd[1:], User: sess.req.User},
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// execResize sets the size of an exec session's terminal (h rows, w
// columns), also before its start, as the docker CLI sends it; a session
// without a terminal ignores it, as Docker does.
func (s *Server) execResize(w http.ResponseWriter, r *http.Request) error {
	sess, err := s.execs.get(r.PathValue("id"))
	if err != nil {
		return err
	}
	rows, cols, err := termSize(r)
	if err != nil {
		return err
	}
	if sess.req.Tty {
		if err := sess.term.Resize(rows, cols); err != nil {
			return err
		}
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// termSize reads the h and w of a resize request.
func termSize(r *http.Request) (rows, cols uint16, err error) {
	q := r.URL.Query()
	h, herr := strconv.ParseUint(q.Get("h"), 10, 16)
	wd, werr := strconv.ParseUint(q.Get("w"), 10, 16)
	if herr != nil || werr != nil {
		return 0, 0, fmt.Errorf("resize: h and w must be numbers from 0 to 65535 (got h=%q w=%q): %w", q.Get("h"), q.Get("w"), ErrInvalid)
	}
	return uint16(h), uint16(wd), nil
}

// stdinPipe feeds a client's stdin to the process through a pipe, so
// the exec ends when the process does, as in Docker, even while the
// client keeps its side open (docker-compose's exec does): a reader that
// is not a file would keep the process's wait on its copy. The copy
// ends when the connection closes.
func stdinPipe(from io.Reader) (*os.File, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("stdin pipe: %w", err)
	}
	go func() {
		_, _ = io.Copy(pw, from)
		_ = pw.Close()
	}()
	return pr, nil
}

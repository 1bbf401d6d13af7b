package dockerapi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/berthnet/berth/internal/ctrlog"
	"github.com/berthnet/berth/internal/engine"
	"github.com/berthnet/berth/internal/image"
)

func (s *Server) containerRoutes() {
	s.handle("POST /containers/create", s.containerCreate)
	s.handle("GET /containers/json", s.containerList)
	s.handle("GET /containers/{id}/json", s.containerInspect)
	s.handle("POST /containers/{id}/start", s.containerStart)
	s.handle("POST /containers/{id}/stop", s.containerStop)
	s.handle("POST /containers/{id}/restart", s.containerRestart)
	s.handle("POST /containers/{id}/kill", s.containerKill)
	s.handle("POST /containers/{id}/wait", s.containerWait)
	s.handle("POST /containers/{id}/pause", s.containerPause)
	s.handle("POST /containers/{id}/unpause", s.containerUnpause)
	s.handle("POST /containers/{id}/rename", s.containerRename)
	s.handle("DELETE /containers/{id}", s.containerRemove)
	s.handle("GET /containers/{id}/logs", s.containerLogs)
	s.handle("POST /containers/{id}/attach", s.containerAttach)
}

// classify sorts the engine's errors into Docker's status classes, with
// Docker's words where clients match on them.
func classify(err error, ref string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, engine.ErrNoSuchContainer):
		//lint:ignore ST1005 Docker's own message, which clients show and match
		return fmt.Errorf("No such container: %s: %w", ref, ErrNotFound)
	case errors.Is(err, image.ErrNotFound):
		//lint:ignore ST1005 Docker's own message, which clients show and match
		return fmt.Errorf("No such image: %s: %w", ref, ErrNotFound)
	case errors.Is(err, engine.ErrNameInUse):
		return fmt.Errorf("%v: %w", err, ErrConflict)
	case errors.Is(err, engine.ErrRunning):
		return fmt.Errorf("%v: %w", err, ErrConflict)
	case errors.Is(err, engine.ErrInvalidArg):
		return fmt.Errorf("%v: %w", err, ErrInvalid)
	}
	return err
}

func (s *Server) engine() (ContainerEngine, error) {
	e, err := s.b.Engine()
	if err != nil {
		return nil, fmt.Errorf("open the engine: %w", err)
	}
	return e, nil
}

func (s *Server) containerCreate(w http.ResponseWriter, r *http.Request) error {
	var req container.CreateRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	o, err := CreateFromDocker(r.URL.Query().Get("name"), req.Config, req.HostConfig, req.NetworkingConfig)
	if err != nil {
		return err
	}
	e, err := s.engine()
	if err != nil {
		return err
	}
	c, warnings, err := e.Create(o)
	if err != nil {
		ref := o.Name
		if errors.Is(err, image.ErrNotFound) {
			ref = o.Image
		}
		return classify(err, ref)
	}
	if warnings == nil {
		warnings = []string{}
	}
	writeJSON(w, http.StatusCreated, container.CreateResponse{ID: c.Config.ID, Warnings: warnings})
	return nil
}

var containerListFilters = []string{"id", "name", "label", "status", "exited", "network", "ancestor", "health", "volume", "before", "since"}

func (s *Server) containerList(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	fs, err := ParseFilters(q.Get("filters"), containerListFilters...)
	if err != nil {
		return err
	}
	e, err := s.engine()
	if err != nil {
		return err
	}
	all, err := e.List()
	if err != nil {
		return err
	}
	now := time.Now()
	out := []container.Summary{}
	// Newest first, as Docker lists them.
	for i := len(all) - 1; i >= 0; i-- {
		c := all[i]
		if c.Config.Infra || c.Config.Registered {
			continue
		}
		if !boolQuery(r, "all") && len(fs["status"]) == 0 && !c.Running() {
			continue
		}
		sum := ContainerSummary(c, now)
		if !containerMatches(c, sum, fs) {
			continue
		}
		out = append(out, sum)
	}
	if n, err := strconv.Atoi(q.Get("limit")); err == nil && n > 0 && len(out) > n {
		out = out[:n]
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func containerMatches(c *engine.Container, sum container.Summary, fs Filters) bool {
	for k, vals := range fs {
		if k == "label" {
			if !matchLabels(c.Config.Labels, vals) {
				return false
			}
			continue
		}
		hit := false
		for _, v := range vals {
			hit = hit || containerMatch(c, sum, k, v)
		}
		if !hit {
			return false
		}
	}
	return true
}

func containerMatch(c *engine.Container, sum container.Summary, k, v string) bool {
	switch k {
	case "id":
		return strings.HasPrefix(c.Config.ID, v)
	case "name":
		return strings.Contains(c.Config.Name, strings.TrimPrefix(v, "/"))
	case "status":
		return string(sum.State) == v
	case "exited":
		return sum.State == container.StateExited && strconv.Itoa(c.State.ExitCode) == v
	case "network":
		for n := range sum.NetworkSettings.Networks {
			if n == v {
				return true
			}
		}
	case "ancestor":
		return c.Config.Image == v || strings.HasPrefix(imageID(c.Config.ImageID), v) || strings.HasPrefix(c.Config.ImageID, v)
	case "health":
		h := c.State.Health.Status
		return h == v || (h == "" && v == "none")
	case "volume":
		for _, m := range c.Config.Mounts {
			if m.Source == v || m.Destination == v {
				return true
			}
		}
	}
	return false
}

func (s *Server) containerInspect(w http.ResponseWriter, r *http.Request) error {
	_, c, err := s.target(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ContainerInspect(c, s.b.InspectInfo(c)))
	return nil
}

// act runs one engine operation on the path's container and answers 204.
func (s *Server) act(w http.ResponseWriter, r *http.Request, op func(e ContainerEngine, ref string) error) error {
	e, err := s.engine()
	if err != nil {
		return err
	}
	ref := r.PathValue("id")
	if err := op(e, ref); err != nil {
		return classify(err, ref)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// timeoutQuery reads the stop timeout (t, or timeout on older clients).
func timeoutQuery(r *http.Request) (*uint, error) {
	v := r.URL.Query().Get("t")
	if v == "" {
		v = r.URL.Query().Get("timeout")
	}
	if v == "" {
		return nil, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return nil, fmt.Errorf("t=%q: not a number of seconds: %w", v, ErrInvalid)
	}
	t := uint(max(n, 0))
	return &t, nil
}

func (s *Server) containerStart(w http.ResponseWriter, r *http.Request) error {
	e, c, err := s.target(r)
	if err != nil {
		return err
	}
	if c.Running() {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	if _, err := e.Start(c.Config.ID, engine.StartOptions{Attach: s.startAttachHook(e, c.Config.ID)}); err != nil {
		return classify(err, c.Config.Name)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) containerStop(w http.ResponseWriter, r *http.Request) error {
	t, err := timeoutQuery(r)
	if err != nil {
		return err
	}
	e, c, err := s.target(r)
	if err != nil {
		return err
	}
	if !c.Running() {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	if _, err := e.Stop(c.Config.ID, t); err != nil {
		return classify(err, c.Config.Name)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) containerRestart(w http.ResponseWriter, r *http.Request) error {
	t, err := timeoutQuery(r)
	if err != nil {
		return err
	}
	return s.act(w, r, func(e ContainerEngine, ref string) error { _, err := e.Restart(ref, t); return err })
}

func (s *Server) containerKill(w http.ResponseWriter, r *http.Request) error {
	sig := r.URL.Query().Get("signal")
	if sig == "" {
		sig = "KILL"
	}
	return s.act(w, r, func(e ContainerEngine, ref string) error {
		c, err := e.Get(ref)
		if err != nil {
			return err
		}
		if !c.Running() {
			//lint:ignore ST1005 Docker's own message, which clients show and match
			return fmt.Errorf("Cannot kill container: %s: Container %s is not running: %w", ref, c.Config.ID, ErrConflict)
		}
		_, err = e.Kill(ref, sig)
		return err
	})
}

func (s *Server) containerPause(w http.ResponseWriter, r *http.Request) error {
	return s.act(w, r, func(e ContainerEngine, ref string) error { _, err := e.Pause(ref); return err })
}

func (s *Server) containerUnpause(w http.ResponseWriter, r *http.Request) error {
	return s.act(w, r, func(e ContainerEngine, ref string) error { _, err := e.Unpause(ref); return err })
}

func (s *Server) containerRename(w http.ResponseWriter, r *http.Request) error {
	name := r.URL.Query().Get("name")
	if name == "" {
		return fmt.Errorf("name cannot be empty: %w", ErrInvalid)
	}
	return s.act(w, r, func(e ContainerEngine, ref string) error { _, err := e.Rename(ref, name); return err })
}

func (s *Server) containerRemove(w http.ResponseWriter, r *http.Request) error {
	force, vols := boolQuery(r, "force"), boolQuery(r, "v")
	if boolQuery(r, "link") {
		return fmt.Errorf("links are not supported by berth: %w", ErrNotImplemented)
	}
	return s.act(w, r, func(e ContainerEngine, ref string) error {
		c, err := e.Get(ref)
		if err != nil {
			return err
		}
		if c.Running() && !force {
			//lint:ignore ST1005 Docker's own message, which clients show and match
			return fmt.Errorf("You cannot remove a running container %s. Stop the container before attempting removal or force remove: %w", c.Config.ID, ErrConflict)
		}
		_, err = e.RemoveWith(ref, force, vols)
		return err
	})
}

// containerWait answers once the container is not running (or removed,
// or after its next exit), with its exit code. The header goes out at
// once: `docker run` waits for it before it starts the container.
func (s *Server) containerWait(w http.ResponseWriter, r *http.Request) error {
	cond := container.WaitCondition(r.URL.Query().Get("condition"))
	switch cond {
	case "", container.WaitConditionNotRunning, container.WaitConditionNextExit, container.WaitConditionRemoved:
	default:
		return fmt.Errorf("invalid condition: %q: %w", cond, ErrInvalid)
	}
	e, c, err := s.target(r)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	code, werr := s.waitFor(r, e, c, cond)
	resp := container.WaitResponse{StatusCode: int64(code)}
	if werr != nil {
		resp.Error = &container.WaitExitError{Message: werr.Error()}
	}
	return writeBody(w, resp)
}

// waitFor polls the record: the engine's Wait returns only for a
// container that runs now, and next-exit must see a start first.
func (s *Server) waitFor(r *http.Request, e ContainerEngine, c *engine.Container, cond container.WaitCondition) (int, error) {
	id := c.Config.ID
	sawRunning := c.Running()
	for {
		cur, err := e.Get(id)
		if errors.Is(err, engine.ErrNoSuchContainer) {
			if code, ok := s.attach.exitCode(id); ok {
				return code, nil
			}
			return c.State.ExitCode, nil
		}
		if err != nil {
			return -1, err
		}
		c = cur
		running := cur.Running() || cur.State.Restarting
		sawRunning = sawRunning || running
		done := !running
		switch cond {
		case container.WaitConditionNextExit:
			done = sawRunning && !running
		case container.WaitConditionRemoved:
			done = false
		}
		if done {
			return cur.State.ExitCode, nil
		}
		select {
		case <-r.Context().Done():
			return -1, r.Context().Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func writeBody(w http.ResponseWriter, v any) error {
	b, err := jsonLine(v)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// containerLogs streams the container's log: raw for a terminal
// container, otherwise in Docker's multiplexed frames (stream byte,
// three zero bytes, big-endian length, payload).
func (s *Server) containerLogs(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	stdout, stderr := boolQuery(r, "stdout"), boolQuery(r, "stderr")
	if !stdout && !stderr {
		//lint:ignore ST1005 Docker's own message, which clients show and match
		return fmt.Errorf("Bad parameters: you must choose at least one stream: %w", ErrInvalid)
	}
	tail := -1
	if v := q.Get("tail"); v != "" && v != "all" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("tail=%q: want a number or all: %w", v, ErrInvalid)
		}
		tail = n
	}
	since, until, err := logWindow(q.Get("since"), q.Get("until"))
	if err != nil {
		return err
	}
	e, c, err := s.target(r)
	if err != nil {
		return err
	}
	tty := c.Config.Terminal
	if tty {
		w.Header().Set("Content-Type", "application/vnd.docker.raw-stream")
	} else {
		w.Header().Set("Content-Type", "application/vnd.docker.multiplexed-stream")
	}
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	emit := func(l ctrlog.Line) error {
		if (l.Stream == "stdout" && !stdout) || (l.Stream == "stderr" && !stderr) {
			return nil
		}
		if at := l.At(); (!since.IsZero() && at.Before(since)) || (!until.IsZero() && !at.Before(until)) {
			return nil
		}
		text := l.Text
		if boolQuery(r, "timestamps") {
			text = l.Time + " " + text
		}
		if err := writeFrame(w, tty, l.Stream, text); err != nil {
			return err
		}
		if flusher != nil {
			flusher.Flush()
		}
		return nil
	}
	lr := ctrlog.Open(e.LogPath(c.Config.ID))
	defer lr.Close()
	if err := lr.Tail(tail, emit); err != nil || !boolQuery(r, "follow") {
		return nil
	}
	id := c.Config.ID
	return lr.Follow(r.Context(), 100*time.Millisecond, func() bool {
		cur, err := e.Get(id)
		return err == nil && (cur.Running() || cur.State.Restarting)
	}, emit)
}

func writeFrame(w io.Writer, raw bool, stream, text string) error {
	if raw {
		_, err := io.WriteString(w, text)
		return err
	}
	hdr := [8]byte{1}
	if stream == "stderr" {
		hdr[0] = 2
	}
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(text)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := io.WriteString(w, text)
	return err
}

// logWindow reads since/until: Unix seconds (with fraction) or 0.
func logWindow(since, until string) (time.Time, time.Time, error) {
	parse := func(name, v string) (time.Time, error) {
		if v == "" || v == "0" {
			return time.Time{}, nil
		}
		sec, frac, _ := strings.Cut(v, ".")
		s, err := strconv.ParseInt(sec, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("%s=%q: want Unix seconds: %w", name, v, ErrInvalid)
		}
		var ns int64
		if frac != "" {
			frac = (frac + "000000000")[:9]
			ns, _ = strconv.ParseInt(frac, 10, 64)
		}
		return time.Unix(s, ns), nil
	}
	s, err := parse("since", since)
	if err != nil {
		return s, s, err
	}
	u, err := parse("until", until)
	return s, u, err
}

// Package events is berth's event journal: one JSON line per thing that
// happened to a container, pod, network, volume or image, appended by
// every command that changes them and read back by `berth events` and
// the Docker API's /events (both can follow new events as they come).
//
// The journal is a file under the run root written with O_APPEND, one
// write(2) per event, so concurrent writers never interleave a line and
// a reader never sees half of one it accepts (an unterminated last line
// is left for the next read). It is rotated to FILE.1 when it passes
// MaxSize, under an exclusive lock that writers also take (shared).
package events

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Types of objects events are about.
const (
	TypeContainer = "container"
	TypePod       = "pod"
	TypeNetwork   = "network"
	TypeVolume    = "volume"
	TypeImage     = "image"
)

// Event is one thing that happened.
type Event struct {
	Time time.Time `json:"time"`
	// Type is what the event is about (TypeContainer ...).
	Type string `json:"type"`
	// Action is what happened: create, start, die, stop, kill, destroy,
	// restart, pause, unpause, rename, connect, disconnect, remove,
	// pull, push, tag, untag, health_status ...
	Action string `json:"action"`
	ID     string `json:"id"`
	Name   string `json:"name,omitempty"`
	Image  string `json:"image,omitempty"`
	// Attributes are labels and details (exitCode, signal, container
	// of a network connect, ...).
	Attributes map[string]string `json:"attributes,omitempty"`
}

// MaxSize is the size past which the journal is rotated.
const MaxSize = 4 << 20

// Journal is the event file at one path.
type Journal struct {
	path    string
	maxSize int64
	now     func() time.Time
}

// Open returns the journal at path; the file is created on first Append.
func Open(path string) *Journal {
	return &Journal{path: path, maxSize: MaxSize, now: time.Now}
}

// Path is the journal's file.
func (j *Journal) Path() string { return j.path }

// Append records e (its Time set to now when zero).
func (j *Journal) Append(e Event) error {
	if e.Time.IsZero() {
		e.Time = j.now()
	}
	if e.Type == "" || e.Action == "" {
		return fmt.Errorf("event: type and action are required")
	}
	line, err := json.Marshal(e)
	if err != nil {
		return err
	}
	line = append(line, '\n')
	if err := os.MkdirAll(filepath.Dir(j.path), 0o700); err != nil {
		return fmt.Errorf("event journal: %w", err)
	}
	for range 10 {
		rotated, err := j.write(line)
		if err != nil || !rotated {
			return err
		}
	}
	return fmt.Errorf("event journal: rotated under every attempt to write")
}

// write appends line to the journal file under a shared lock. It reports
// rotated (and writes nothing) when the file it opened was rotated away
// before it held the lock, so the line never lands in FILE.1 after a
// reader finished it.
func (j *Journal) write(line []byte) (rotated bool, err error) {
	f, err := os.OpenFile(j.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return false, fmt.Errorf("event journal: %w", err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH); err != nil {
		return false, fmt.Errorf("event journal lock: %w", err)
	}
	cur, err1 := f.Stat()
	st, err2 := os.Stat(j.path)
	if err1 != nil || err2 != nil || !os.SameFile(cur, st) {
		return true, nil
	}
	if _, err := f.Write(line); err != nil {
		return false, fmt.Errorf("event journal: %w", err)
	}
	if cur.Size()+int64(len(line)) > j.maxSize {
		_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		return false, j.rotate()
	}
	return false, nil
}

// rotate moves a journal past maxSize to FILE.1 under the exclusive
// lock, so no writer is between open and write of the old file.
func (j *Journal) rotate() error {
	f, err := os.OpenFile(j.path, os.O_WRONLY, 0)
	if err != nil {
		return nil
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("event journal lock: %w", err)
	}
	st, err := os.Stat(j.path)
	if err != nil || st.Size() <= j.maxSize {
		return nil // another writer rotated it
	}
	if cur, err := f.Stat(); err != nil || !os.SameFile(cur, st) {
		return nil
	}
	return os.Rename(j.path, j.path+".1")
}

// Query selects events: those at or after Since and before Until (zero:
// unbounded) that match Filter. With Follow, Read keeps waiting for new
// events until ctx ends or Until passes.
type Query struct {
	Since, Until time.Time
	Filter       Filter
	Follow       bool
	// Poll is how often a follower looks for new lines (default 100 ms).
	Poll time.Duration
}

// Read calls fn for each selected event in order, oldest first.
func (j *Journal) Read(ctx context.Context, q Query, fn func(Event) error) error {
	if q.Poll <= 0 {
		q.Poll = 100 * time.Millisecond
	}
	r := &reader{j: j, q: q, fn: fn}
	if err := r.readOld(); err != nil {
		return err
	}
	for q.Follow {
		if !q.Until.IsZero() && !j.now().Before(q.Until) {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(q.Poll):
		}
		if err := r.readNew(); err != nil {
			return err
		}
	}
	return nil
}

// reader tracks how far into the current file it has read, and notices
// rotation by the file's identity.
type reader struct {
	j   *Journal
	q   Query
	fn  func(Event) error
	cur os.FileInfo
	off int64
}

func (r *reader) readOld() error {
	if _, err := r.readFile(r.j.path+".1", 0); err != nil {
		return err
	}
	st, err := os.Stat(r.j.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	r.cur = st
	r.off, err = r.readFile(r.j.path, 0)
	return err
}

func (r *reader) readNew() error {
	st, err := os.Stat(r.j.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if r.cur != nil && !os.SameFile(r.cur, st) {
		// Rotated: finish the old file (now FILE.1), then start anew.
		if old, err := os.Stat(r.j.path + ".1"); err == nil && os.SameFile(r.cur, old) {
			if _, err := r.readFile(r.j.path+".1", r.off); err != nil {
				return err
			}
		}
		r.off = 0
	}
	r.cur = st
	r.off, err = r.readFile(r.j.path, r.off)
	return err
}

// readFile reads whole lines of path from off and returns the offset
// after the last whole line.
func (r *reader) readFile(path string, off int64) (int64, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return off, nil
	}
	if err != nil {
		return off, err
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return off, err
	}
	br := bufio.NewReaderSize(f, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) == 0 || line[len(line)-1] != '\n' {
			return off, nil // EOF or an unfinished line: read it later
		}
		off += int64(len(line))
		var e Event
		if jerr := json.Unmarshal(bytes.TrimSpace(line), &e); jerr != nil {
			continue // a damaged line is skipped, not fatal
		}
		if r.selects(e) {
			if ferr := r.fn(e); ferr != nil {
				return off, ferr
			}
		}
		if err != nil {
			return off, nil
		}
	}
}

func (r *reader) selects(e Event) bool {
	if !r.q.Since.IsZero() && e.Time.Before(r.q.Since) {
		return false
	}
	if !r.q.Until.IsZero() && !e.Time.Before(r.q.Until) {
		return false
	}
	return r.q.Filter.Match(e)
}

// Filter is the --filter / filters= selection: values of one key are
// alternatives, keys must all match.
type Filter map[string][]string

// FilterKeys are the keys Filter understands.
var FilterKeys = []string{"container", "event", "image", "label", "network", "pod", "type", "volume"}

// ParseFilter reads KEY=VALUE strings (`--filter event=start`).
func ParseFilter(in []string) (Filter, error) {
	f := Filter{}
	for _, s := range in {
		k, v, ok := strings.Cut(s, "=")
		if !ok || v == "" {
			return nil, fmt.Errorf("filter %q: want KEY=VALUE", s)
		}
		if !validKey(k) {
			return nil, fmt.Errorf("filter %q: unknown key %q (valid: %s)", s, k, strings.Join(FilterKeys, ", "))
		}
		f[k] = append(f[k], v)
	}
	return f, nil
}

func validKey(k string) bool {
	for _, v := range FilterKeys {
		if v == k {
			return true
		}
	}
	return false
}

// Match reports whether e passes the filter.
func (f Filter) Match(e Event) bool {
	for k, vals := range f {
		hit := false
		for _, v := range vals {
			if matchOne(e, k, v) {
				hit = true
				break
			}
		}
		if !hit {
			return false
		}
	}
	return true
}

func matchOne(e Event, k, v string) bool {
	switch k {
	case "type":
		return e.Type == v
	case "event":
		return e.Action == v || strings.HasPrefix(e.Action, v+":")
	case "container":
		return e.Type == TypeContainer && idOrName(e, v)
	case "pod":
		return e.Type == TypePod && idOrName(e, v) || e.Attributes["pod"] == v
	case "network":
		return e.Type == TypeNetwork && idOrName(e, v)
	case "volume":
		return e.Type == TypeVolume && idOrName(e, v)
	case "image":
		return e.Image == v || e.Type == TypeImage && idOrName(e, v)
	case "label":
		lk, lv, hasValue := strings.Cut(v, "=")
		got, ok := e.Attributes[lk]
		return ok && (!hasValue || got == lv)
	}
	return false
}

func idOrName(e Event, v string) bool {
	return e.Name == v || (len(v) >= 3 && strings.HasPrefix(e.ID, v))
}

// PathIn is the journal's file under a run root: every writer and
// reader of one run root uses it.
func PathIn(runRoot string) string {
	return filepath.Join(runRoot, "events", "events.log")
}

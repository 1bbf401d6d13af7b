// Package ctrlog reads a container's log, the k8s-file format berth's
// monitor writes: one "<RFC3339Nano time> <stdout|stderr> <F|P> <text>"
// line per piece of output (F: the text ended a line, P: it did not).
// `berth logs` and the Docker API's logs endpoint both read it here.
package ctrlog

import (
	"bufio"
	"context"
	"io"
	"os"
	"strings"
	"time"
)

// Line is one piece of output.
type Line struct {
	// Time is as logged (RFC 3339 with nanoseconds).
	Time   string
	Stream string
	// Text ends in a newline when the output's line ended.
	Text string
}

// Parse parses one log line (with or without its newline).
func Parse(line string) (Line, bool) {
	line = strings.TrimSuffix(line, "\n")
	parts := strings.SplitN(line, " ", 4)
	if len(parts) < 3 || (parts[1] != "stdout" && parts[1] != "stderr") {
		return Line{}, false
	}
	text := ""
	if len(parts) == 4 {
		text = parts[3]
	}
	if parts[2] == "F" {
		text += "\n"
	}
	return Line{Time: parts[0], Stream: parts[1], Text: text}, true
}

// At is the line's time, zero when it does not parse.
func (l Line) At() time.Time {
	t, _ := time.Parse(time.RFC3339Nano, l.Time)
	return t
}

// Reader reads a log file that may not exist yet and may still grow.
// Pieces of a line (P) are joined with the rest of their line: each
// Line it passes on is whole.
type Reader struct {
	path    string
	f       *os.File
	rd      *bufio.Reader
	partial string
}

// Open returns a reader of the log at path (opened once it exists).
func Open(path string) *Reader {
	r := &Reader{path: path}
	r.open()
	return r
}

func (r *Reader) open() {
	if r.f != nil {
		return
	}
	if f, err := os.Open(r.path); err == nil {
		r.f, r.rd = f, bufio.NewReader(f)
	}
}

// Close releases the file.
func (r *Reader) Close() error {
	if r.f == nil {
		return nil
	}
	return r.f.Close()
}

// Read passes each whole line logged so far to each; a line still being
// written is kept to be read again next time.
func (r *Reader) Read(each func(Line) error) error {
	r.open()
	if r.f == nil {
		return nil
	}
	for {
		line, err := r.rd.ReadString('\n')
		if err != nil {
			if line != "" {
				r.rd = bufio.NewReader(io.MultiReader(strings.NewReader(line), r.f))
			}
			return nil
		}
		l, ok := Parse(line)
		if !ok {
			continue
		}
		if !strings.HasSuffix(l.Text, "\n") {
			r.partial += l.Text
			continue
		}
		l.Text, r.partial = r.partial+l.Text, ""
		if err := each(l); err != nil {
			return err
		}
	}
}

// Tail passes the last n complete lines (all when n < 0).
func (r *Reader) Tail(n int, each func(Line) error) error {
	var lines []Line
	if err := r.Read(func(l Line) error { lines = append(lines, l); return nil }); err != nil {
		return err
	}
	if n >= 0 && len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for _, l := range lines {
		if err := each(l); err != nil {
			return err
		}
	}
	return nil
}

// Follow passes new lines every poll until running reports false (after
// a last read) or ctx ends.
func (r *Reader) Follow(ctx context.Context, poll time.Duration, running func() bool, each func(Line) error) error {
	for {
		up := running()
		if err := r.Read(each); err != nil {
			return err
		}
		if !up {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(poll):
		}
	}
}

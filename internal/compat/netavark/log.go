package netavark

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
)

// targetKey is the log attribute that names a line's module in netavark's
// terms ("netavark::firewall"); lines without it are "netavark"'s.
const targetKey = "target"

// logHandler writes log lines as netavark does (env_logger without
// timestamps): "[INFO  netavark::firewall] Using nftables firewall
// driver", attributes after the message as key=value.
type logHandler struct {
	w     io.Writer
	mu    *sync.Mutex
	level slog.Level
	attrs []slog.Attr
}

func newLogHandler(w io.Writer, level slog.Level) *logHandler {
	return &logHandler{w: w, mu: &sync.Mutex{}, level: level}
}

func (h *logHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *logHandler) Handle(_ context.Context, r slog.Record) error {
	target := "netavark"
	var b strings.Builder
	add := func(a slog.Attr) bool {
		if a.Key == targetKey {
			target = a.Value.String()
		} else if !a.Equal(slog.Attr{}) {
			fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		}
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := fmt.Fprintf(h.w, "[%-5s %s] %s%s\n", levelName(r.Level), target, r.Message, b.String())
	return err
}

func (h *logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return &c
}

// WithGroup is not used by berth's packages; groups are flattened.
func (h *logHandler) WithGroup(string) slog.Handler { return h }

// levelName is env_logger's name of a level.
func levelName(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "ERROR"
	case l >= slog.LevelWarn:
		return "WARN"
	case l >= slog.LevelInfo:
		return "INFO"
	}
	return "DEBUG"
}

// logger maps RUST_LOG (what Podman sets, e.g. "netavark=info") to a
// stderr logger in netavark's format; unset, only errors are logged, as
// netavark does.
func logger(env Env) *slog.Logger {
	lvl := slog.LevelError
	v := env.Getenv("RUST_LOG")
	if i := strings.LastIndex(v, "="); i >= 0 {
		v = v[i+1:]
	}
	switch strings.ToLower(v) {
	case "trace", "debug":
		lvl = slog.LevelDebug
	case "info":
		lvl = slog.LevelInfo
	case "warn":
		lvl = slog.LevelWarn
	}
	return slog.New(newLogHandler(env.Stderr, lvl))
}

package image

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// TerminalProgress marks a progress writer that is a terminal: pulls
// and pushes redraw a line per blob with a bar and byte counts, and the
// finished steps print short digests, as Podman does on a terminal.
type TerminalProgress struct{ io.Writer }

// terminal reports whether progress is a TerminalProgress.
func terminal(progress io.Writer) bool {
	_, ok := progress.(TerminalProgress)
	return ok
}

// FormatBytes prints n in binary units with one decimal, as Podman's
// progress counters do: 512.0b, 1.2KiB, 3.4MiB.
func FormatBytes(n int64) string {
	units := []string{"b", "KiB", "MiB", "GiB", "TiB"}
	f := float64(n)
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	return fmt.Sprintf("%.1f%s", f, units[i])
}

// ProgressLine is the terminal line of a blob copy: the short digest
// (when given), a bar, and done / total bytes (total < 0: unknown, no
// bar).
func ProgressLine(verb, digest string, done, total int64) string {
	short := strings.TrimPrefix(digest, "sha256:")
	if len(short) > 12 {
		short = short[:12]
	}
	if short != "" {
		short += " "
	}
	if total < 0 {
		return fmt.Sprintf("Copying %s %s%s", verb, short, FormatBytes(done))
	}
	const width = 20
	fill := width
	if total > 0 && done < total {
		fill = int(done * width / total)
	}
	bar := strings.Repeat("=", fill)
	if fill < width {
		bar += ">" + strings.Repeat("-", width-fill-1)
	}
	return fmt.Sprintf("Copying %s %s[%s] %s / %s", verb, short, bar, FormatBytes(done), FormatBytes(total))
}

// blobDigest is the digest of a registry blob request (…/blobs/sha256:…),
// following redirects back to the registry's URL; "" for other requests.
func blobDigest(req *http.Request) string {
	for r := req; r != nil; {
		p := r.URL.Path
		if i := strings.LastIndex(p, "/blobs/"); i >= 0 && strings.HasPrefix(p[i+7:], "sha256:") {
			return p[i+7:]
		}
		if r.Response == nil {
			break
		}
		r = r.Response.Request
	}
	return ""
}

// meterTransport shows the bytes of each blob download (GET) or upload
// as a redrawn terminal line, erased when the blob is complete.
type meterTransport struct {
	base http.RoundTripper
	w    io.Writer
	mu   sync.Mutex
}

// RoundTrip meters blob bodies.
func (m *meterTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := m.base.RoundTrip(req)
	if err != nil || req.Method != http.MethodGet || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	d := blobDigest(req)
	if d == "" {
		return resp, nil
	}
	resp.Body = &meterBody{ReadCloser: resp.Body, m: m, digest: d, total: resp.ContentLength}
	return resp, nil
}

type meterBody struct {
	io.ReadCloser
	m         *meterTransport
	digest    string
	done      int64
	total     int64
	last      time.Time
	completed bool
}

func (b *meterBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.done += int64(n)
	if err == io.EOF || (b.total >= 0 && b.done >= b.total) {
		b.finish()
	} else if now := time.Now(); now.Sub(b.last) >= 100*time.Millisecond {
		b.last = now
		b.draw()
	}
	return n, err
}

func (b *meterBody) draw() {
	b.m.mu.Lock()
	defer b.m.mu.Unlock()
	fmt.Fprintf(b.m.w, "\r%s\x1b[K", ProgressLine("blob", b.digest, b.done, b.total))
}

// finish draws the final counts once and erases the line for the
// step's permanent line.
func (b *meterBody) finish() {
	if b.completed {
		return
	}
	b.completed = true
	b.draw()
	b.m.mu.Lock()
	defer b.m.mu.Unlock()
	fmt.Fprint(b.m.w, "\r\x1b[K")
}

func (b *meterBody) Close() error {
	if !b.completed && b.done > 0 {
		b.m.mu.Lock()
		fmt.Fprint(b.m.w, "\r\x1b[K")
		b.m.mu.Unlock()
		b.completed = true
	}
	return b.ReadCloser.Close()
}

package dockerapi

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/moby/moby/api/types/jsonstream"
)

// pullRef is the reference POST /images/create pulls: fromImage with
// tag (a tag or a digest; latest when neither gives one).
func pullRef(fromImage, tag string) (string, error) {
	if fromImage == "" {
		return "", fmt.Errorf("fromImage is required (importing with fromSrc is not supported): %w", ErrInvalid)
	}
	name := fromImage
	switch {
	case strings.HasPrefix(tag, "sha256:"):
		name += "@" + tag
	case tag != "":
		name += ":" + tag
	case !hasTagOrDigest(name):
		name += ":latest"
	}
	return name, nil
}

func hasTagOrDigest(name string) bool {
	return strings.Contains(name, "@") || strings.LastIndexByte(name, ':') > strings.LastIndexByte(name, '/')
}

// pullPath is what dockerd names in "Pulling from": the repository path
// without a registry (library/busybox), and the tag.
func pullPath(ref string) (repo, tag string) {
	f := ref
	if i := strings.IndexByte(f, '/'); i >= 0 && (strings.ContainsAny(f[:i], ".:") || f[:i] == "localhost") {
		f = f[i+1:]
	} else if i < 0 {
		f = "library/" + f
	}
	if i := strings.IndexByte(f, '@'); i >= 0 {
		return f[:i], f[i+1:]
	}
	if i := strings.LastIndexByte(f, ':'); i >= 0 {
		return f[:i], f[i+1:]
	}
	return f, "latest"
}

// PullProgress turns the Podman-style progress lines of a pull into
// Docker's JSON progress messages, one per line written to it.
type PullProgress struct {
	mu      sync.Mutex
	w       http.ResponseWriter
	repo    string
	tag     string
	started bool
}

// Write translates whole lines; partial lines are not expected (the
// image store writes one line per call).
func (p *PullProgress) Write(b []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if m, ok := progressMessage(line); ok {
			p.send(m)
		}
	}
	return len(b), nil
}

// progressMessage translates one progress line ("Copying blob
// sha256:... [skipped: already exists]"); ok is false for lines Docker
// has no counterpart for.
func progressMessage(line string) (jsonstream.Message, bool) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(line), "Copying blob ")
	if !ok {
		if strings.HasPrefix(line, "Failed, retrying") {
			return jsonstream.Message{Status: line}, true
		}
		return jsonstream.Message{}, false
	}
	digest, state, _ := strings.Cut(rest, " ")
	id := strings.TrimPrefix(digest, "sha256:")
	if len(id) > 12 {
		id = id[:12]
	}
	if id == "" {
		return jsonstream.Message{}, false
	}
	if strings.Contains(state, "skipped") {
		return jsonstream.Message{ID: id, Status: "Already exists"}, true
	}
	return jsonstream.Message{ID: id, Status: "Pull complete"}, true
}

// streamMessage is a progress message with the legacy "error" string
// older clients read beside errorDetail.
type streamMessage struct {
	jsonstream.Message
	ErrorMessage string `json:"error,omitempty"`
}

// send writes m, preceded by "Pulling from" on the first message, and
// flushes it to the client.
func (p *PullProgress) send(m jsonstream.Message) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.started {
		p.started = true
		p.w.Header().Set("Content-Type", "application/json")
		p.w.WriteHeader(http.StatusOK)
		p.encode(jsonstream.Message{ID: p.tag, Status: "Pulling from " + p.repo})
	}
	p.encode(m)
}

func (p *PullProgress) encode(m jsonstream.Message) {
	sm := streamMessage{Message: m}
	if m.Error != nil {
		sm.ErrorMessage = m.Error.Message
	}
	b, err := json.Marshal(sm)
	if err != nil {
		return
	}
	_, _ = p.w.Write(append(b, '\n'))
	if f, ok := p.w.(http.Flusher); ok {
		f.Flush()
	}
}

// finish reports the pull's end: an error as a stream message once
// progress has started (a status code otherwise), or the digest and
// Docker's closing status line.
func (p *PullProgress) finish(err error, digest, status string) error {
	if err != nil {
		p.mu.Lock()
		started := p.started
		p.mu.Unlock()
		if !started {
			return err
		}
		msg := err.Error()
		for _, s := range []error{ErrNotFound, ErrConflict, ErrInvalid, ErrForbidden, ErrNotImplemented} {
			msg = strings.TrimSuffix(msg, ": "+s.Error())
		}
		p.send(jsonstream.Message{Error: &jsonstream.Error{Message: msg}})
		return nil
	}
	if digest != "" {
		p.send(jsonstream.Message{Status: "Digest: " + digest})
	}
	p.send(jsonstream.Message{Status: status})
	return nil
}

// registryAuth decodes the X-Registry-Auth header: base64url JSON in
// Docker's AuthConfig shape, whose field names go-containerregistry
// shares. No credentials in it (or no header) is nil: the stored ones
// are used.
func registryAuth(h string) (*authn.AuthConfig, error) {
	h = strings.TrimSpace(h)
	if h == "" {
		return nil, nil
	}
	var raw []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.URLEncoding, base64.RawURLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		if raw, err = enc.DecodeString(h); err == nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("invalid X-Registry-Auth header: %v: %w", err, ErrInvalid)
	}
	var a authn.AuthConfig
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, fmt.Errorf("invalid X-Registry-Auth header: %v: %w", err, ErrInvalid)
	}
	if a.Username == "" && a.Password == "" && a.Auth == "" && a.IdentityToken == "" && a.RegistryToken == "" {
		return nil, nil
	}
	return &a, nil
}

// imageCreate serves POST /images/create: a pull from a registry.
func (s *Server) imageCreate(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if q.Get("fromSrc") != "" {
		return fmt.Errorf("importing an image with fromSrc is not supported (use berth import): %w", ErrNotImplemented)
	}
	if pl := q.Get("platform"); pl != "" {
		return fmt.Errorf("platform %q: berth pulls this machine's platform only over the API (use berth pull --platform): %w", pl, ErrNotImplemented)
	}
	ref, err := pullRef(q.Get("fromImage"), q.Get("tag"))
	if err != nil {
		return err
	}
	var oldID string
	if in, err := s.b.Image(r.Context(), ref); err == nil {
		oldID = in.Image.ID
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	auth, err := registryAuth(r.Header.Get("X-Registry-Auth"))
	if err != nil {
		return err
	}
	repo, tag := pullPath(ref)
	p := &PullProgress{w: w, repo: repo, tag: tag}
	img, err := s.b.PullImage(r.Context(), ref, auth, p)
	if err != nil {
		return p.finish(err, "", "")
	}
	status := "Status: Downloaded newer image for " + Familiar(ref)
	if img.ID == oldID {
		status = "Status: Image is up to date for " + Familiar(ref)
	}
	return p.finish(nil, img.Digest, status)
}

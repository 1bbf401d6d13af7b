package dockerapi

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/berthnet/berth/internal/build"
	"github.com/berthnet/berth/internal/image"
)

// BuildBackend builds images for POST /build; a Backend that is not
// one answers 501.
type BuildBackend interface {
	// Build runs o; networkMode is the request's ("" or "default": the
	// default network).
	Build(ctx context.Context, o build.Options, networkMode string) (*build.Result, error)
}

// buildQuery are the options of POST /build berth reads.
type buildQuery struct {
	o           build.Options
	dockerfile  string
	networkMode string
	quiet       bool
}

// parseBuildQuery reads the query of POST /build.
func parseBuildQuery(r *http.Request) (buildQuery, error) {
	q := r.URL.Query()
	if q.Get("remote") != "" {
		return buildQuery{}, fmt.Errorf("builds from a remote context (%s): %w", q.Get("remote"), ErrNotImplemented)
	}
	if boolQuery(r, "squash") {
		return buildQuery{}, fmt.Errorf("squash: %w", ErrNotImplemented)
	}
	if v := q.Get("version"); v == "2" {
		return buildQuery{}, fmt.Errorf("the BuildKit builder (version=2): %w", ErrNotImplemented)
	}
	bq := buildQuery{dockerfile: q.Get("dockerfile"), networkMode: q.Get("networkmode"), quiet: boolQuery(r, "q")}
	bq.o.Tags, bq.o.Target, bq.o.NoCache, bq.o.Style = q["t"], q.Get("target"), boolQuery(r, "nocache"), build.Docker
	var err error
	if bq.o.BuildArgs, err = jsonMap(q.Get("buildargs")); err != nil {
		return buildQuery{}, fmt.Errorf("buildargs: %w: %w", err, ErrInvalid)
	}
	if bq.o.Labels, err = jsonMap(q.Get("labels")); err != nil {
		return buildQuery{}, fmt.Errorf("labels: %w: %w", err, ErrInvalid)
	}
	return bq, nil
}

// jsonMap decodes a JSON object of strings; null values are left out.
func jsonMap(s string) (map[string]string, error) {
	if s == "" {
		return nil, nil
	}
	var m map[string]*string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for k, v := range m {
		if v != nil {
			out[k] = *v
		}
	}
	return out, nil
}

// build is POST /build, the classic builder: the body is the context
// as a tar (plain, gzip or bzip2), the answer Docker's JSON lines.
func (s *Server) build(w http.ResponseWriter, r *http.Request) error {
	bb, ok := s.b.(BuildBackend)
	if !ok {
		return fmt.Errorf("image builds: %w", ErrNotImplemented)
	}
	bq, err := parseBuildQuery(r)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "berth-build-context-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := unpackContext(r.Body, dir); err != nil {
		return fmt.Errorf("read the build context: %w: %w", err, ErrInvalid)
	}
	if bq.o.Context, err = build.OpenContext(dir); err != nil {
		return err
	}
	name := bq.dockerfile
	if name == "" {
		name = "Dockerfile"
	}
	if bq.o.Dockerfile, err = os.ReadFile(filepath.Join(dir, filepath.FromSlash(path.Clean("/"+name)))); err != nil {
		return fmt.Errorf("cannot locate specified Dockerfile: %s: %w", name, ErrInvalid)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	js := &jsonLines{w: w}
	if !bq.quiet {
		bq.o.Out = streamWriter{js}
	}
	res, err := bb.Build(r.Context(), bq.o, bq.networkMode)
	if err != nil {
		js.error(err)
		return nil
	}
	js.send(map[string]any{"aux": map[string]string{"ID": "sha256:" + res.ID}})
	if bq.quiet {
		// As Docker: with q the output is the image ID alone.
		js.send(map[string]string{"stream": "sha256:" + res.ID + "\n"})
	}
	if len(res.UnusedArgs) > 0 && !bq.quiet {
		js.send(map[string]string{"stream": fmt.Sprintf("[Warning] One or more build-args %v were not consumed\n", res.UnusedArgs)})
	}
	return nil
}

// unpackContext extracts a (maybe compressed) context tar into dir.
func unpackContext(body io.Reader, dir string) error {
	br := bufio.NewReader(body)
	magic, _ := br.Peek(3)
	var r io.Reader = br
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		gz, err := gzip.NewReader(br)
		if err != nil {
			return err
		}
		r = gz
	case bytes.HasPrefix(magic, []byte("BZh")):
		r = bzip2.NewReader(br)
	}
	_, err := image.Unpack(r, dir, image.UnpackOptions{Privileged: os.Geteuid() == 0})
	return err
}

// jsonLines writes Docker's JSON message stream, flushed line by line.
type jsonLines struct {
	mu sync.Mutex
	w  http.ResponseWriter
}

func (j *jsonLines) send(v any) {
	j.mu.Lock()
	defer j.mu.Unlock()
	_ = json.NewEncoder(j.w).Encode(v)
	if f, ok := j.w.(http.Flusher); ok {
		f.Flush()
	}
}

// error sends a build failure; a failed RUN carries its exit code, which
// the docker CLI exits with.
func (j *jsonLines) error(err error) {
	msg := err.Error()
	for _, e := range []error{ErrNotFound, ErrConflict, ErrInvalid, ErrForbidden, ErrNotImplemented} {
		msg = strings.TrimSuffix(msg, ": "+e.Error())
	}
	detail := map[string]any{"message": msg}
	var re *build.RunError
	if errors.As(err, &re) {
		detail["code"] = re.Code
	}
	j.send(map[string]any{"errorDetail": detail, "error": msg})
}

// streamWriter sends what is written as {"stream": ...} messages.
type streamWriter struct{ j *jsonLines }

func (s streamWriter) Write(p []byte) (int, error) {
	s.j.send(map[string]string{"stream": string(p)})
	return len(p), nil
}

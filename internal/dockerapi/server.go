package dockerapi

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/common"
)

// API versions berth serves: from what Docker 20.10's CLI speaks (1.41;
// older clients back to 1.24 are accepted as Docker accepts them) to
// MaxVersion, which clients negotiate down to.
const (
	MinVersion = "1.24"
	MaxVersion = "1.43"
)

// Server answers Docker Engine API requests from a Backend.
type Server struct {
	b      Backend
	log    *slog.Logger
	mux    *http.ServeMux
	attach attachments
	execs  execSessions
}

// New returns a server for b; log may be nil.
func New(b Backend, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{b: b, log: log, mux: http.NewServeMux()}
	s.routes()
	return s
}

func (s *Server) routes() {
	s.handle("GET /_ping", s.ping)
	s.handle("HEAD /_ping", s.ping)
	s.handle("GET /version", s.version)
	s.handle("GET /info", s.info)

	s.handle("GET /networks", s.networkList)
	s.handle("GET /networks/{id}", s.networkInspect)
	s.handle("POST /networks/create", s.networkCreate)
	s.handle("DELETE /networks/{id}", s.networkRemove)
	s.handle("POST /networks/prune", s.networkPrune)
	s.handle("POST /networks/{id}/connect", s.networkConnect)
	s.handle("POST /networks/{id}/disconnect", s.networkDisconnect)
	s.containerRoutes()
	s.execRoutes()
	s.ctrMiscRoutes()

	s.handle("GET /images/json", s.imageList)
	s.handle("POST /images/create", s.imageCreate)
	s.handle("POST /images/prune", s.imagePrune)
	s.handle("GET /images/{name...}", s.imageGet)
	s.handle("POST /images/{name...}", s.imagePost)
	s.handle("DELETE /images/{name...}", s.imageRemove)

	s.handle("POST /build", s.build)

	s.handle("GET /events", s.events)
	s.handle("GET /volumes", s.volumeList)
	s.handle("POST /volumes/create", s.volumeCreate)
	s.handle("POST /volumes/prune", s.volumePrune)
	s.handle("GET /volumes/{name}", s.volumeInspect)
	s.handle("DELETE /volumes/{name}", s.volumeRemove)

	// berth has no Docker plugins: the list is empty and every named
	// plugin is missing (docker inspect looks for one by any name).
	s.handle("GET /plugins", func(w http.ResponseWriter, r *http.Request) error {
		writeJSON(w, http.StatusOK, []struct{}{})
		return nil
	})
	s.handle("GET /plugins/{name...}", func(w http.ResponseWriter, r *http.Request) error {
		name := strings.TrimSuffix(r.PathValue("name"), "/json")
		return fmt.Errorf("plugin %s not found: %w", name, ErrNotFound)
	})

	for _, p := range unimplemented {
		s.mux.HandleFunc(p.prefix, func(w http.ResponseWriter, r *http.Request) {
			writeError(w, fmt.Errorf("berth does not implement %s %s (%s) yet: %w", r.Method, r.URL.Path, p.what, ErrNotImplemented))
		})
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, fmt.Errorf("page not found: %w", ErrNotFound))
	})
}

// unimplemented are the Docker API areas berth answers with a clear 501
// instead of "page not found".
var unimplemented = []struct{ prefix, what string }{
	{"/session", "BuildKit sessions"},
	{"/swarm", "swarm mode"},
	{"/swarm/", "swarm mode"},
	{"/nodes", "swarm nodes"},
	{"/nodes/", "swarm nodes"},
	{"/services", "swarm services"},
	{"/services/", "swarm services"},
	{"/tasks", "swarm tasks"},
	{"/tasks/", "swarm tasks"},
	{"/secrets", "swarm secrets"},
	{"/secrets/", "swarm secrets"},
	{"/configs", "swarm configs"},
	{"/configs/", "swarm configs"},
	{"/plugins", "plugins"},
	{"/plugins/", "plugins"},
	{"/distribution/", "registry distribution inspect"},
	{"/grpc", "gRPC"},
	{"/system/df", "disk usage"},
	{"/containers/", "this container endpoint"},
	{"/exec/", "this exec endpoint"},
	{"/auth", "registry login"},
	{"/commit", "commit"},
}

type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (s *Server) handle(pattern string, h handlerFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.log.Debug("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			writeError(w, err)
		}
	})
}

// ServeHTTP checks and strips the API version prefix (/v1.41/...), sets
// Docker's response headers and dispatches.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Api-Version", MaxVersion)
	h.Set("Docker-Experimental", "false")
	h.Set("Ostype", "linux")
	h.Set("Server", "berth")
	v, rest, ok := splitVersion(r.URL.Path)
	if ok {
		if err := checkVersion(v); err != nil {
			writeError(w, err)
			return
		}
		r2 := new(http.Request)
		*r2 = *r
		u := *r.URL
		u.Path, u.RawPath = rest, ""
		r2.URL = &u
		r = r2
	}
	if !s.log.Enabled(r.Context(), slog.LevelDebug) {
		s.mux.ServeHTTP(w, r)
		return
	}
	s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "version", v)
	rec := &statusRecorder{ResponseWriter: w}
	t0 := time.Now()
	s.mux.ServeHTTP(rec, r)
	s.log.Debug("request done", "method", r.Method, "path", r.URL.Path, "status", rec.status(),
		"took", time.Since(t0).Round(time.Microsecond))
}

// statusRecorder notes the status a handler answers with (for the debug
// log); flushing and hijacking pass through.
type statusRecorder struct {
	http.ResponseWriter
	code     int
	hijacked bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := r.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("connection cannot be hijacked")
	}
	r.hijacked = true
	return hj.Hijack()
}

// Unwrap gives http.ResponseController the writer underneath.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// status is the code answered, "hijacked" for a connection taken over
// (attach, exec) or 200 when the handler wrote nothing.
func (r *statusRecorder) status() string {
	switch {
	case r.hijacked:
		return "hijacked"
	case r.code == 0:
		return "200"
	}
	return strconv.Itoa(r.code)
}

// splitVersion splits "/v1.41/networks" into "1.41" and "/networks".
func splitVersion(path string) (version, rest string, ok bool) {
	if !strings.HasPrefix(path, "/v") {
		return "", path, false
	}
	i := strings.IndexByte(path[1:], '/')
	seg := path[2:]
	rest = "/"
	if i >= 0 {
		seg, rest = path[2:i+1], path[i+1:]
	}
	if _, _, err := parseVersion(seg); err != nil {
		return "", path, false
	}
	return seg, rest, true
}

func parseVersion(v string) (major, minor int, err error) {
	a, b, ok := strings.Cut(v, ".")
	if !ok {
		return 0, 0, fmt.Errorf("API version %q: want MAJOR.MINOR", v)
	}
	if major, err = strconv.Atoi(a); err != nil || major < 0 {
		return 0, 0, fmt.Errorf("API version %q: want MAJOR.MINOR", v)
	}
	if minor, err = strconv.Atoi(b); err != nil || minor < 0 {
		return 0, 0, fmt.Errorf("API version %q: want MAJOR.MINOR", v)
	}
	return major, minor, nil
}

// compareVersions returns -1, 0 or 1; both must parse.
func compareVersions(a, b string) int {
	am, an, _ := parseVersion(a)
	bm, bn, _ := parseVersion(b)
	switch {
	case am != bm:
		return cmpInt(am, bm)
	default:
		return cmpInt(an, bn)
	}
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func checkVersion(v string) error {
	if compareVersions(v, MinVersion) < 0 {
		return fmt.Errorf("client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version: %w", v, MinVersion, ErrInvalid)
	}
	if compareVersions(v, MaxVersion) > 0 {
		return fmt.Errorf("client version %s is too new. Maximum supported API version is %s: %w", v, MaxVersion, ErrInvalid)
	}
	return nil
}

// statusOf maps an error to Docker's status code.
func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrConflict):
		return http.StatusConflict
	case errors.Is(err, ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, ErrNotImplemented):
		return http.StatusNotImplemented
	}
	return http.StatusInternalServerError
}

// writeError answers with Docker's error body, {"message": "..."}. The
// message drops the sentinel suffix the status code already carries.
func writeError(w http.ResponseWriter, err error) {
	msg := err.Error()
	for _, s := range []error{ErrNotFound, ErrConflict, ErrInvalid, ErrForbidden, ErrNotImplemented} {
		msg = strings.TrimSuffix(msg, ": "+s.Error())
	}
	writeJSON(w, statusOf(err), common.ErrorResponse{Message: msg})
}

// boolQuery reads a Docker boolean query parameter ("1", "true", "True").
func boolQuery(r *http.Request, name string) bool {
	v := strings.ToLower(r.URL.Query().Get(name))
	return v == "1" || v == "true"
}

func jsonLine(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		return
	}
}

// readJSON decodes a request body into v; an empty body leaves v as is.
func readJSON(r *http.Request, v any) error {
	if r.Body == nil {
		return nil
	}
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 8<<20))
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return fmt.Errorf("decode request body: %v: %w", err, ErrInvalid)
	}
	return nil
}

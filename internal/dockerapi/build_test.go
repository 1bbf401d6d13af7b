package dockerapi

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/berthnet/berth/internal/build"
)

// fakeBuilder records the build options and writes a classic builder's
// progress.
type fakeBuilder struct {
	*fakeBackend
	got     build.Options
	network string
	fail    error
}

func (f *fakeBuilder) Build(_ context.Context, o build.Options, networkMode string) (*build.Result, error) {
	f.got, f.network = o, networkMode
	if o.Out != nil {
		fmt.Fprintf(o.Out, "Step 1/1 : %s", strings.TrimSpace(string(o.Dockerfile))+"\n")
	}
	if f.fail != nil {
		return nil, f.fail
	}
	return &build.Result{ID: "abc", UnusedArgs: []string{"X"}}, nil
}

// contextTar is a gzip'd context with a Dockerfile at path name.
func contextTar(t *testing.T, name string) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for n, c := range map[string]string{name: "FROM busybox", ".dockerignore": "secret\n", "secret": "s"} {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(c)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write([]byte(c))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	_ = gz.Close()
	return &buf
}

// messages decodes a JSON-lines answer.
func messages(t *testing.T, body string) []map[string]any {
	t.Helper()
	var out []map[string]any
	dec := json.NewDecoder(strings.NewReader(body))
	for dec.More() {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("%v in %q", err, body)
		}
		out = append(out, m)
	}
	return out
}

func TestBuildEndpoint(t *testing.T) {
	fb := &fakeBuilder{fakeBackend: &fakeBackend{}}
	q := url.Values{"t": {"a:1", "b"}, "dockerfile": {"sub/Dockerfile.x"}, "buildargs": {`{"A":"1","N":null}`},
		"labels": {`{"l":"v"}`}, "target": {"final"}, "nocache": {"1"}, "networkmode": {"host"}, "rm": {"1"}}
	req := httptest.NewRequest(http.MethodPost, "/v1.41/build?"+q.Encode(), contextTar(t, "sub/Dockerfile.x"))
	rec := httptest.NewRecorder()
	New(fb, nil).ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	o := fb.got
	if strings.Join(o.Tags, ",") != "a:1,b" || o.BuildArgs["A"] != "1" || len(o.BuildArgs) != 1 || o.Labels["l"] != "v" ||
		o.Target != "final" || !o.NoCache || fb.network != "host" || o.Style != build.Docker || string(o.Dockerfile) != "FROM busybox" {
		t.Errorf("options %+v network %q", o, fb.network)
	}
	if o.Context == nil || !o.Context.Excluded("secret") {
		t.Error("the context's .dockerignore was not read")
	}
	msgs := messages(t, rec.Body.String())
	if len(msgs) != 3 || msgs[0]["stream"] != "Step 1/1 : FROM busybox\n" || msgs[1]["aux"].(map[string]any)["ID"] != "sha256:abc" ||
		!strings.Contains(msgs[2]["stream"].(string), "[X] were not consumed") {
		t.Errorf("stream %q", rec.Body)
	}
}

func TestBuildEndpointQuiet(t *testing.T) {
	fb := &fakeBuilder{fakeBackend: &fakeBackend{}}
	rec := httptest.NewRecorder()
	New(fb, nil).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/build?q=1", contextTar(t, "Dockerfile")))
	msgs := messages(t, rec.Body.String())
	if fb.got.Out != nil || len(msgs) != 2 || msgs[1]["stream"] != "sha256:abc\n" {
		t.Errorf("quiet build: %q", rec.Body)
	}
}

func TestBuildEndpointErrors(t *testing.T) {
	fb := &fakeBuilder{fakeBackend: &fakeBackend{}, fail: &build.RunError{Command: []string{"sh", "-c", "exit 3"}, Code: 3}}
	rec := httptest.NewRecorder()
	New(fb, nil).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/build?q=1", contextTar(t, "Dockerfile")))
	msgs := messages(t, rec.Body.String())
	if len(msgs) != 1 || msgs[0]["error"] == nil || msgs[0]["errorDetail"].(map[string]any)["code"] != float64(3) {
		t.Errorf("failed build (quiet): %q", rec.Body)
	}
	for target, want := range map[string]int{
		"/build?remote=https://example.com/x.git": http.StatusNotImplemented,
		"/build?buildargs=notjson":                http.StatusBadRequest,
		"/build?dockerfile=nosuch":                http.StatusBadRequest,
		"/session":                                http.StatusNotImplemented,
	} {
		rec := httptest.NewRecorder()
		New(fb, nil).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, target, contextTar(t, "Dockerfile")))
		if rec.Code != want {
			t.Errorf("%s: %d %s, want %d", target, rec.Code, rec.Body, want)
		}
	}
	rec = httptest.NewRecorder()
	New(&fakeBackend{}, nil).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/build", contextTar(t, "Dockerfile")))
	if rec.Code != http.StatusNotImplemented {
		t.Errorf("a backend that cannot build: %d", rec.Code)
	}
}

func FuzzJSONMap(f *testing.F) {
	f.Add(`{"a":"b","c":null}`)
	f.Fuzz(func(t *testing.T, s string) {
		m, err := jsonMap(s)
		if err == nil && s != "" && m == nil {
			t.Fatalf("jsonMap(%q) gave nil without an error", s)
		}
	})
}

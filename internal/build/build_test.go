package build

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

const multiStage = `ARG BASE=busybox
ARG TAG
FROM ${BASE}:${TAG:-latest} AS build
RUN echo hi
FROM scratch
COPY --from=build /a /b
`

func TestParseStagesAndMetaArgs(t *testing.T) {
	p, err := Parse([]byte(multiStage), map[string]string{"TAG": "1.36"}, "", map[string]string{"b": "2", "a": "1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Stages) != 2 || p.Stages[0].Base != "busybox:1.36" || p.Stages[0].Name != "build" || p.Stages[1].Base != "scratch" {
		t.Fatalf("stages %+v", p.Stages)
	}
	if p.Steps() != 5 {
		t.Errorf("steps %d, want 5 (two FROMs, RUN, COPY and the --label LABEL)", p.Steps())
	}
	if got := instructionText(p.Stages[1].Commands[1]); got != `LABEL "a"="1" "b"="2"` {
		t.Errorf("--label instruction %q", got)
	}
	p, err = Parse([]byte(multiStage), nil, "BUILD", nil)
	if err != nil || len(p.Stages) != 1 || p.Stages[0].Base != "busybox:latest" {
		t.Fatalf("target build: %+v %v", p, err)
	}
	if _, err := Parse([]byte(multiStage), nil, "nosuch", nil); err == nil {
		t.Error("an unknown target was accepted")
	}
}

func TestParseRefusals(t *testing.T) {
	for _, df := range []string{
		"FROM a\nONBUILD RUN x\n",
		"FROM a\nRUN --mount=type=cache,target=/c true\n",
		"FROM a\nRUN <<EOF\necho\nEOF\n",
		"FROM a\nCOPY --chmod=644 x /y\n",
		"FROM --platform=linux/arm64 a\n",
	} {
		if _, err := Parse([]byte(df), nil, "", nil); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%q: %v, want ErrUnsupported", df, err)
		}
	}
	if _, err := Parse([]byte("RUN x\n"), nil, "", nil); err == nil {
		t.Error("a Dockerfile without FROM was accepted")
	}
}

// runStage applies a stage's instructions as the builder does, without
// RUN or COPY.
func runStage(t *testing.T, df string, buildArgs map[string]string) *state {
	t.Helper()
	p, err := Parse([]byte(df), buildArgs, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	s := newState(v1.Config{Env: []string{"PATH=/bin"}, Cmd: []string{"sh"}}, p.Escape)
	for _, c := range p.Stages[0].Commands {
		if err := s.expand(c); err != nil {
			t.Fatal(err)
		}
		if a, ok := c.(*instructions.ArgCommand); ok {
			s.declare(a, buildArgs, p.MetaArgs, map[string]bool{})
			continue
		}
		if _, err := s.apply(c); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func TestStateInstructions(t *testing.T) {
	s := runStage(t, `FROM x
ARG WHO=nobody
ARG EMPTY
ENV HOME=/home/$WHO GREETING="hi ${WHO}"
WORKDIR /app
WORKDIR sub
USER $WHO
EXPOSE 80 53/udp
LABEL a=b "c d"=e
VOLUME /data
STOPSIGNAL SIGINT
SHELL ["/bin/bash", "-c"]
ENTRYPOINT echo entry
HEALTHCHECK --interval=5s CMD true
`, map[string]string{"WHO": "ann"})
	c := s.cfg
	if !slices.Equal(c.Env, []string{"PATH=/bin", "HOME=/home/ann", "GREETING=hi ann"}) {
		t.Errorf("env %q", c.Env)
	}
	if c.WorkingDir != "/app/sub" || c.User != "ann" || c.StopSignal != "SIGINT" {
		t.Errorf("workdir %q user %q stop signal %q", c.WorkingDir, c.User, c.StopSignal)
	}
	if _, ok := c.ExposedPorts["53/udp"]; !ok || len(c.ExposedPorts) != 2 || c.Labels["c d"] != "e" || len(c.Volumes) != 1 {
		t.Errorf("ports %v labels %v volumes %v", c.ExposedPorts, c.Labels, c.Volumes)
	}
	if !slices.Equal(c.Entrypoint, []string{"/bin/bash", "-c", "echo entry"}) || c.Cmd != nil {
		t.Errorf("entrypoint %q cmd %q: ENTRYPOINT takes the SHELL and resets the inherited CMD", c.Entrypoint, c.Cmd)
	}
	if c.Healthcheck == nil || c.Healthcheck.Interval.Seconds() != 5 || !slices.Equal(c.Healthcheck.Test, []string{"CMD-SHELL", "true"}) {
		t.Errorf("healthcheck %+v", c.Healthcheck)
	}
	if !slices.Equal(s.runEnv(), []string{"EMPTY=", "WHO=ann", "PATH=/bin", "HOME=/home/ann", "GREETING=hi ann"}) {
		t.Errorf("RUN environment %q", s.runEnv())
	}
	if s.argsKey() != "EMPTY=\nWHO=ann\n" {
		t.Errorf("args key %q", s.argsKey())
	}
}

func TestCmdThenEntrypointKeepsCmd(t *testing.T) {
	s := runStage(t, "FROM x\nCMD [\"a\"]\nENTRYPOINT [\"e\"]\n", nil)
	if !slices.Equal(s.cfg.Cmd, []string{"a"}) || !slices.Equal(s.cfg.Entrypoint, []string{"e"}) {
		t.Errorf("cmd %q entrypoint %q", s.cfg.Cmd, s.cfg.Entrypoint)
	}
}

func TestCacheKey(t *testing.T) {
	k := cacheKey("img", "RUN x", "A=1\n", "")
	for _, other := range []string{
		cacheKey("img2", "RUN x", "A=1\n", ""), cacheKey("img", "RUN y", "A=1\n", ""),
		cacheKey("img", "RUN x", "A=2\n", ""), cacheKey("img", "RUN x", "A=1\n", "files"),
	} {
		if other == k {
			t.Error("different steps share a cache key")
		}
	}
	if cacheKey("img", "RUN x", "A=1\n", "") != k {
		t.Error("the cache key is not stable")
	}
	c := &cache{path: filepath.Join(t.TempDir(), "cache.db")}
	if c.get(k) != "" {
		t.Error("empty cache answered")
	}
	if err := c.put(k, "abc"); err != nil || c.get(k) != "abc" {
		t.Errorf("cache put/get: %v %q", err, c.get(k))
	}
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestContextSourcesAndIgnore(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		".dockerignore": "*.log\nsecret/\n!keep.log\n", "a.txt": "a", "b.txt": "b", "x.log": "x", "keep.log": "k",
		"secret/s": "s", "src/one.go": "1", "src/two.go": "2",
	})
	if err := os.Symlink("/etc", filepath.Join(dir, "escape")); err != nil {
		t.Fatal(err)
	}
	c, err := OpenContext(dir)
	if err != nil {
		t.Fatal(err)
	}
	srcs, err := c.sources([]string{"*.txt", "../../src", "*.log"})
	if err != nil {
		t.Fatal(err)
	}
	var rels []string
	for _, s := range srcs {
		rels = append(rels, s.rel)
	}
	if !slices.Equal(rels, []string{"a.txt", "b.txt", "src", "keep.log"}) {
		t.Errorf("sources %q", rels)
	}
	for _, bad := range []string{"x.log", "secret/s", "nosuch", "escape"} {
		if _, err := c.sources([]string{bad}); err == nil {
			t.Errorf("source %s was accepted", bad)
		}
	}
	es, err := c.entries(source{rel: "src", isDir: true}, "", false)
	if err != nil || len(es) != 2 || es[0].name != "one.go" {
		t.Fatalf("entries of src: %+v %v", es, err)
	}
	var buf bytes.Buffer
	if err := writeTar(&buf, es, &owner{uid: 7, gid: 8}); err != nil {
		t.Fatal(err)
	}
	h, err := tar.NewReader(&buf).Next()
	if err != nil || h.Name != "one.go" || h.Uid != 7 || h.Gid != 8 || h.Size != 1 {
		t.Errorf("tar header %+v %v", h, err)
	}
	h1, _ := hashEntries(es, nil)
	h2, _ := hashEntries(es, &owner{uid: 1, gid: 1})
	if err := os.WriteFile(filepath.Join(dir, "src/one.go"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	h3, _ := hashEntries(es, nil)
	if h1 == h2 || h1 == h3 {
		t.Error("the content hash ignores owners or contents")
	}
}

func TestCopyDest(t *testing.T) {
	file, dir := []source{{rel: "a.txt"}}, []source{{rel: "d", isDir: true}}
	isDir := func(p string) bool { return p == "/existing" }
	for _, tc := range []struct {
		dest, workdir string
		srcs          []source
		dir, name     string
	}{
		{"/x/y", "", file, "/x", "y"},
		{"/x/y/", "", file, "/x/y", ""},
		{"rel", "/app", file, "/app", "rel"},
		{".", "/app", file, "/app", ""},
		{"./", "", file, "/", ""},
		{"/existing", "", file, "/existing", ""},
		{"/x", "", dir, "/x", ""},
		{"/x/", "", append(file, dir...), "/x", ""},
	} {
		d, n, err := copyDest(tc.dest, tc.workdir, tc.srcs, isDir)
		if err != nil || d != tc.dir || n != tc.name {
			t.Errorf("copyDest(%q, %q): %q %q %v, want %q %q", tc.dest, tc.workdir, d, n, err, tc.dir, tc.name)
		}
	}
	if _, _, err := copyDest("/x", "", append(file, dir...), isDir); err == nil {
		t.Error("several sources to a destination without a slash were accepted")
	}
}

func TestParseChown(t *testing.T) {
	passwd := []byte("root:x:0:0::/root:/bin/sh\nann:x:1000:1001::/home/ann:/bin/sh\n")
	group := []byte("root:x:0:\nstaff:x:50:\n")
	read := 0
	files := func() ([]byte, []byte) { read++; return passwd, group }
	for spec, want := range map[string]owner{"10": {10, 10}, "10:11": {10, 11}, "ann": {1000, 1000}, "ann:staff": {1000, 50}, "0:staff": {0, 50}} {
		o, err := parseChown(spec, files)
		if err != nil || *o != want {
			t.Errorf("--chown=%s: %+v %v, want %+v", spec, o, err, want)
		}
	}
	if read != 3 {
		t.Errorf("the image's files were read %d times, want only for the 3 names", read)
	}
	if _, err := parseChown("bob", files); err == nil {
		t.Error("an unknown user was accepted")
	}
}

func TestRenameEntry(t *testing.T) {
	for in, want := range map[[2]string]string{
		{".", ""}: "", {"./", ""}: "", {"a/b", ""}: "a/b", {"./a/b", ""}: "a/b", {"file", "new"}: "new",
		{"../../etc/x", ""}: "etc/x",
	} {
		if got := renameEntry(in[0], in[1]); got != want {
			t.Errorf("renameEntry(%q, %q) = %q, want %q", in[0], in[1], got, want)
		}
	}
}

func TestPrefixedLayer(t *testing.T) {
	var buf bytes.Buffer
	err := prefixedLayer(&buf, "/usr/local", func(w io.Writer) error {
		tw := tar.NewWriter(w)
		_ = tw.WriteHeader(&tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755})
		_ = tw.WriteHeader(&tar.Header{Name: "bin/x", Typeflag: tar.TypeReg, Mode: 0o755, Size: 1})
		_, _ = tw.Write([]byte("x"))
		return tw.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	tr := tar.NewReader(&buf)
	for h, err := tr.Next(); err == nil; h, err = tr.Next() {
		names = append(names, h.Name)
	}
	if want := []string{"usr/", "usr/local/", "usr/local/bin/", "usr/local/bin/x"}; !slices.Equal(names, want) {
		t.Errorf("layer %q, want %q", names, want)
	}
}

func TestRunError(t *testing.T) {
	e := &RunError{Command: []string{"/bin/sh", "-c", "exit 3"}, Code: 3, style: Docker}
	if !strings.Contains(e.Error(), "returned a non-zero code: 3") {
		t.Error(e)
	}
}

func TestFamiliar(t *testing.T) {
	got := familiar([]string{"a", "b:1", "localhost:5000/c", "d@sha256:00"})
	if want := []string{"a:latest", "b:1", "localhost:5000/c:latest", "d@sha256:00"}; !slices.Equal(got, want) {
		t.Errorf("familiar: %q, want %q", got, want)
	}
}

func TestPrinterStyles(t *testing.T) {
	var d, pd strings.Builder
	for _, p := range []printer{{w: &d, style: Docker}, {w: &pd, style: Podman}} {
		p.step(2, 2, "RUN x")
		p.cached("0123456789abcdef")
		p.committed("0123456789abcdef", true, []string{"app:1"})
		p.done("0123456789abcdef", []string{"localhost/app:1"})
	}
	if want := "Step 2/2 : RUN x\n ---> Using cache\n ---> 0123456789ab\nSuccessfully built 0123456789ab\nSuccessfully tagged localhost/app:1\n"; d.String() != want {
		t.Errorf("docker style:\n%s\nwant\n%s", d.String(), want)
	}
	if want := "STEP 2/2: RUN x\n--> Using cache 0123456789abcdef\nCOMMIT app:1\n--> 0123456789ab\nSuccessfully tagged localhost/app:1\n"; pd.String() != want {
		t.Errorf("podman style:\n%s\nwant\n%s", pd.String(), want)
	}
}

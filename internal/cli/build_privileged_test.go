package cli

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthnet/berth/internal/image"
	"github.com/berthnet/berth/internal/image/imagetest"
)

// buildDockerfile is a two-stage build: the first stage makes a file
// with RUN, the second copies it, its context files and sets the config.
const buildDockerfile = `ARG BASE=localhost/busybox
FROM $BASE AS builder
WORKDIR /src
COPY greeting.txt ./
RUN echo "built $(cat greeting.txt)" > out.txt && mkdir -p /dist && cp out.txt /dist/

FROM localhost/busybox
ARG WHO=nobody
ENV APP_HOME=/app GREETING="hello $WHO"
WORKDIR $APP_HOME
COPY --from=builder /dist/ ./
COPY --chown=1000:1000 data/ data/
USER 1000
EXPOSE 8080
LABEL org.example.kind=test
CMD ["sh", "-c", "cat out.txt; echo $GREETING; stat -c '%u %n' data/keep.txt; test -e data/secret.txt || echo nosecret; id -u; pwd"]
`

// buildWant is what the built image's container prints.
const buildWant = "built hi\nhello world\n1000 data/keep.txt\nnosecret\n1000\n/app\n"

// buildContext writes the context of buildDockerfile.
func buildContext(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"Dockerfile": buildDockerfile, "greeting.txt": "hi", "data/keep.txt": "keep",
		"data/secret.txt": "secret", ".dockerignore": "data/secret.txt\n",
	}
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

// checkBuilt runs the image and checks its configuration.
func checkBuilt(t *testing.T, p *etopo, s *image.Store, name string) {
	t.Helper()
	if got := p.mustB(t, "run", "--rm", "--network", "none", name); got != buildWant {
		t.Errorf("container of %s: %q, want %q", name, got, buildWant)
	}
	img, err := s.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	c := img.Config
	if !slices.Contains(c.Env, "GREETING=hello world") || !slices.Contains(c.Env, "APP_HOME=/app") || c.WorkingDir != "/app" ||
		c.User != "1000" || c.Labels["org.example.kind"] != "test" || !slices.Equal(c.ExposedPorts, []string{"8080/tcp"}) ||
		len(c.Cmd) != 3 || c.Cmd[0] != "sh" {
		t.Errorf("config of %s: %+v", name, c)
	}
	for _, e := range c.Env {
		if strings.HasPrefix(e, "WHO=") {
			t.Errorf("a build argument stayed in the image's environment: %q", c.Env)
		}
	}
}

// TestPrivilegedBuild: berth build of a multi-stage Dockerfile (RUN on
// the default network, COPY from the context and from a stage, ENV,
// ARG, WORKDIR, USER, CMD, .dockerignore), the result run and
// inspected, then rebuilt from the cache.
func TestPrivilegedBuild(t *testing.T) {
	p := newETopo(t)
	s, err := image.Open(filepath.Join(p.root, "images"))
	if err != nil {
		t.Fatal(err)
	}
	imagetest.BusyboxImage(t, s)
	dir := buildContext(t)
	out, se, err := p.b3("build", "-t", "app:v1", "-t", "app:latest", "--build-arg", "WHO=world", "--label", "built.by=berth", dir)
	if err != nil {
		t.Fatalf("build: %v\n%s\n%s", err, out, se)
	}
	for _, want := range []string{"STEP 1/15: FROM $BASE AS builder", "STEP 15/15: LABEL", "COMMIT app:v1", "Successfully tagged localhost/app:v1", "Successfully tagged localhost/app:latest"} {
		if !strings.Contains(out, want) {
			t.Errorf("build output lacks %q:\n%s", want, out)
		}
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	id := lines[len(lines)-1]
	checkBuilt(t, p, s, "app:v1")
	if img, _ := s.Lookup("app:latest"); img == nil || img.ID != id || img.Config.Labels["built.by"] != "berth" {
		t.Errorf("app:latest %+v, want ID %s with the --label", img, id)
	}
	out, se, err = p.b3("build", "-t", "app:v1", "--build-arg", "WHO=world", "--label", "built.by=berth", dir)
	if err != nil || !strings.Contains(out, "--> Using cache") || !strings.HasSuffix(out, id+"\n") || strings.Contains(out, "built hi") {
		t.Errorf("rebuild: %v, want every step from the cache and ID %s:\n%s\n%s", err, id, out, se)
	}
	if _, se, err := p.b3("build", "-q", "--no-cache", "--build-arg", "WHO=world", "--target", "builder", dir); err != nil {
		t.Errorf("build --target builder: %v %s", err, se)
	}
	scratchBuild(t, p)
	// Step images are hidden; the untagged --target result is not.
	listed := strings.Count(p.mustB(t, "images", "--format", "{{.Repository}}"), "<none>")
	all := strings.Count(p.mustB(t, "images", "-a", "--format", "{{.Repository}}"), "<none>")
	if listed != 1 || all < 10 {
		t.Errorf("untagged images: %d listed, %d with -a; want 1 (the --target result) and every step", listed, all)
	}
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, "Dockerfile"), []byte("FROM localhost/busybox\nRUN exit 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, se, err := p.b3("build", bad); err == nil || !strings.Contains(se, "exit status 3") {
		t.Errorf("failing RUN: %v %s", err, se)
	}
	if ps := p.mustB(t, "ps", "-a", "-q"); ps != "" {
		t.Errorf("build containers left behind: %q", ps)
	}
}

// scratchBuild: a scratch stage gets files from another stage and a
// gzip'd archive ADD extracts; a last stage copies its whole tree.
func scratchBuild(t *testing.T, p *etopo) {
	t.Helper()
	dir := t.TempDir()
	df := "FROM localhost/busybox AS b\nRUN echo made > /x\n" +
		"FROM scratch AS s\nCOPY --from=b /x /deep/dir/x\nADD files.tar.gz /opt/\n" +
		"FROM localhost/busybox\nCOPY --from=s / /\nCMD [\"sh\", \"-c\", \"cat /deep/dir/x /opt/a; stat -c %u /opt/a\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	_ = tw.WriteHeader(&tar.Header{Name: "a", Mode: 0o644, Size: 8, Uid: 42, Typeflag: tar.TypeReg})
	_, _ = tw.Write([]byte("archive\n"))
	_ = tw.Close()
	_ = gz.Close()
	if err := os.WriteFile(filepath.Join(dir, "files.tar.gz"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, se, err := p.b3("build", "-q", "-t", "fromscratch", dir); err != nil {
		t.Fatalf("scratch build: %v %s %s", err, out, se)
	}
	if got := p.mustB(t, "run", "--rm", "--network", "none", "fromscratch"); got != "made\narchive\n42\n" {
		t.Errorf("scratch-built files: %q", got)
	}
}

// dockerBuild runs Debian's Docker 20.10 CLI with the classic builder.
func dockerBuild(t *testing.T, sock string, args ...string) (string, error) {
	t.Helper()
	return dockerCLIBuild(t, "/usr/bin/docker", sock, args...)
}

// dockerCLIBuild runs a docker CLI with DOCKER_BUILDKIT=0.
func dockerCLIBuild(t *testing.T, docker, sock string, args ...string) (string, error) {
	t.Helper()
	if _, err := os.Stat(docker); err != nil {
		t.Skip("needs Debian's docker CLI (/usr/bin/docker)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, docker, append([]string{"-H", "unix://" + sock}, args...)...)
	cmd.Env = []string{"HOME=" + t.TempDir(), "PATH=/usr/bin:/bin", "DOCKER_BUILDKIT=0"}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestPrivilegedDockerBuild: DOCKER_BUILDKIT=0 docker build through
// berth's service builds the same image, with the classic builder's
// output, and the rebuild comes from the cache.
func TestPrivilegedDockerBuild(t *testing.T) {
	p := newETopo(t)
	s, err := image.Open(filepath.Join(p.root, "images"))
	if err != nil {
		t.Fatal(err)
	}
	imagetest.BusyboxImage(t, s)
	sock := p.startServiceIn(t, nil)
	dir := buildContext(t)
	out, err := dockerBuild(t, sock, "build", "-t", "dapp:1", "--build-arg", "WHO=world", dir)
	if err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	for _, want := range []string{"Step 1/14 : FROM $BASE AS builder", " ---> Running in ", "Removing intermediate container", "Successfully built ", "Successfully tagged dapp:1"} {
		if !strings.Contains(out, want) {
			t.Errorf("docker build output lacks %q:\n%s", want, out)
		}
	}
	checkBuilt(t, p, s, "dapp:1")
	out, err = dockerBuild(t, sock, "build", "-q", "-t", "dapp:1", "--build-arg", "WHO=world", dir)
	img, _ := s.Lookup("dapp:1")
	if err != nil || img == nil || strings.TrimSpace(out) != "sha256:"+img.ID {
		t.Errorf("docker build -q: %v %q, want sha256:%v", err, out, img)
	}
	out, err = dockerBuild(t, sock, "build", "--build-arg", "WHO=world", dir)
	if err != nil || strings.Count(out, "Using cache") != 12 {
		t.Errorf("docker rebuild: %v, want 12 steps from the cache:\n%s", err, out)
	}
	out, err = dockerBuild(t, sock, "image", "inspect", "dapp:1")
	var insp []struct {
		Config struct{ WorkingDir, User string }
	}
	if err != nil || json.Unmarshal([]byte(out), &insp) != nil || len(insp) != 1 || insp[0].Config.WorkingDir != "/app" || insp[0].Config.User != "1000" {
		t.Errorf("docker image inspect: %v %s", err, out)
	}
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, "Dockerfile"), []byte("FROM localhost/busybox\nRUN exit 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := dockerBuild(t, sock, "build", bad); exitCode(err) != 3 || !strings.Contains(out, "returned a non-zero code: 3") {
		t.Errorf("failing RUN: %v %s", err, out)
	}
	// A current docker CLI (no buildx here) still has the classic
	// builder with DOCKER_BUILDKIT=0.
	if _, err := os.Stat("/usr/local/bin/docker"); err == nil {
		out, err := dockerCLIBuild(t, "/usr/local/bin/docker", sock, "build", "-t", "dapp:2", "--build-arg", "WHO=world", dir)
		if err != nil || !strings.Contains(out, "Successfully tagged dapp:2") {
			t.Errorf("docker 28 build: %v\n%s", err, out)
		}
	}
}

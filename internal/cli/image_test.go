package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/berthnet/berth/internal/image"
	"github.com/berthnet/berth/internal/image/imagetest"
)

// imageCLI runs berth with --root and --runroot in temporary directories
// (never the machine's /run/berth, where the event journal would go).
type imageCLI struct {
	root, runRoot string
	now           time.Time
}

func newImageCLI(t *testing.T) *imageCLI {
	return &imageCLI{root: t.TempDir(), runRoot: t.TempDir(), now: testNow}
}

func (c *imageCLI) run(stdin io.Reader, args ...string) (stdout, stderr string, code int) {
	var out, errb bytes.Buffer
	env := Env{Stdin: stdin, Stdout: &out, Stderr: &errb, Now: func() time.Time { return c.now }}
	code = Run(context.Background(), append([]string{"--root", c.root, "--runroot", c.runRoot}, args...), env)
	return out.String(), errb.String(), code
}

func (c *imageCLI) store(t *testing.T) *image.Store {
	t.Helper()
	s, err := image.OpenWith(filepath.Join(c.root, "images"), image.Options{Driver: "copy"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var fullID = regexp.MustCompile(`^sha256:[0-9a-f]{64}\n$`)

func TestImportAndImagesFormats(t *testing.T) {
	c := newImageCLI(t)
	tarPath := imagetest.RootfsTar(t, map[string]imagetest.File{"www/index.html": {Content: "Hello from berth\n"}})
	c.now = testNow.Add(-15 * 24 * time.Hour) // built two weeks before the listing
	out, errOut, code := c.run(nil, "import", "--change", `CMD ["httpd","-f","-v","-p","80","-h","/www"]`,
		"--change", "EXPOSE 80", "-c", "LABEL app=banner", "--message", "demo", tarPath, "banner")
	if code != 0 || !fullID.MatchString(out) {
		t.Fatalf("import: code %d out %q err %q", code, out, errOut)
	}
	if !strings.Contains(errOut, "Writing manifest to image destination") {
		t.Errorf("no progress on stderr: %q", errOut)
	}
	id := strings.TrimSpace(strings.TrimPrefix(out, "sha256:"))
	// From stdin, quiet, without a name.
	f, _ := os.Open(tarPath)
	defer f.Close()
	c.now = testNow.Add(-3 * time.Hour)
	out, errOut, code = c.run(f, "import", "-q", "-", "--change", "CMD sh")
	if code != 0 || errOut != "" {
		t.Fatalf("import -: code %d out %q err %q", code, out, errOut)
	}
	id2 := strings.TrimSpace(strings.TrimPrefix(out, "sha256:"))
	c.now = testNow

	out, _, code = c.run(nil, "images")
	want := "REPOSITORY        TAG         IMAGE ID      CREATED      SIZE\n" +
		"<none>            <none>      " + id2[:12] + "  3 hours ago  2.02 MB\n" +
		"localhost/banner  latest      " + id[:12] + "  2 weeks ago  2.02 MB\n"
	if code != 0 || out != want {
		t.Errorf("images:\n%s\nwant:\n%s", out, want)
	}
	out, _, _ = c.run(nil, "images", "-q")
	if out != id2[:12]+"\n"+id[:12]+"\n" {
		t.Errorf("images -q = %q", out)
	}
	out, _, _ = c.run(nil, "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}} {{.Labels}}", "banner")
	if out != "localhost/banner:latest "+id[:12]+" map[app:banner]\n" {
		t.Errorf("images --format = %q", out)
	}
	out, _, _ = c.run(nil, "images", "--format", "table {{.ID}} {{.Containers}}", "--no-trunc", "--filter", "dangling=false")
	if out != "IMAGE ID                                                                 CONTAINERS\nsha256:"+id+"  0\n" {
		t.Errorf("images table --no-trunc = %q", out)
	}
	out, _, _ = c.run(nil, "images", "--format", "json")
	var sums []map[string]any
	if err := json.Unmarshal([]byte(out), &sums); err != nil || len(sums) != 2 {
		t.Fatalf("images --format json: %v\n%s", err, out)
	}
	for _, k := range []string{"Id", "ParentId", "RepoTags", "RepoDigests", "Size", "SharedSize", "VirtualSize", "Labels", "Containers", "Created", "CreatedAt"} {
		if _, ok := sums[1][k]; !ok {
			t.Errorf("JSON lacks %s: %v", k, sums[1])
		}
	}
	if sums[1]["Id"] != id || sums[1]["Names"].([]any)[0] != "localhost/banner:latest" {
		t.Errorf("JSON summary %v", sums[1])
	}
	if _, _, code := c.run(nil, "images", "--format", "{{.Nope"); code != 125 {
		t.Errorf("bad template: code %d", code)
	}
	out, _, _ = c.run(nil, "image", "inspect", "--format", "{{.Config.Cmd}} {{.Comment}} {{.RepoTags}}", "banner")
	if out != "[httpd -f -v -p 80 -h /www] demo [localhost/banner:latest]\n" {
		t.Errorf("image inspect --format = %q", out)
	}
	out, _, _ = c.run(nil, "image", "inspect", id[:5])
	var insp []map[string]any
	if err := json.Unmarshal([]byte(out), &insp); err != nil || len(insp) != 1 || insp[0]["Id"] != id {
		t.Errorf("image inspect: %v %s", err, out)
	}
	if _, _, code := c.run(nil, "image", "exists", "banner"); code != 0 {
		t.Errorf("exists banner: %d", code)
	}
	if _, _, code := c.run(nil, "image", "exists", "nosuch"); code != 1 {
		t.Errorf("exists nosuch: %d", code)
	}
}

func TestImportErrors(t *testing.T) {
	c := newImageCLI(t)
	tarPath := imagetest.BusyboxRootfsTar(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"import", "--change", "RUN make", tarPath}, "--change: invalid change \"RUN make\": instruction RUN is not supported"},
		{[]string{"import", "--change", "EXPOSE 99999", tarPath}, "port \"99999\" is not a number from 1 to 65535"},
		{[]string{"import", tarPath, "Bad:Name"}, "invalid reference format"},
		{[]string{"import", "/nonexistent.tar"}, "no such file"},
		{[]string{"import"}, "requires a tarball path"},
	} {
		_, errOut, code := c.run(nil, tc.args...)
		if code != 125 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: code %d, stderr %q; want 125 and %q", tc.args, code, errOut, tc.want)
		}
	}
	_, errOut, code := c.run(strings.NewReader("not a tarball at all"), "import", "-")
	if code != 125 || !strings.Contains(errOut, "not a tar archive") {
		t.Errorf("junk import: %d %q", code, errOut)
	}
	if out, _, _ := c.run(nil, "images", "-q"); out != "" {
		t.Errorf("failed imports left images: %q", out)
	}
}

func TestRmiExitCodes(t *testing.T) {
	c := newImageCLI(t)
	s := c.store(t)
	img := imagetest.BannerImage(t, s)
	if _, err := s.Mount(img.ID, "bimg-ctr"); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := c.run(nil, "rmi", "nosuch")
	if code != 1 || errOut != "Error: nosuch: image not known\n" || out != "" {
		t.Errorf("rmi nosuch: code %d out %q err %q", code, out, errOut)
	}
	_, errOut, code = c.run(nil, "rmi", "banner")
	if code != 2 || !strings.Contains(errOut, "image used by bimg-ctr: image is in use by a container") {
		t.Errorf("rmi in use: code %d err %q", code, errOut)
	}
	// Both: in use wins (2), both errors printed.
	_, errOut, code = c.run(nil, "rmi", "nosuch", "banner")
	if code != 2 || strings.Count(errOut, "Error:") != 2 {
		t.Errorf("rmi nosuch banner: code %d err %q", code, errOut)
	}
	if _, _, code := c.run(nil, "rmi", "-i", "nosuch"); code != 0 {
		t.Errorf("rmi -i nosuch: %d", code)
	}
	if _, _, code := c.run(nil, "rmi"); code != 125 {
		t.Errorf("rmi without args: %d", code)
	}
	out, _, code = c.run(nil, "rmi", "-f", "banner")
	if code != 0 || out != "Untagged: localhost/banner:latest\nDeleted: "+img.ID+"\n" {
		t.Errorf("rmi -f: code %d out %q", code, out)
	}
	if _, _, code := c.run(nil, "image", "rm", img.ID); code != 1 {
		t.Errorf("second removal: %d", code)
	}
	if err := s.RemoveRootfs("bimg-ctr"); err != nil {
		t.Fatal(err)
	}
}

func TestLoadAndPullCommands(t *testing.T) {
	c := newImageCLI(t)
	s := c.store(t)
	src := imagetest.BusyboxImage(t, s)
	// Take the image back out as a docker-archive, then drop it.
	cfg, err := s.ConfigFile(src.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Remove(src.ID, false); err != nil {
		t.Fatal(err)
	}
	layer, err := tarball.LayerFromFile(imagetest.BusyboxRootfsTar(t))
	if err != nil {
		t.Fatal(err)
	}
	img := mustImage(t, layer, cfg)
	archive := filepath.Join(t.TempDir(), "bb.tar")
	tag, _ := name.NewTag("busybox:saved")
	if err := tarball.WriteToFile(archive, tag, img); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := c.run(nil, "load", "-q", "-i", archive)
	if code != 0 || out != "Loaded image: docker.io/library/busybox:saved\n" || errOut != "" {
		t.Errorf("load: code %d out %q err %q", code, out, errOut)
	}
	f, _ := os.Open(archive)
	defer f.Close()
	if out, _, code := c.run(f, "load"); code != 0 || !strings.Contains(out, "busybox:saved") {
		t.Errorf("load from stdin: %d %q", code, out)
	}

	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	r, _ := name.ParseReference(host+"/test/busybox:1", name.Insecure)
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	id, _ := img.ConfigName()
	out, errOut, code = c.run(nil, "pull", "-q", "--tls-verify=false", host+"/test/busybox:1")
	if code != 0 || out != id.Hex+"\n" || errOut != "" {
		t.Errorf("pull -q: code %d out %q err %q", code, out, errOut)
	}
	_, errOut, code = c.run(nil, "pull", "--tls-verify=false", host+"/test/busybox:1")
	if code != 0 || !strings.Contains(errOut, "Trying to pull "+host+"/test/busybox:1...") {
		t.Errorf("pull: code %d err %q", code, errOut)
	}
	if _, errOut, code := c.run(nil, "pull", "--tls-verify=false", host+"/test/nothing"); code != 125 || !strings.Contains(errOut, "Error: pull "+host+"/test/nothing:latest") {
		t.Errorf("pull of a missing image: %d %q", code, errOut)
	}
	out, _, _ = c.run(nil, "images", "--format", "{{.Repository}}:{{.Tag}}")
	if out != host+"/test/busybox:1\ndocker.io/library/busybox:saved\n" && out != "docker.io/library/busybox:saved\n"+host+"/test/busybox:1\n" {
		t.Errorf("images after load and pull = %q", out)
	}
}

func mustImage(t *testing.T, l v1.Layer, cfg *v1.ConfigFile) v1.Image {
	t.Helper()
	img, err := imageFrom(l, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func imageFrom(l v1.Layer, cfg *v1.ConfigFile) (v1.Image, error) {
	base, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{Architecture: cfg.Architecture, OS: cfg.OS, Created: cfg.Created, Config: cfg.Config})
	if err != nil {
		return nil, err
	}
	return mutate.AppendLayers(base, l)
}

// TestMkbannerScript builds the demo's rootfs with scripts/mkbanner.sh
// and imports it as the script does.
func TestMkbannerScript(t *testing.T) {
	imagetest.BusyboxPath(t)
	tarPath := filepath.Join(t.TempDir(), "rootfs.tar")
	cmd := exec.Command("bash", "../../scripts/mkbanner.sh")
	cmd.Env = append(os.Environ(), "MKBANNER_TAR_ONLY="+tarPath)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mkbanner.sh: %v\n%s", err, out)
	}
	c := newImageCLI(t)
	if _, errOut, code := c.run(nil, "import", "-q", "--change", `CMD ["httpd","-f","-v","-p","80","-h","/www"]`, "--change", "EXPOSE 80", tarPath, "banner"); code != 0 {
		t.Fatalf("import: %d %s", code, errOut)
	}
	s := c.store(t)
	img, err := s.Lookup("banner")
	if err != nil {
		t.Fatal(err)
	}
	rootfs, err := s.Mount(img.ID, "bimg-banner")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.RemoveRootfs("bimg-banner") })
	if b, err := os.ReadFile(filepath.Join(rootfs, "www/index.html")); err != nil || string(b) != "Hello from berth\n" {
		t.Errorf("index.html = %q, %v", b, err)
	}
	if l, err := os.Readlink(filepath.Join(rootfs, "bin/httpd")); err != nil || l != "busybox" {
		t.Errorf("bin/httpd -> %q, %v", l, err)
	}
	if fi, err := os.Stat(filepath.Join(rootfs, "tmp")); err != nil || fi.Mode()&os.ModeSticky == 0 {
		t.Errorf("tmp: %v %v", fi, err)
	}
}

func TestTag(t *testing.T) {
	c := newImageCLI(t)
	s := c.store(t)
	img := imagetest.BusyboxImage(t, s)
	if _, errOut, code := c.run(nil, "tag", "busybox", "banner:v2", "quay.io/me/bb:1"); code != 0 {
		t.Fatalf("tag: %d %s", code, errOut)
	}
	got, err := s.Lookup("banner:v2")
	if err != nil || got.ID != img.ID {
		t.Fatalf("Lookup(banner:v2) = %v, %v", got, err)
	}
	if strings.Join(got.Names, ",") != "localhost/busybox:latest,localhost/banner:v2,quay.io/me/bb:1" {
		t.Errorf("names %v", got.Names)
	}
	if _, errOut, code := c.run(nil, "tag", "nosuch", "x"); code != 125 || !strings.Contains(errOut, "image not known") {
		t.Errorf("tag nosuch: %d %q", code, errOut)
	}
	// rmi of one name only untags.
	out, _, code := c.run(nil, "rmi", "banner:v2")
	if code != 0 || out != "Untagged: localhost/banner:v2\n" {
		t.Errorf("rmi banner:v2: %d %q", code, out)
	}
}

func TestRmiAll(t *testing.T) {
	c := newImageCLI(t)
	s := c.store(t)
	imagetest.BusyboxImage(t, s)
	imagetest.BannerImage(t, s)
	if _, _, code := c.run(nil, "tag", "banner", "banner:v2"); code != 0 {
		t.Fatal("tag")
	}
	out, errOut, code := c.run(nil, "rmi", "-a")
	if code != 0 || strings.Count(out, "Deleted: ") != 2 || strings.Count(out, "Untagged: ") != 3 {
		t.Errorf("rmi -a: %d %q %q", code, out, errOut)
	}
	if out, _, _ := c.run(nil, "images", "-q"); out != "" {
		t.Errorf("images left: %q", out)
	}
}

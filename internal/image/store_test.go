package image_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/berthnet/berth/internal/image"
	"github.com/berthnet/berth/internal/image/imagetest"
)

// copyStore opens a store that never mounts (unit tests run in the host's
// mount namespace).
func copyStore(t *testing.T) *image.Store {
	t.Helper()
	s, err := image.OpenWith(filepath.Join(t.TempDir(), "images"), image.Options{Driver: "copy"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tarLayer makes a layer from entries (name → content; "" with a trailing
// slash is a directory, ".wh." names are whiteouts).
func tarLayer(t *testing.T, files ...[2]string) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f[0], Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(f[1]))}
		if strings.HasSuffix(f[0], "/") {
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			_, _ = tw.Write([]byte(f[1]))
		}
	}
	_ = tw.Close()
	return layerOf(t, buf.Bytes())
}

// twoLayerImage: layer 1 has etc/keep, etc/gone and app/old; layer 2
// whites out etc/gone and makes app/ opaque with app/new.
func twoLayerImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image,
		tarLayer(t, [2]string{"etc/", ""}, [2]string{"etc/keep", "k"}, [2]string{"etc/gone", "g"}, [2]string{"app/", ""}, [2]string{"app/old", "o"}),
		tarLayer(t, [2]string{"etc/.wh.gone", ""}, [2]string{"app/", ""}, [2]string{"app/.wh..wh..opq", ""}, [2]string{"app/new", "n"}),
	)
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.Config(img, v1.Config{Cmd: []string{"sh"}, ExposedPorts: map[string]struct{}{"80/tcp": {}}})
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// noVerify is --tls-verify=false.
var noVerify = false

// serveRegistry runs an OCI registry on loopback and returns its host.
func serveRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func push(t *testing.T, host, repo string, img v1.Image) {
	t.Helper()
	r, err := name.ParseReference(host+"/"+repo, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatalf("push %s: %v", r, err)
	}
}

func checkFlattened(t *testing.T, rootfs string) {
	t.Helper()
	for p, want := range map[string]string{"etc/keep": "k", "app/new": "n"} {
		b, err := os.ReadFile(filepath.Join(rootfs, p))
		if err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", p, b, err, want)
		}
	}
	for _, p := range []string{"etc/gone", "app/old", "etc/.wh.gone", "app/.wh..wh..opq"} {
		if _, err := os.Lstat(filepath.Join(rootfs, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is visible in the rootfs (err %v)", p, err)
		}
	}
}

func TestPullFromLoopbackRegistry(t *testing.T) {
	host := serveRegistry(t)
	src := twoLayerImage(t)
	push(t, host, "team/app:v1", src)
	s := copyStore(t)
	var progress bytes.Buffer
	img, err := s.Pull(context.Background(), host+"/team/app:v1", image.PullOptions{RemoteOptions: image.RemoteOptions{TLSVerify: &noVerify, Progress: &progress}})
	if err != nil {
		t.Fatal(err)
	}
	wantID, _ := src.ConfigName()
	wantDigest, _ := src.Digest()
	if img.ID != wantID.Hex || img.Digest != wantDigest.String() {
		t.Errorf("ID %s digest %s, want %s %s", img.ID, img.Digest, wantID.Hex, wantDigest)
	}
	if len(img.Names) != 1 || img.Names[0] != host+"/team/app:v1" {
		t.Errorf("names %v", img.Names)
	}
	if len(img.Config.Cmd) != 1 || img.Config.ExposedPorts[0] != "80/tcp" || len(img.Layers) != 2 {
		t.Errorf("config %+v layers %v", img.Config, img.Layers)
	}
	for _, line := range []string{"Trying to pull " + host + "/team/app:v1...", "Copying blob sha256:", "Copying config sha256:" + wantID.Hex + "\n", "Writing manifest"} {
		if !strings.Contains(progress.String(), line) {
			t.Errorf("progress lacks %q:\n%s", line, progress.String())
		}
	}
	// Lookup by full name, short ID, full ID, sha256:ID.
	for _, n := range []string{host + "/team/app:v1", img.ID[:3], img.ID, "sha256:" + img.ID} {
		got, err := s.Lookup(n)
		if err != nil || got.ID != img.ID {
			t.Errorf("Lookup(%q) = %v, %v", n, got, err)
		}
	}
	if _, err := s.Lookup(host + "/team/app:v2"); !errors.Is(err, image.ErrNotFound) {
		t.Errorf("Lookup of a missing tag: %v", err)
	}
	// Pulling again skips the blobs.
	progress.Reset()
	if _, err := s.Pull(context.Background(), host+"/team/app:v1", image.PullOptions{RemoteOptions: image.RemoteOptions{TLSVerify: &noVerify, Progress: &progress}}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(progress.String(), "skipped: already exists") {
		t.Errorf("second pull did not skip blobs:\n%s", progress.String())
	}
	rootfs, err := s.Mount(img.ID, "bimg-pull")
	if err != nil {
		t.Fatal(err)
	}
	checkFlattened(t, rootfs)
}

func TestPullPicksThisPlatformFromAnIndex(t *testing.T) {
	host := serveRegistry(t)
	mine := twoLayerImage(t)
	other, err := mutate.AppendLayers(empty.Image, tarLayer(t, [2]string{"other", "x"}))
	if err != nil {
		t.Fatal(err)
	}
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: other, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "s390x"}}},
		mutate.IndexAddendum{Add: mine, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: runtime.GOARCH}}},
	)
	r, _ := name.ParseReference(host+"/multi:latest", name.Insecure)
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatal(err)
	}
	s := copyStore(t)
	img, err := s.Pull(context.Background(), host+"/multi", image.PullOptions{RemoteOptions: image.RemoteOptions{TLSVerify: &noVerify}})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := mine.ConfigName()
	if img.ID != want.Hex {
		t.Errorf("pulled %s, want this platform's %s", img.ID, want.Hex)
	}
}

func TestPullErrors(t *testing.T) {
	host := serveRegistry(t)
	s := copyStore(t)
	if _, err := s.Pull(context.Background(), host+"/nothing:here", image.PullOptions{RemoteOptions: image.RemoteOptions{TLSVerify: &noVerify}}); err == nil || !strings.Contains(err.Error(), "pull "+host+"/nothing:here") {
		t.Errorf("missing image: %v", err)
	}
	if _, err := s.Pull(context.Background(), "Bad/Name", image.PullOptions{}); err == nil {
		t.Error("bad reference pulled")
	}
	if imgs, _ := s.List(); len(imgs) != 0 {
		t.Errorf("failed pulls left images: %v", imgs)
	}
}

func TestConcurrentPullsOfTheSameImage(t *testing.T) {
	host := serveRegistry(t)
	push(t, host, "app:1", twoLayerImage(t))
	dir := filepath.Join(t.TempDir(), "images")
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Separate Store values, as separate processes would have.
			s, err := image.OpenWith(dir, image.Options{Driver: "copy"})
			if err == nil {
				_, err = s.Pull(context.Background(), host+"/app:1", image.PullOptions{RemoteOptions: image.RemoteOptions{TLSVerify: &noVerify}})
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	s, _ := image.OpenWith(dir, image.Options{Driver: "copy"})
	imgs, err := s.List()
	if err != nil || len(imgs) != 1 || len(imgs[0].Names) != 1 {
		t.Fatalf("images %+v, %v", imgs, err)
	}
	if left, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(left) != 0 {
		t.Errorf("tmp not empty: %v", left)
	}
}

// failingLayer breaks its stream halfway, like a dropped connection.
type failingLayer struct{ v1.Layer }

func (f failingLayer) Uncompressed() (io.ReadCloser, error) {
	rc, err := f.Layer.Uncompressed()
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.MultiReader(io.LimitReader(rc, 700), errReader{}), rc}, nil
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestFailedAddLeavesNothingVisible(t *testing.T) {
	s := copyStore(t)
	good := tarLayer(t, [2]string{"a", "a"})
	bad := tarLayer(t, [2]string{"big", strings.Repeat("x", 4096)})
	img, err := mutate.AppendLayers(empty.Image, good, failingLayer{bad})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Add(context.Background(), img, []string{"localhost/broken:latest"}, nil); err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("Add = %v, want the stream error", err)
	}
	if imgs, _ := s.List(); len(imgs) != 0 {
		t.Errorf("a failed add left an image: %+v", imgs)
	}
	badDiff, _ := bad.DiffID()
	if _, err := os.Stat(filepath.Join(s.Dir(), "blobs", "sha256", badDiff.Hex)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the partial blob is visible: %v", err)
	}
	if left, _ := os.ReadDir(filepath.Join(s.Dir(), "tmp")); len(left) != 0 {
		t.Errorf("tmp not empty: %v", left)
	}
	// The same image added properly works (the good blob is reused).
	img2, _ := mutate.AppendLayers(empty.Image, good, bad)
	if _, err := s.Add(context.Background(), img2, []string{"localhost/fixed:latest"}, nil); err != nil {
		t.Fatal(err)
	}
}

func TestLoadDockerArchive(t *testing.T) {
	src := twoLayerImage(t)
	p := filepath.Join(t.TempDir(), "busy.tar")
	tag, _ := name.NewTag("busybox:saved")
	tag2, _ := name.NewTag("quay.io/me/busy:1")
	if err := tarball.MultiRefWriteToFile(p, map[name.Reference]v1.Image{tag: src, tag2: src}); err != nil {
		t.Fatal(err)
	}
	s := copyStore(t)
	loaded, err := s.Load(context.Background(), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := src.ConfigName()
	if len(loaded) == 0 || loaded[0].Image.ID != want.Hex {
		t.Fatalf("loaded %+v", loaded)
	}
	img, err := s.Lookup("busybox:saved")
	if err != nil {
		t.Fatal(err)
	}
	if !contains(img.Names, "docker.io/library/busybox:saved") || !contains(img.Names, "quay.io/me/busy:1") {
		t.Errorf("names %v", img.Names)
	}
	rootfs, err := s.Mount("busybox:saved", "bimg-load")
	if err != nil {
		t.Fatal(err)
	}
	checkFlattened(t, rootfs)
}

func TestLoadOCILayoutDirAndArchive(t *testing.T) {
	src := twoLayerImage(t)
	dir := filepath.Join(t.TempDir(), "oci")
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(src, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "example.com/oci/app:2"})); err != nil {
		t.Fatal(err)
	}
	s := copyStore(t)
	loaded, err := s.Load(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded) != 1 || len(loaded[0].Names) != 1 || loaded[0].Names[0] != "example.com/oci/app:2" {
		t.Fatalf("loaded %+v", loaded)
	}
	// The same layout as a tar (oci-archive), into a fresh store.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	_ = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		h, _ := tar.FileInfoHeader(fi, "")
		h.Name = rel
		if fi.IsDir() {
			h.Name += "/"
		}
		_ = tw.WriteHeader(h)
		if fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			_, _ = tw.Write(b)
		}
		return nil
	})
	_ = tw.Close()
	archive := filepath.Join(t.TempDir(), "app.oci.tar")
	if err := os.WriteFile(archive, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	s2 := copyStore(t)
	if _, err := s2.Load(context.Background(), archive, nil); err != nil {
		t.Fatal(err)
	}
	img, err := s2.Lookup("example.com/oci/app:2")
	if err != nil {
		t.Fatal(err)
	}
	rootfs, err := s2.Mount(img.ID, "bimg-oci")
	if err != nil {
		t.Fatal(err)
	}
	checkFlattened(t, rootfs)
}

func TestLoadRejectsOtherFiles(t *testing.T) {
	p := filepath.Join(t.TempDir(), "junk")
	_ = os.WriteFile(p, []byte("not an archive"), 0o644)
	if _, err := copyStore(t).Load(context.Background(), p, nil); err == nil {
		t.Error("junk loaded")
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func TestImportBusyboxAndCopyRootfs(t *testing.T) {
	s := copyStore(t)
	img := imagetest.BannerImage(t, s)
	if len(img.Names) != 1 || img.Names[0] != "localhost/banner:latest" {
		t.Errorf("names %v", img.Names)
	}
	if strings.Join(img.Config.Cmd, " ") != "httpd -f -v -p 80 -h /www" || len(img.Config.ExposedPorts) != 1 || img.Config.ExposedPorts[0] != "80/tcp" {
		t.Errorf("config %+v", img.Config)
	}
	for _, n := range []string{"banner", "banner:latest", "localhost/banner"} {
		if got, err := s.Lookup(n); err != nil || got.ID != img.ID {
			t.Errorf("Lookup(%q) = %v, %v", n, got, err)
		}
	}
	rootfs, err := s.Mount(img.ID, "bimg-c1")
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(rootfs, "bin/busybox")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("bin/busybox: %v %v", fi, err)
	}
	if l, err := os.Readlink(filepath.Join(rootfs, "bin/httpd")); err != nil || l != "busybox" {
		t.Errorf("bin/httpd -> %q %v", l, err)
	}
	if b, _ := os.ReadFile(filepath.Join(rootfs, "www/index.html")); string(b) != "Hello from berth\n" {
		t.Errorf("index.html = %q", b)
	}
	if drv, _ := s.ContainerDriver("bimg-c1"); drv != "copy" {
		t.Errorf("driver %q", drv)
	}
	// Idempotent, and the container's writes stay.
	if err := os.WriteFile(filepath.Join(rootfs, "written"), []byte("w"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Unmount("bimg-c1"); err != nil {
		t.Fatal(err)
	}
	again, err := s.Mount(img.ID, "bimg-c1")
	if err != nil || again != rootfs {
		t.Fatalf("second Mount = %s, %v", again, err)
	}
	if _, err := os.Stat(filepath.Join(again, "written")); err != nil {
		t.Error("the container's file is gone after Unmount+Mount")
	}
	if _, err := s.Mount(img.ID, "../evil"); err == nil {
		t.Error("a container ID with a slash was accepted")
	}
	if _, err := s.Mount("nosuchimage", "bimg-c2"); !errors.Is(err, image.ErrNotFound) {
		t.Errorf("Mount of a missing image: %v", err)
	}
	// rmi refuses while the container uses it.
	if cs, _ := s.Containers(img.ID); len(cs) != 1 || cs[0] != "bimg-c1" {
		t.Errorf("containers %v", cs)
	}
	if _, err := s.Remove("banner", false); !errors.Is(err, image.ErrInUse) {
		t.Errorf("Remove while in use: %v", err)
	}
	if err := s.RemoveRootfs("bimg-c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(rootfs)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("container dir left: %v", err)
	}
	if err := s.RemoveRootfs("bimg-c1"); err != nil {
		t.Errorf("second RemoveRootfs: %v", err)
	}
	res, err := s.Remove("banner", false)
	if err != nil || res.Deleted != img.ID {
		t.Fatalf("Remove = %+v, %v", res, err)
	}
	if blobs, _ := os.ReadDir(filepath.Join(s.Dir(), "blobs", "sha256")); len(blobs) != 0 {
		t.Errorf("blobs left after the last image went: %d", len(blobs))
	}
}

func TestRemoveForceKeepsLayersForContainers(t *testing.T) {
	s := copyStore(t)
	img := imagetest.BusyboxImage(t, s)
	if _, err := s.Mount(img.ID, "bimg-f1"); err != nil {
		t.Fatal(err)
	}
	res, err := s.Remove(img.ID[:12], true)
	if err != nil || res.Deleted != img.ID {
		t.Fatalf("Remove -f = %+v, %v", res, err)
	}
	if _, err := s.Lookup(img.ID); !errors.Is(err, image.ErrNotFound) {
		t.Errorf("image still there: %v", err)
	}
	// The layer blob stays for the container until it goes.
	if _, err := os.Stat(filepath.Join(s.Dir(), "blobs", "sha256", strings.TrimPrefix(img.Layers[0], "sha256:"))); err != nil {
		t.Errorf("layer of a used image deleted: %v", err)
	}
	if err := s.RemoveRootfs("bimg-f1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), "blobs", "sha256", strings.TrimPrefix(img.Layers[0], "sha256:"))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("layer kept after its last user: %v", err)
	}
}

func TestRemoveUntagsWhenOtherNamesRemain(t *testing.T) {
	s := copyStore(t)
	src := twoLayerImage(t)
	if _, err := s.Add(context.Background(), src, []string{"localhost/a:1", "localhost/b:1"}, nil); err != nil {
		t.Fatal(err)
	}
	res, err := s.Remove("localhost/a:1", false)
	if err != nil || res.Deleted != "" || fmt.Sprint(res.Untagged) != "[localhost/a:1]" {
		t.Fatalf("Remove = %+v, %v", res, err)
	}
	if _, err := s.Add(context.Background(), src, []string{"localhost/a:1"}, nil); err != nil {
		t.Fatal(err)
	}
	id, _ := src.ConfigName()
	if _, err := s.Remove(id.Hex[:12], false); err == nil || !strings.Contains(err.Error(), "more than one name") {
		t.Errorf("Remove by ID of a multi-name image: %v", err)
	}
	if res, err := s.Remove("localhost/a:1", false); err != nil || len(res.Untagged) != 1 {
		t.Fatalf("untag a:1 again: %+v %v", res, err)
	}
	img, err := s.Lookup("localhost/b:1")
	if err != nil || fmt.Sprint(img.Names) != "[localhost/b:1]" {
		t.Fatalf("after untag: %+v %v", img, err)
	}
	// Adding a name another image holds moves it.
	other, _ := mutate.AppendLayers(empty.Image, tarLayer(t, [2]string{"z", "z"}))
	if _, err := s.Add(context.Background(), other, []string{"localhost/b:1"}, nil); err != nil {
		t.Fatal(err)
	}
	old, _ := s.Lookup(img.ID)
	if len(old.Names) != 0 {
		t.Errorf("the old image kept the moved name: %v", old.Names)
	}
}

func TestReset(t *testing.T) {
	s := copyStore(t)
	img := imagetest.BusyboxImage(t, s)
	if _, err := s.Mount(img.ID, "bimg-r1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Reset(); err != nil {
		t.Fatal(err)
	}
	if imgs, _ := s.List(); len(imgs) != 0 {
		t.Errorf("images left: %v", imgs)
	}
	for _, d := range []string{"blobs/sha256", "layers", "containers"} {
		if ents, _ := os.ReadDir(filepath.Join(s.Dir(), d)); len(ents) != 0 {
			t.Errorf("%s not empty after reset", d)
		}
	}
	// Still usable.
	imagetest.BusyboxImage(t, s)
}

// A hard link to a file of a lower layer works: the flattened copy
// holds the target.
func TestHardlinkIntoLowerLayer(t *testing.T) {
	rootfs := mountHardlinkImage(t, copyStore(t), "bimg-hl")
	a, _ := os.Stat(filepath.Join(rootfs, "again"))
	b, _ := os.Stat(filepath.Join(rootfs, "etc/keep"))
	if a == nil || b == nil || !os.SameFile(a, b) {
		t.Error("again is not a hard link of etc/keep")
	}
}

func hardlinkLayer(t *testing.T, name, target string) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	_ = tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: target})
	_ = tw.Close()
	return layerOf(t, buf.Bytes())
}

func layerOf(t *testing.T, data []byte) v1.Layer {
	t.Helper()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// mountHardlinkImage stores an image whose top layer hard-links a file of
// a lower layer (again -> etc/keep) and mounts it for container id.
func mountHardlinkImage(t *testing.T, s *image.Store, id string) string {
	t.Helper()
	img, err := mutate.AppendLayers(twoLayerImage(t), hardlinkLayer(t, "again", "etc/keep"))
	if err != nil {
		t.Fatal(err)
	}
	stored, err := s.Add(context.Background(), img, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	rootfs, err := s.Mount(stored.ID, id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.RemoveRootfs(id) })
	return rootfs
}

func TestIntermediateImagesHideWithoutAName(t *testing.T) {
	s := copyStore(t)
	img, err := mutate.AppendLayers(empty.Image, tarLayer(t, [2]string{"a", "a"}))
	if err != nil {
		t.Fatal(err)
	}
	added, err := s.Add(context.Background(), img, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetIntermediate(added.ID, true); err != nil {
		t.Fatal(err)
	}
	got, err := s.Lookup(added.ID)
	if err != nil || !got.Intermediate || !got.Hidden() {
		t.Fatalf("marked image %+v %v: want intermediate and hidden", got, err)
	}
	if _, err := s.Tag(added.ID, "named"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Lookup("named"); got == nil || got.Hidden() {
		t.Errorf("a named intermediate image is hidden: %+v", got)
	}
	if err := s.SetIntermediate(added.ID, false); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Lookup(added.ID); got.Intermediate {
		t.Error("the mark stayed")
	}
	if err := s.SetIntermediate(strings.Repeat("0", 64), true); !errors.Is(err, image.ErrNotFound) {
		t.Errorf("marking a missing image: %v", err)
	}
}

package cli

import (
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/berthnet/berth/internal/image/imagetest"
)

func TestSaveLoadTagPushPruneCommands(t *testing.T) {
	c := newImageCLI(t)
	s := c.store(t)
	bb := imagetest.BusyboxImage(t, s)
	banner := imagetest.BannerImage(t, s)
	if _, errOut, code := c.run(nil, "tag", "busybox", "bb:2", "quay.io/me/bb:3"); code != 0 {
		t.Fatalf("tag: %d %s", code, errOut)
	}
	for _, format := range []string{"docker-archive", "oci-archive"} {
		archive := filepath.Join(t.TempDir(), "a.tar")
		args := []string{"save", "--format", format, "-o", archive, "bb:2"}
		if format == "docker-archive" {
			args = append(args, "banner")
		}
		if _, errOut, code := c.run(nil, args...); code != 0 {
			t.Fatalf("%v: %d %s", args, code, errOut)
		}
		c2 := newImageCLI(t)
		out, errOut, code := c2.run(nil, "load", "-q", "-i", archive)
		want := "Loaded image: localhost/bb:2\n"
		if format == "docker-archive" {
			want += "Loaded image: localhost/banner:latest\n"
		}
		if lines := strings.SplitAfter(out, "\n"); len(lines) == 3 && lines[1]+lines[0] == want {
			out = want // several images: any order
		}
		if code != 0 || out != want {
			t.Errorf("load of %s: %d %q %s", format, code, out, errOut)
		}
		if out, _, _ := c2.run(nil, "images", "-q", "--no-trunc"); !strings.Contains(out, bb.ID) {
			t.Errorf("%s: ID changed: %q", format, out)
		}
	}
	if _, errOut, code := c.run(nil, "save", "--format", "oci-archive", "-o", filepath.Join(t.TempDir(), "x"), "bb:2", "banner"); code != 125 || !strings.Contains(errOut, "only supported with docker-archive") {
		t.Errorf("oci-archive of two: %d %s", code, errOut)
	}
	if _, errOut, code := c.run(nil, "save", "-o", filepath.Join(t.TempDir(), "x"), "nosuch"); code != 125 || !strings.Contains(errOut, "nosuch: image not known") {
		t.Errorf("save nosuch: %d %s", code, errOut)
	}

	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	digestFile := filepath.Join(t.TempDir(), "digest")
	_, errOut, code := c.run(nil, "push", "--tls-verify=false", "--digestfile", digestFile, "banner", "docker://"+host+"/demo/banner:1")
	if code != 0 || !strings.Contains(errOut, "Writing manifest to image destination") {
		t.Fatalf("push: %d %s", code, errOut)
	}
	if b, err := os.ReadFile(digestFile); err != nil || !strings.HasPrefix(string(b), "sha256:") {
		t.Errorf("digestfile %q %v", b, err)
	}
	if _, errOut, code := c.run(nil, "push", "banner"); code != 125 || !strings.Contains(errOut, "localhost/") {
		t.Errorf("push to localhost: %d %s", code, errOut)
	}
	if _, errOut, code := c.run(nil, "push", "-q", "--tls-verify=false", "busybox", host+"/demo/bb:1"); code != 0 || errOut != "" {
		t.Fatalf("push -q: %d %s", code, errOut)
	}
	c3 := newImageCLI(t)
	out, errOut, code := c3.run(nil, "pull", "-q", "--tls-verify=false", host+"/demo/banner:1", host+"/demo/bb:1")
	if code != 0 || out != banner.ID+"\n"+bb.ID+"\n" {
		t.Errorf("pull of the pushed image: %d %q %s", code, out, errOut)
	}

	// Prune: dangling only, then all; a declined prompt removes nothing.
	if _, _, code := c.run(nil, "rmi", "localhost/bb:2", "quay.io/me/bb:3"); code != 0 {
		t.Fatal("untag")
	}
	dangling := imagetest.Import(t, s, "", nil, "ENV D=1")
	if out, _, _ := c.run(strings.NewReader("n\n"), "image", "prune"); !strings.Contains(out, "removes all dangling images") || strings.Contains(out, dangling.ID) {
		t.Errorf("declined prune: %q", out)
	}
	if out, _, _ := c.run(nil, "images", "--filter", "dangling=true", "-q", "--no-trunc"); out != "sha256:"+dangling.ID+"\n" {
		t.Errorf("dangling filter: %q", out)
	}
	if out, _, code := c.run(nil, "image", "prune", "-f"); code != 0 || out != dangling.ID+"\n" {
		t.Errorf("prune -f: %d %q", code, out)
	}
	if out, _, code := c.run(nil, "image", "prune", "-a", "-f"); code != 0 || strings.Count(out, "\n") != 2 {
		t.Errorf("prune -a -f: %d %q", code, out)
	}
	if out, _, _ := c.run(nil, "images", "-q"); out != "" {
		t.Errorf("left after prune -a: %q", out)
	}
}

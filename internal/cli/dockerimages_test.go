package cli

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/berthnet/berth/internal/image"
	"github.com/berthnet/berth/internal/image/imagetest"
)

// dockerCLI runs Docker's own CLI against sock; it skips the test when
// the CLI is not installed.
func dockerCLI(t *testing.T, sock string) func(wantOK bool, args ...string) string {
	t.Helper()
	docker, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("docker CLI not installed (Debian package docker.io; scripts/deps.sh installs it)")
	}
	return dockerCLIAt(t, docker, sock)
}

// dockerCLIs lists the different docker CLIs installed: the first on
// PATH and Debian's /usr/bin/docker (20.10) when that is another one.
// It skips the test when there is none.
func dockerCLIs(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, name := range []string{"docker", "/usr/bin/docker"} {
		p, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		if r, err := filepath.EvalSymlinks(p); err == nil && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		t.Skip("docker CLI not installed (Debian package docker.io; scripts/deps.sh installs it)")
	}
	return out
}

// dockerCLIAt runs the docker CLI docker against sock.
func dockerCLIAt(t *testing.T, docker, sock string) func(wantOK bool, args ...string) string {
	t.Helper()
	home := t.TempDir()
	return func(wantOK bool, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, docker, append([]string{"-H", "unix://" + sock}, args...)...)
		cmd.Env = []string{"HOME=" + home, "PATH=/usr/bin:/bin"}
		out, err := cmd.CombinedOutput()
		if (err == nil) != wantOK {
			t.Fatalf("%s %s: %v\n%s", docker, strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
}

// TestDockerCLIVolumes drives berth's volumes with docker volume.
func TestDockerCLIVolumes(t *testing.T) {
	tw := newTestWorld(t, "")
	run := dockerCLI(t, startService(t, tw))
	if got := run(true, "volume", "create", "--label", "app=db", "data"); got != "data" {
		t.Fatalf("create: %q", got)
	}
	run(true, "volume", "create", "other")
	// The volume is berth's: its data directory exists under the root.
	mp := run(true, "volume", "inspect", "-f", "{{.Mountpoint}} {{.Driver}} {{.Scope}} {{.Labels.app}}", "data")
	dir, _, _ := strings.Cut(mp, " ")
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() || !strings.HasSuffix(mp, "/volumes/data/_data local local db") {
		t.Fatalf("inspect %q: %v", mp, err)
	}
	if got := run(true, "volume", "ls", "-q"); got != "data\nother" {
		t.Fatalf("ls: %q", got)
	}
	if got := run(true, "volume", "ls", "-q", "--filter", "label=app=db"); got != "data" {
		t.Fatalf("ls label: %q", got)
	}
	if out := run(false, "volume", "create", "-o", "type=nfs", "x"); !strings.Contains(out, "driver options") {
		t.Fatalf("driver opts: %q", out)
	}
	if got := run(true, "volume", "rm", "data"); got != "data" {
		t.Fatalf("rm: %q", got)
	}
	if _, err := os.Stat(filepath.Dir(dir)); !os.IsNotExist(err) {
		t.Fatalf("volume directory after rm: %v", err)
	}
	if out := run(false, "volume", "inspect", "data"); !strings.Contains(strings.ToLower(out), "no such volume") {
		t.Fatalf("inspect removed: %q", out)
	}
	mustRun(t, tw, "volume", "exists", "other")
	// Prune leaves named volumes alone unless told otherwise.
	run(true, "volume", "prune", "-f")
	mustRun(t, tw, "volume", "exists", "other")
	if out := run(true, "volume", "prune", "--filter", "all=true", "-f"); !strings.Contains(out, "other") {
		t.Fatalf("prune all: %q", out)
	}
	if got := run(true, "volume", "ls", "-q"); got != "" {
		t.Fatalf("ls after prune: %q", got)
	}
}

// TestDockerCLIImages lists, inspects, tags and removes an imported
// busybox image with docker.
func TestDockerCLIImages(t *testing.T) {
	tw := newTestWorld(t, "")
	st, err := image.Open(filepath.Join(tw.env.getenv("BERTH_ROOT"), "images"))
	if err != nil {
		t.Fatal(err)
	}
	img := imagetest.Import(t, st, "localhost/bb:1", nil, `CMD ["sh"]`, `ENV PATH=/bin`, `WORKDIR /srv`, `EXPOSE 80`, `LABEL app=web`)
	run := dockerCLI(t, startService(t, tw))
	if got := run(true, "images", "--format", "{{.Repository}} {{.Tag}} {{.ID}}"); got != "localhost/bb 1 "+img.ID[:12] {
		t.Fatalf("images: %q", got)
	}
	got := run(true, "image", "inspect", "-f", "{{.Id}} {{.Os}} {{json .Config.Cmd}} {{.Config.WorkingDir}} {{.Config.Labels.app}} {{len .RootFS.Layers}}", "localhost/bb:1")
	if got != "sha256:"+img.ID+` linux ["sh"] /srv web 1` {
		t.Fatalf("inspect: %q", got)
	}
	run(true, "tag", "localhost/bb:1", "team/app:v2")
	if got := run(true, "images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", "reference=team/*"); got != "team/app:v2" {
		t.Fatalf("images after tag: %q", got)
	}
	// The tag is berth's: the CLI finds the image by it.
	mustRun(t, tw, "image", "exists", "docker.io/team/app:v2")
	if got := run(true, "rmi", "team/app:v2"); got != "Untagged: team/app:v2" {
		t.Fatalf("rmi tag: %q", got)
	}
	if out := run(false, "rmi", "nosuch"); !strings.Contains(out, "No such image: nosuch") {
		t.Fatalf("rmi missing: %q", out)
	}
	// A container's root filesystem holds the image: 409 without force.
	cs, err := image.OpenWith(st.Dir(), image.Options{Driver: "copy"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.Mount(img.ID, "c1"); err != nil {
		t.Fatal(err)
	}
	if out := run(false, "rmi", "localhost/bb:1"); !strings.Contains(out, "conflict") || !strings.Contains(out, "c1") {
		t.Fatalf("rmi of a used image: %q", out)
	}
	if err := cs.RemoveRootfs("c1"); err != nil {
		t.Fatal(err)
	}
	got = run(true, "rmi", img.ID[:12])
	if got != "Untagged: localhost/bb:1\nDeleted: sha256:"+img.ID {
		t.Fatalf("rmi: %q", got)
	}
	if imgs, err := st.List(); err != nil || len(imgs) != 0 {
		t.Fatalf("store after rmi: %v %v", imgs, err)
	}
}

// TestDockerImageArchive round-trips images through the API's save and
// load with Docker's client and with Docker's CLI: saved, removed,
// loaded back with the same IDs and names; docker history reads the
// image's steps.
func TestDockerImageArchive(t *testing.T) {
	tw := newTestWorld(t, "")
	st, err := image.Open(filepath.Join(tw.env.getenv("BERTH_ROOT"), "images"))
	if err != nil {
		t.Fatal(err)
	}
	img := imagetest.Import(t, st, "localhost/bb:1", nil, `CMD ["sh"]`, `LABEL app=web`)
	sock := startService(t, tw)
	c, err := client.New(client.WithHost("unix://" + sock))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	rc, err := c.ImageSave(ctx, []string{"localhost/bb:1"})
	if err != nil {
		t.Fatal(err)
	}
	archive, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ImageRemove(ctx, "localhost/bb:1", client.ImageRemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	lr, err := c.ImageLoad(ctx, bytes.NewReader(archive), client.ImageLoadWithQuiet(true))
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(lr)
	lr.Close()
	if string(out) != `{"stream":"Loaded image: localhost/bb:1\n"}`+"\n" {
		t.Fatalf("load: %q", out)
	}
	if in, err := c.ImageInspect(ctx, "localhost/bb:1"); err != nil || in.ID != "sha256:"+img.ID {
		t.Fatalf("inspect after load: %v", err)
	}
	h, err := c.ImageHistory(ctx, "localhost/bb:1")
	if err != nil || len(h.Items) == 0 || h.Items[0].ID != "sha256:"+img.ID || h.Items[len(h.Items)-1].Size <= 0 {
		t.Fatalf("history: %+v %v", h, err)
	}

	for _, docker := range dockerCLIs(t) {
		run := dockerCLIAt(t, docker, sock)
		file := filepath.Join(t.TempDir(), "bb.tar")
		run(true, "save", "-o", file, "localhost/bb:1")
		run(true, "rmi", "localhost/bb:1")
		if out := run(true, "load", "-i", file); out != "Loaded image: localhost/bb:1" {
			t.Fatalf("%s load: %q", docker, out)
		}
		if got := run(true, "image", "inspect", "-f", "{{.Id}}", "localhost/bb:1"); got != "sha256:"+img.ID {
			t.Fatalf("%s inspect after load: %q", docker, got)
		}
		if got := run(true, "history", "--no-trunc", "--format", "{{.ID}}", "localhost/bb:1"); !strings.HasPrefix(got, "sha256:"+img.ID) {
			t.Fatalf("%s history: %q", docker, got)
		}
		if out := run(false, "save", "-o", file, "nosuch"); !strings.Contains(out, "No such image: nosuch") {
			t.Fatalf("%s save of a missing image: %q", docker, out)
		}
	}
}

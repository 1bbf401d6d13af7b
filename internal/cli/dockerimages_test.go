package cli

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	home := t.TempDir()
	return func(wantOK bool, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, docker, append([]string{"-H", "unix://" + sock}, args...)...)
		cmd.Env = []string{"HOME=" + home, "PATH=/usr/bin:/bin"}
		out, err := cmd.CombinedOutput()
		if (err == nil) != wantOK {
			t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
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

package cli

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthnet/berth/internal/image"
	"github.com/berthnet/berth/internal/image/imagetest"
)

// TestPrivilegedEvents: berth run, stop and rm record create, start,
// died, stop and remove in order with the container's name, image and
// labels; berth events lists and filters them, and Docker's CLI reads
// them from the API between --since and --until.
func TestPrivilegedEvents(t *testing.T) {
	p := newDockerTopo(t)
	s, err := image.Open(filepath.Join(p.root, "images"))
	if err != nil {
		t.Fatal(err)
	}
	imagetest.BannerImage(t, s)
	since := time.Now().Add(-time.Second)
	id := strings.TrimSpace(p.mustB(t, "run", "-d", "--name", "ev", "-l", "app=evapp", "banner"))
	p.mustB(t, "stop", "-t", "0", "ev")
	p.mustB(t, "rm", "ev")
	p.mustB(t, "volume", "create", "evvol")
	until := time.Now().Add(time.Second)

	out := p.mustB(t, "events", "--stream=false", "--since", since.Format(time.RFC3339Nano), "--filter", "container=ev",
		"--format", `{{.Status}} {{.Name}} {{.ID}} {{.Image}} {{index .Attributes "app"}} {{.ContainerExitCode}}`)
	want := ""
	for _, a := range []string{"create", "start", "died", "stop", "remove"} {
		code := "0"
		if a == "died" {
			code = "137"
		}
		want += fmt.Sprintf("%s ev %s banner evapp %s\n", a, id, code)
	}
	if out != want {
		t.Errorf("berth events:\n%s\nwant:\n%s", out, want)
	}
	if out := p.mustB(t, "events", "--stream=false", "--filter", "event=start"); !strings.Contains(out, " container start "+id+" (image=banner, name=ev, app=evapp)\n") ||
		strings.Count(out, "\n") != 1 {
		t.Errorf("berth events --filter event=start:\n%s", out)
	}
	if out := p.mustB(t, "events", "--stream=false", "--filter", "type=volume", "--format", "json"); !strings.Contains(out, `"Name":"evvol","Status":"create"`) {
		t.Errorf("volume event: %s", out)
	}

	out = p.mustD(t, "events", "--since", fmt.Sprint(since.Unix()), "--until", fmt.Sprint(until.Unix()+1),
		"--filter", "container=ev", "--format", "{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}} {{.Actor.Attributes.image}} {{.Actor.Attributes.app}} {{.Actor.Attributes.exitCode}} {{.Status}} {{.From}}")
	want = ""
	for _, a := range []string{"create", "start", "die", "stop", "destroy"} {
		code := "<no value>"
		if a == "die" {
			code = "137"
		}
		want += fmt.Sprintf("%s %s ev banner evapp %s %s banner\n", a, id, code, a)
	}
	if out+"\n" != want {
		t.Errorf("docker events:\n%s\nwant:\n%s", out, want)
	}
	if out := p.mustD(t, "events", "--since", fmt.Sprint(since.Unix()), "--until", fmt.Sprint(until.Unix()+1),
		"--filter", "type=volume", "--format", "{{.Action}} {{.Actor.ID}}"); out != "create evvol" {
		t.Errorf("docker events volumes: %q", out)
	}
}

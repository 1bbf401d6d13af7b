package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/berthnet/berth/internal/engine"
	"github.com/berthnet/berth/internal/network"
	"github.com/berthnet/berth/internal/runopts"
)

// psFixture is a running container in a pod, an exited one and a
// created one.
func psFixture() (psInfo, []*engine.Container) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	pod := &engine.Pod{ID: strings.Repeat("b", 64), Name: "pp", InfraID: strings.Repeat("c", 64)}
	infra := &engine.Container{Config: engine.Config{ID: pod.InfraID, Name: "bbbbbbbbbbbb-infra", Created: t0, Pod: pod.ID, Infra: true,
		Args: []string{"/catatonit", "-P"}, Ports: []network.PortMapping{{ContainerPort: 81, HostPort: 8081, Range: 1, Protocol: "tcp"}},
		Net: runopts.NetMode{Kind: runopts.ModeBridge, Networks: []runopts.NetworkRequest{{}}}},
		State: engine.State{Status: engine.StateRunning, StartedAt: t0, Pid: 10}}
	web := &engine.Container{Config: engine.Config{ID: strings.Repeat("a", 64), Name: "web", Created: t0.Add(time.Minute), Pod: pod.ID,
		ImageID: "img1", Image: "bb", Args: []string{"httpd", "-f", "-v", "-p", "80", "-h", "/www"}, Labels: map[string]string{"a": "b"}},
		State: engine.State{Status: engine.StateRunning, StartedAt: t0.Add(time.Minute), Pid: 11}}
	done := &engine.Container{Config: engine.Config{ID: strings.Repeat("d", 64), Name: "done", Created: t0.Add(2 * time.Minute),
		ImageID: "img1", Image: "bb", Args: []string{"sh", "-c", "exit 3"},
		Net: runopts.NetMode{Kind: runopts.ModeBridge, Networks: []runopts.NetworkRequest{{Name: "n1"}}}},
		State: engine.State{Status: engine.StateStopped, StartedAt: t0.Add(2 * time.Minute), FinishedAt: t0.Add(3 * time.Minute), ExitCode: 3}}
	idle := &engine.Container{Config: engine.Config{ID: strings.Repeat("e", 64), Name: "idle", Created: t0.Add(3 * time.Minute), Rootfs: "/r", Args: []string{"true"}},
		State: engine.State{Status: engine.StateCreated}}
	in := psInfo{now: t0.Add(time.Hour), pods: map[string]*engine.Pod{pod.ID: pod}, defNet: "podman",
		images: func(id string) string { return map[string]string{"img1": "localhost/bb:latest"}[id] }}
	cs := []*engine.Container{infra, web, done, idle}
	in.byID = map[string]*engine.Container{}
	for _, c := range cs {
		in.byID[c.Config.ID] = c
	}
	return in, cs
}

func TestPsRows(t *testing.T) {
	in, cs := psFixture()
	web := in.row(cs[1])
	if web.Image != "localhost/bb:latest" || web.ID() != "aaaaaaaaaaaa" || web.Command() != "httpd -f -v -p 80..." || web.Pod() != "bbbbbbbbbbbb" ||
		web.Ports() != "0.0.0.0:8081->81/tcp" || web.State() != "Up 59 minutes ago" || web.PodName != "" {
		t.Errorf("web: %+v %q %q %q", web.psContainer, web.Command(), web.Ports(), web.State())
	}
	web.noTrunc = true
	if web.Command() != "httpd -f -v -p 80 -h /www" || web.ID() != strings.Repeat("a", 64) {
		t.Errorf("--no-trunc: %q %q", web.Command(), web.ID())
	}
	done := in.row(cs[2])
	if done.psContainer.State != "exited" || !done.Exited || done.ExitedAt != cs[2].State.FinishedAt.Unix() || done.Status != "Exited (3) 57 minutes ago" || done.Networks() != "n1" {
		t.Errorf("done: %+v", done.psContainer)
	}
	idle := in.row(cs[3])
	if idle.Status != "Created" || idle.ExitedAt != (time.Time{}).Unix() || idle.Image != "/r" || idle.psContainer.Ports != nil {
		t.Errorf("idle: %+v", idle.psContainer)
	}
	in.withPod = true
	if r := in.row(cs[0]); r.PodName != "pp" || !r.IsInfra || r.Networks() != "podman" {
		t.Errorf("infra with --pod: %+v", r.psContainer)
	}
}

func TestPsFiltersAndSort(t *testing.T) {
	in, cs := psFixture()
	var rows []psRow
	for _, c := range cs {
		rows = append(rows, in.row(c))
	}
	for _, c := range []struct {
		filters []string
		want    string
	}{
		{nil, "bbbbbbbbbbbb-infra web done idle"},
		{[]string{"status=running"}, "bbbbbbbbbbbb-infra web"},
		{[]string{"status=exited", "status=created"}, "done idle"},
		{[]string{"status=running", "label=a"}, "web"},
		{[]string{"label=a=c"}, ""},
		{[]string{"exited=3"}, "done"},
		{[]string{"exited=0"}, ""},
		{[]string{"pod=pp"}, "bbbbbbbbbbbb-infra web"},
		{[]string{"pod=bbb"}, "bbbbbbbbbbbb-infra web"},
		{[]string{"ancestor=bb"}, "web done"},
		{[]string{"ancestor=localhost/bb:latest"}, "web done"},
		{[]string{"ancestor=img"}, "web done"},
		{[]string{"network=podman"}, "bbbbbbbbbbbb-infra"},
		{[]string{"name=^d"}, "done"},
		{[]string{"id=eee"}, "idle"},
	} {
		match, err := parsePsFilters(c.filters)
		if err != nil {
			t.Fatalf("%v: %v", c.filters, err)
		}
		var got []string
		for _, r := range rows {
			if match(r, in) {
				got = append(got, r.Names())
			}
		}
		if g := strings.Join(got, " "); g != c.want {
			t.Errorf("%v: %q, want %q", c.filters, g, c.want)
		}
	}
	for _, bad := range []string{"bogus=1", "status=up", "exited=x", "name=(", "id"} {
		if _, err := parsePsFilters([]string{bad}); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	if err := sortPs(rows, "names"); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range rows {
		names = append(names, r.Names())
	}
	if g := strings.Join(names, " "); g != "bbbbbbbbbbbb-infra done idle web" {
		t.Errorf("sorted by names: %s", g)
	}
	if err := sortPs(rows, "bogus"); err == nil {
		t.Error("--sort bogus accepted")
	}
}

func FuzzPsFilters(f *testing.F) {
	for _, s := range []string{"status=running", "label=a=b", "exited=3", "name=^w", "pod=pp", "bogus", "ancestor="} {
		f.Add(s)
	}
	in, cs := psFixture()
	f.Fuzz(func(t *testing.T, filter string) {
		match, err := parsePsFilters([]string{filter})
		if err != nil {
			return
		}
		for _, c := range cs {
			match(in.row(c), in)
		}
	})
}

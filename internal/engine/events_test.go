package engine

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/berthnet/berth/internal/events"
)

func readEvents(t *testing.T, j *events.Journal) []events.Event {
	t.Helper()
	var out []events.Event
	if err := j.Read(context.Background(), events.Query{}, func(e events.Event) error { out = append(out, e); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestVolumeEvents(t *testing.T) {
	e := newTestEngine(t)
	if _, err := e.CreateVolume(VolumeOptions{Name: "data"}); err != nil {
		t.Fatal(err)
	}
	if err := e.RemoveVolume("data", false); err != nil {
		t.Fatal(err)
	}
	got := readEvents(t, e.Events())
	if len(got) != 2 || got[0].Action != "create" || got[1].Action != "remove" || got[1].Type != events.TypeVolume || got[1].Name != "data" {
		t.Fatalf("events: %+v", got)
	}
	if e.Events().Path() != events.PathIn(e.cfg.RunRoot) {
		t.Errorf("journal at %s", e.Events().Path())
	}
}

func TestContainerEventAttributes(t *testing.T) {
	c := &Container{Config: Config{ID: "abc", Name: "web", Image: "busybox", Pod: "p1", Labels: map[string]string{"app": "x"}}}
	ev := ContainerEvent(c, "died", exitAttrs(3))
	if ev.Type != events.TypeContainer || ev.Action != "died" || ev.Name != "web" || ev.Image != "busybox" ||
		ev.Attributes["app"] != "x" || ev.Attributes["exitCode"] != "3" || ev.Attributes["pod"] != "p1" {
		t.Fatalf("%+v", ev)
	}
	if c.Config.Labels["exitCode"] != "" {
		t.Fatal("the container's labels changed")
	}
}

// TestEventWriteFailureIgnored: a journal that cannot be written never
// fails the operation.
func TestEventWriteFailureIgnored(t *testing.T) {
	e := newTestEngine(t)
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	e.evlog = events.Open(filepath.Join(blocker, "events", "events.log")) // under a file: unwritable
	if _, err := e.CreateVolume(VolumeOptions{Name: "data"}); err != nil {
		t.Fatal(err)
	}
}

package cli

import (
	"bytes"
	"testing"
	"time"

	"github.com/berthnet/berth/internal/events"
)

func TestEventsQuery(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	q, err := eventsFlags{filters: []string{"event=start", "type=container"}, since: "10m", until: "2026-01-02T04:00:00Z", stream: false}.query(now)
	if err != nil {
		t.Fatal(err)
	}
	if !q.Since.Equal(now.Add(-10*time.Minute)) || q.Until.Hour() != 4 || q.Follow || len(q.Filter["event"]) != 1 {
		t.Fatalf("%+v", q)
	}
	if q, err := (eventsFlags{stream: true}).query(now); err != nil || !q.Follow {
		t.Fatalf("stream: %+v %v", q, err)
	}
	for _, f := range []eventsFlags{{filters: []string{"bogus=1"}}, {since: "soon"}, {until: "later"}} {
		if _, err := f.query(now); err == nil {
			t.Errorf("%+v accepted", f)
		}
	}
}

func TestEventPrinter(t *testing.T) {
	e := events.Event{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Type: events.TypeContainer, Action: "start",
		ID: "0123456789abcdef", Name: "web", Image: "busybox", Attributes: map[string]string{"app": "x"}}
	for format, want := range map[string]string{
		"{{.Type}} {{.Status}} {{.Name}} {{.Image}} {{.ID}}": "container start web busybox 0123456789abcdef\n",
		`{{index .Attributes "app"}}\t{{.Time.Year}}`:        "x\t2026\n",
		"json": `"Status":"start"`,
	} {
		var buf bytes.Buffer
		p, err := newEventPrinter(&buf, format, true)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.print(e); err != nil {
			t.Fatal(err)
		}
		if got := buf.String(); format == "json" && !bytes.Contains(buf.Bytes(), []byte(want)) || format != "json" && got != want {
			t.Errorf("%q: %q, want %q", format, got, want)
		}
	}
	var buf bytes.Buffer
	p, _ := newEventPrinter(&buf, "", true)
	_ = p.print(e)
	if !bytes.Contains(buf.Bytes(), []byte(" container start 0123456789ab (image=busybox, name=web, app=x)\n")) {
		t.Errorf("default: %q", buf.String())
	}
	if _, err := newEventPrinter(&buf, "{{.Nope", true); err == nil {
		t.Error("bad template accepted")
	}
}

package dockerapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/berthnet/berth/internal/events"
)

// eventBackend is a fake backend with a journal.
type eventBackend struct {
	*fakeBackend
	j *events.Journal
}

func (b eventBackend) Events() *events.Journal { return b.j }

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)

func sampleEvents() []events.Event {
	ctr := func(action string, attrs map[string]string) events.Event {
		a := map[string]string{"app": "web"}
		for k, v := range attrs {
			a[k] = v
		}
		return events.Event{Type: events.TypeContainer, Action: action, ID: "c0ffee1234567890", Name: "web",
			Image: "docker.io/library/busybox:latest", Attributes: a}
	}
	return []events.Event{
		ctr("create", nil),
		ctr("start", nil),
		{Type: events.TypeNetwork, Action: "connect", ID: "beef00", Name: "front",
			Attributes: map[string]string{"container": "c0ffee1234567890", "containerName": "web"}},
		ctr("health_status", map[string]string{"health_status": "healthy"}),
		ctr("died", map[string]string{"exitCode": "3"}),
		ctr("remove", nil),
		{Type: events.TypePod, Action: "create", ID: "p1", Name: "pod1"},
		{Type: events.TypeVolume, Action: "remove", ID: "data", Name: "data"},
		{Type: events.TypeImage, Action: "pull", ID: "abc123", Name: "docker.io/library/busybox:latest"},
		{Type: events.TypeImage, Action: "remove", ID: "abc123", Name: "busybox"},
	}
}

func TestToMessage(t *testing.T) {
	evs := sampleEvents()
	for i := range evs {
		evs[i].Time = t0.Add(time.Duration(i) * time.Second)
	}
	want := []struct{ typ, action, id string }{
		{"container", "create", "c0ffee1234567890"},
		{"container", "start", "c0ffee1234567890"},
		{"network", "connect", "beef00"},
		{"container", "health_status: healthy", "c0ffee1234567890"},
		{"container", "die", "c0ffee1234567890"},
		{"container", "destroy", "c0ffee1234567890"},
		{},
		{"volume", "destroy", "data"},
		{"image", "pull", "docker.io/library/busybox:latest"},
		{"image", "delete", "sha256:abc123"},
	}
	for i, e := range evs {
		m, ok := ToMessage(e, false)
		if want[i].typ == "" {
			if ok {
				t.Errorf("%d: pod event translated: %+v", i, m)
			}
			continue
		}
		if !ok || m.Type != want[i].typ || m.Action != want[i].action || m.Actor.ID != want[i].id || m.Scope != "local" {
			t.Errorf("%d: got %+v, want %+v", i, m, want[i])
		}
		if m.Time != e.Time.Unix() || m.TimeNano != e.Time.UnixNano() || m.Status != "" || m.ID != "" {
			t.Errorf("%d: times or legacy fields: %+v", i, m)
		}
	}
	die, _ := ToMessage(evs[4], true)
	if a := die.Actor.Attributes; a["exitCode"] != "3" || a["name"] != "web" || a["image"] != "docker.io/library/busybox:latest" || a["app"] != "web" {
		t.Errorf("die attributes: %v", a)
	}
	if die.Status != "die" || die.ID != "c0ffee1234567890" || die.From != "docker.io/library/busybox:latest" {
		t.Errorf("legacy fields: %+v", die)
	}
	conn, _ := ToMessage(evs[2], true)
	if conn.Actor.Attributes["container"] != "c0ffee1234567890" || conn.Actor.Attributes["name"] != "front" || conn.Status != "" {
		t.Errorf("connect: %+v", conn)
	}
}

func TestMatchMessage(t *testing.T) {
	var msgs []Message
	for _, e := range sampleEvents() {
		if m, ok := ToMessage(e, false); ok {
			msgs = append(msgs, m)
		}
	}
	for _, tc := range []struct {
		f    Filters
		want int
	}{
		{Filters{}, 9},
		{Filters{"type": {"container"}}, 5},
		{Filters{"event": {"die", "destroy"}}, 3},
		{Filters{"event": {"health_status"}}, 1},
		{Filters{"container": {"web"}}, 5},
		{Filters{"container": {"c0ffee"}, "event": {"start"}}, 1},
		{Filters{"network": {"front"}}, 1},
		{Filters{"volume": {"data"}}, 1},
		{Filters{"image": {"busybox"}}, 7},
		{Filters{"image": {"busybox"}, "type": {"image"}}, 2},
		{Filters{"label": {"app=web"}}, 5},
		{Filters{"label": {"app=db"}}, 0},
		{Filters{"container": {"db"}}, 0},
	} {
		n := 0
		for _, m := range msgs {
			if matchMessage(tc.f, m) {
				n++
			}
		}
		if n != tc.want {
			t.Errorf("%v: %d messages, want %d", tc.f, n, tc.want)
		}
	}
}

func TestParseEventTime(t *testing.T) {
	for in, want := range map[string]time.Time{
		"":                               {},
		"1767323045":                     time.Unix(1767323045, 0),
		"1767323045.000000006":           time.Unix(1767323045, 6),
		"1767323045.5":                   time.Unix(1767323045, 500000000),
		"2026-01-02T03:04:05.000000006Z": t0,
	} {
		got, err := ParseEventTime(in)
		if err != nil || !got.Equal(want) {
			t.Errorf("%q: %v %v, want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"x", "1.", "1.1234567890", "-5", "1e3", "99999999999999999999"} {
		if _, err := ParseEventTime(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func FuzzParseEventTime(f *testing.F) {
	for _, s := range []string{"1767323045.000000006", "2026-01-02T03:04:05Z", "1.", ".5", "9223372036"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseEventTime(s)
		if err != nil || s == "" || strings.Contains(s, "T") {
			return
		}
		// A Unix time comes back from the form Docker's clients send.
		back := fmt.Sprintf("%d.%09d", got.Unix(), got.Nanosecond())
		if again, err := ParseEventTime(back); err != nil || !again.Equal(got) {
			t.Fatalf("%q -> %v -> %q -> %v %v", s, got, back, again, err)
		}
	})
}

func journalWith(t *testing.T, evs []events.Event) *events.Journal {
	t.Helper()
	j := events.Open(filepath.Join(t.TempDir(), "events.log"))
	for i, e := range evs {
		e.Time = t0.Add(time.Duration(i) * time.Second)
		if err := j.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	return j
}

// TestEventsDockerClient reads the journal through Docker's own client:
// past events between since and until, filtered, and the stream ends at
// until.
func TestEventsDockerClient(t *testing.T) {
	j := journalWith(t, sampleEvents())
	c, _ := serve(t, eventBackend{&fakeBackend{}, j})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res := c.Events(ctx, client.EventsListOptions{
		Since:   strconv.FormatInt(t0.Unix(), 10),
		Until:   strconv.FormatInt(t0.Add(6*time.Second).Unix(), 10),
		Filters: make(client.Filters).Add("type", "container"),
	})
	var got []string
	for done := false; !done; {
		select {
		case m := <-res.Messages:
			got = append(got, string(m.Action))
		case err := <-res.Err:
			if err != nil && !strings.Contains(err.Error(), "EOF") {
				t.Fatal(err)
			}
			done = true
		}
	}
	if strings.Join(got, ",") != "create,start,health_status: healthy,die,destroy" {
		t.Fatalf("actions: %v", got)
	}
}

// TestEventsFollow: without until, new events arrive on the open stream,
// and the legacy fields come for an old client.
func TestEventsFollow(t *testing.T) {
	j := journalWith(t, nil)
	_, sock := serve(t, eventBackend{&fakeBackend{}, j})
	hc := unixClient(sock)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", `http://d/v1.41/events?filters={"event":{"die":true}}`, nil)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for _, e := range sampleEvents() {
		if err := j.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	line, err := bufio.NewReader(resp.Body).ReadBytes('\n')
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatal(err)
	}
	if m["Action"] != "die" || m["status"] != "die" || m["id"] != "c0ffee1234567890" || m["from"] != "docker.io/library/busybox:latest" {
		t.Fatalf("message: %s", line)
	}
}

func unixClient(sock string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
}

func TestEventsRefused(t *testing.T) {
	_, sock := serve(t, eventBackend{&fakeBackend{}, journalWith(t, nil)})
	for _, q := range []string{`filters={"node":{"x":true}}`, "since=yesterday", "since=20&until=10"} {
		resp, err := unixClient(sock).Get("http://d/v1.41/events?" + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("%s: status %d", q, resp.StatusCode)
		}
	}
	// A backend without a journal: 501, not a hang.
	_, sock = serve(t, &fakeBackend{})
	resp, err := unixClient(sock).Get("http://d/events")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotImplemented {
		t.Errorf("no journal: status %d", resp.StatusCode)
	}
}

func TestToMessageExec(t *testing.T) {
	start, _ := ToMessage(events.Event{Type: events.TypeContainer, Action: "exec", ID: "c1", Name: "web",
		Attributes: map[string]string{events.AttrExecCommand: "ls -l"}}, false)
	died, _ := ToMessage(events.Event{Type: events.TypeContainer, Action: "exec_died", ID: "c1", Name: "web",
		Attributes: map[string]string{events.AttrExecCommand: "ls -l", events.AttrExitCode: "2"}}, false)
	if start.Action != "exec_start: ls -l" || died.Action != "exec_die" || died.Actor.Attributes["exitCode"] != "2" ||
		start.Actor.Attributes[events.AttrExecCommand] != "" {
		t.Fatalf("%+v %+v", start, died)
	}
	if !matchMessage(Filters{"event": {"exec_start"}}, start) {
		t.Error("event=exec_start does not match")
	}
}

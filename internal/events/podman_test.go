package events

import (
	"testing"
	"time"
)

func TestPodmanLines(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	id := "0123456789abcdef0123"
	for _, tc := range []struct {
		e          Event
		trunc      bool
		line, json string
	}{
		{
			e: Event{Time: at, Type: TypeContainer, Action: "start", ID: id, Name: "web", Image: "docker.io/library/busybox:latest",
				Attributes: map[string]string{"b": "2", "a": "1", "pod": "p1"}},
			line: "2026-01-02 03:04:05.123456789 +0000 UTC container start " + id + " (image=docker.io/library/busybox:latest, name=web, pod_id=p1, a=1, b=2)",
			json: `{"ID":"` + id + `","Image":"docker.io/library/busybox:latest","Name":"web","Status":"start","Time":"2026-01-02T03:04:05.123456789Z","Type":"container","PodID":"p1","Attributes":{"a":"1","b":"2"}}`,
		},
		{
			e:     Event{Time: at, Type: TypeContainer, Action: "died", ID: id, Name: "web", Image: "busybox", Attributes: map[string]string{"exitCode": "3"}},
			trunc: true,
			line:  "2026-01-02 03:04:05.123456789 +0000 UTC container died 0123456789ab (image=busybox, name=web)",
			json:  `{"ContainerExitCode":3,"ID":"` + id + `","Image":"busybox","Name":"web","Status":"died","Time":"2026-01-02T03:04:05.123456789Z","Type":"container","Attributes":null}`,
		},
		{
			e:    Event{Time: at, Type: TypeNetwork, Action: "connect", ID: "netid", Name: "front", Attributes: map[string]string{"container": id, "containerName": "web"}},
			line: "2026-01-02 03:04:05.123456789 +0000 UTC network connect " + id + " (container=" + id + ", name=front)",
			json: `{"ID":"` + id + `","Name":"web","Network":"front","Status":"connect","Time":"2026-01-02T03:04:05.123456789Z","Type":"network","Attributes":null}`,
		},
		{
			e:    Event{Time: at, Type: TypeVolume, Action: "create", ID: "v1", Name: "v1"},
			line: "2026-01-02 03:04:05.123456789 +0000 UTC volume create v1",
			json: `{"Name":"v1","Status":"create","Time":"2026-01-02T03:04:05.123456789Z","Type":"volume","Attributes":null}`,
		},
		{
			e:    Event{Time: at, Type: TypePod, Action: "create", ID: id, Name: "p1"},
			line: "2026-01-02 03:04:05.123456789 +0000 UTC pod create " + id + " (image=, name=p1)",
			json: `{"ID":"` + id + `","Name":"p1","Status":"create","Time":"2026-01-02T03:04:05.123456789Z","Type":"pod","Attributes":null}`,
		},
		{
			e:    Event{Time: at, Type: TypeImage, Action: "pull", ID: id, Name: "docker.io/library/busybox:latest"},
			line: "2026-01-02 03:04:05.123456789 +0000 UTC image pull " + id + " docker.io/library/busybox:latest",
			json: `{"ID":"` + id + `","Name":"docker.io/library/busybox:latest","Status":"pull","Time":"2026-01-02T03:04:05.123456789Z","Type":"image","Attributes":null}`,
		},
	} {
		p := ToPodman(tc.e)
		if got := p.String(tc.trunc); got != tc.line {
			t.Errorf("line:\n got %s\nwant %s", got, tc.line)
		}
		if got := p.JSON(); got != tc.json {
			t.Errorf("json:\n got %s\nwant %s", got, tc.json)
		}
	}
}

func TestPathIn(t *testing.T) {
	if got := PathIn("/run/berth"); got != "/run/berth/events/events.log" {
		t.Fatal(got)
	}
}

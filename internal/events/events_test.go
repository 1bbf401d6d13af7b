package events

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func collect(t *testing.T, j *Journal, q Query) []Event {
	t.Helper()
	var out []Event
	if err := j.Read(context.Background(), q, func(e Event) error { out = append(out, e); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAppendReadFilter(t *testing.T) {
	j := Open(filepath.Join(t.TempDir(), "events.log"))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, e := range []Event{
		{Type: TypeContainer, Action: "create", ID: "aaaa1111", Name: "web", Image: "busybox", Attributes: map[string]string{"app": "x"}},
		{Type: TypeContainer, Action: "start", ID: "aaaa1111", Name: "web"},
		{Type: TypeNetwork, Action: "connect", ID: "nnnn", Name: "front", Attributes: map[string]string{"container": "aaaa1111"}},
		{Type: TypeContainer, Action: "die", ID: "bbbb2222", Name: "db", Attributes: map[string]string{"exitCode": "1"}},
	} {
		e.Time = t0.Add(time.Duration(i) * time.Second)
		if err := j.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	if got := collect(t, j, Query{}); len(got) != 4 || got[2].Name != "front" || got[3].Attributes["exitCode"] != "1" {
		t.Fatalf("all: %+v", got)
	}
	for _, tc := range []struct {
		filter []string
		q      Query
		want   int
	}{
		{filter: []string{"container=web"}, want: 2},
		{filter: []string{"container=aaaa"}, want: 2},
		{filter: []string{"event=die", "event=start"}, want: 2},
		{filter: []string{"type=network"}, want: 1},
		{filter: []string{"label=app=x"}, want: 1},
		{filter: []string{"label=app"}, want: 1},
		{filter: []string{"image=busybox"}, want: 1},
		{filter: []string{"container=web", "event=die"}, want: 0},
		{q: Query{Since: t0.Add(time.Second), Until: t0.Add(3 * time.Second)}, want: 2},
	} {
		f, err := ParseFilter(tc.filter)
		if err != nil {
			t.Fatal(err)
		}
		tc.q.Filter = f
		if got := collect(t, j, tc.q); len(got) != tc.want {
			t.Errorf("%v %v: %d events, want %d", tc.filter, tc.q.Since, len(got), tc.want)
		}
	}
	if _, err := ParseFilter([]string{"bogus=1"}); err == nil {
		t.Error("unknown key accepted")
	}
}

// TestFollowAcrossRotation: a follower sees every event exactly once
// while concurrent writers append and the journal rotates.
func TestFollowAcrossRotation(t *testing.T) {
	j := Open(filepath.Join(t.TempDir(), "events.log"))
	j.maxSize = 8 << 10
	const writers, per = 4, 150
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seen := map[string]int{}
	var mu sync.Mutex
	done := make(chan error, 1)
	go func() {
		done <- j.Read(ctx, Query{Follow: true, Poll: 5 * time.Millisecond}, func(e Event) error {
			mu.Lock()
			seen[e.ID]++
			n := len(seen)
			mu.Unlock()
			if n == writers*per {
				cancel()
			}
			return nil
		})
	}()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				if err := j.Append(Event{Type: TypeContainer, Action: "start", ID: fmt.Sprintf("w%d-%d", w, i)}); err != nil {
					t.Error(err)
					return
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("follower did not see every event")
	}
	// Writes are paced so that at most one rotation separates two polls
	// (a real journal rotates every ~40000 events): nothing is lost and
	// nothing is seen twice.
	mu.Lock()
	defer mu.Unlock()
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("%s seen %d times", id, n)
		}
	}
	if _, err := os.Stat(j.path + ".1"); err != nil {
		t.Fatalf("journal never rotated: %v", err)
	}
}

func TestUnfinishedLineWaits(t *testing.T) {
	j := Open(filepath.Join(t.TempDir(), "events.log"))
	if err := j.Append(Event{Type: TypeImage, Action: "pull", ID: "i1"}); err != nil {
		t.Fatal(err)
	}
	f, _ := os.OpenFile(j.path, os.O_WRONLY|os.O_APPEND, 0)
	fmt.Fprint(f, `{"type":"image","action":"tag","id":"i2"`)
	f.Close()
	if got := collect(t, j, Query{}); len(got) != 1 {
		t.Fatalf("read %d events, want the one whole line", len(got))
	}
}

func FuzzParseFilter(f *testing.F) {
	f.Add("event=start")
	f.Add("label=a=b")
	f.Fuzz(func(t *testing.T, s string) {
		fl, err := ParseFilter([]string{s})
		if err == nil {
			fl.Match(Event{Type: TypeContainer, Action: "start", ID: "abc", Attributes: map[string]string{"a": "b"}})
		}
	})
}

package netns_test

import (
	"errors"
	"fmt"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/netns"
	"github.com/berthnet/berth/internal/nettest"
)

// TestPrivilegedWorker runs functions on a worker inside a namespace: they
// see that namespace, a failing setup ends the worker with its error, and
// the caller's namespace never changes.
func TestPrivilegedWorker(t *testing.T) {
	nettest.Privileged(t)
	ns := nettest.NewNS(t, nettest.RandName("bw"))
	want, err := ns.Inode()
	if err != nil {
		t.Fatal(err)
	}
	before, _ := netns.Current()
	beforeIno, _ := before.Inode()
	before.Close()
	setupRan := false
	w, err := netns.NewWorker(ns.Path(), func() error { setupRan = true; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if !setupRan {
		t.Error("setup did not run")
	}
	for i := 0; i < 3; i++ {
		var got uint64
		w.Do(func() {
			var st unix.Stat_t
			if err := unix.Stat(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()), &st); err == nil {
				got = st.Ino
			}
		})
		if got != want {
			t.Fatalf("worker runs in namespace %d, want %d", got, want)
		}
	}
	w.Close()
	after, _ := netns.Current()
	afterIno, _ := after.Inode()
	after.Close()
	if afterIno != beforeIno {
		t.Errorf("the caller's namespace changed: %d -> %d", beforeIno, afterIno)
	}
	boom := errors.New("boom")
	if _, err := netns.NewWorker(ns.Path(), func() error { return boom }); !errors.Is(err, boom) {
		t.Errorf("failing setup: %v", err)
	}
	if _, err := netns.NewWorker("/nonexistent/ns", nil); err == nil {
		t.Error("a missing namespace gave a worker")
	}
}

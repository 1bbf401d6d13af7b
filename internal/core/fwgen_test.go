package core

import (
	"testing"

	"github.com/berthnet/berth/internal/firewall"
	"github.com/berthnet/berth/internal/network"
)

func TestUnchangedOnlyAtTheRecordedGeneration(t *testing.T) {
	rec := firewall.Generation{NetNS: 3, ID: 10}
	cases := []struct {
		name  string
		known firewall.Generation
		have  bool
		now   firewall.Generation
		want  bool
	}{
		{"at the record", rec, true, rec, true},
		{"no record", firewall.Generation{}, false, firewall.Generation{}, false},
		{"changed since", rec, true, firewall.Generation{NetNS: 3, ID: 11}, false},
		{"another namespace at the same number", rec, true, firewall.Generation{NetNS: 4, ID: 10}, false},
		{"no namespace cookie", firewall.Generation{ID: 10}, true, firewall.Generation{ID: 10}, false},
	}
	for _, c := range cases {
		if got := unchanged(c.known, c.have, c.now); got != c.want {
			t.Errorf("%s: unchanged = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestRecordOnlyOwnChangesFromIntactRules(t *testing.T) {
	g := func(id uint32) firewall.Generation { return firewall.Generation{NetNS: 3, ID: id} }
	cases := []struct {
		name      string
		track     fwTrack
		followed  firewall.Generation
		own, want bool
	}{
		{"own changes from checked rules", fwTrack{marked: true, good: true}, g(12), true, true},
		{"own changes from the record", fwTrack{marked: true, good: true, known: g(10), have: true}, g(12), true, true},
		{"nothing changed since the record", fwTrack{marked: true, good: true, known: g(12), have: true}, g(12), true, false},
		{"another writer committed", fwTrack{marked: true, good: true}, g(12), false, false},
		{"the rules were damaged and not restored", fwTrack{marked: true}, g(12), true, false},
		{"no mark in this call", fwTrack{}, g(12), true, false},
		{"no namespace cookie", fwTrack{marked: true, good: true}, firewall.Generation{ID: 12}, true, false},
	}
	for _, c := range cases {
		got, ok := toRecord(c.track, c.followed, c.own)
		if ok != c.want || (ok && got != c.followed) {
			t.Errorf("%s: toRecord = %v, %v; want %v", c.name, got, ok, c.want)
		}
	}
}

func TestGenerationRecordRoundTrips(t *testing.T) {
	sess, err := store{dir: t.TempDir()}.open()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.close()
	if g, ok := sess.knownGeneration(); ok {
		t.Fatalf("a new state has a record: %v", g)
	}
	if err := sess.save("/run/netns/x", &network.Options{ContainerID: "c1", Networks: network.Attachments{}}); err != nil {
		t.Fatal(err)
	}
	want := firewall.Generation{NetNS: 1 << 40, ID: 0xfffffffe}
	if err := sess.recordGeneration(want); err != nil {
		t.Fatal(err)
	}
	if g, ok := sess.knownGeneration(); !ok || g != want {
		t.Errorf("knownGeneration = %v, %v; want %v", g, ok, want)
	}
}

func FuzzDecodeGeneration(f *testing.F) {
	f.Add(encodeGeneration(firewall.Generation{NetNS: 7, ID: 9}))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		g, ok := decodeGeneration(b)
		if ok != (len(b) == 12) {
			t.Fatalf("decodeGeneration of %d bytes: ok %v", len(b), ok)
		}
		if ok && string(encodeGeneration(g)) != string(b) {
			t.Errorf("%x decodes to %v, which encodes to %x", b, g, encodeGeneration(g))
		}
	})
}

// With no container recorded, the record goes: nothing of berth's stays.
func TestNoGenerationRecordWithoutContainers(t *testing.T) {
	sess, err := store{dir: t.TempDir()}.open()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.close()
	if err := sess.recordGeneration(firewall.Generation{NetNS: 1, ID: 2}); err != nil {
		t.Fatal(err)
	}
	if gone, err := sess.dropGeneration(); !gone || err != nil {
		t.Fatalf("dropGeneration = %v, %v", gone, err)
	}
	if g, ok := sess.knownGeneration(); ok {
		t.Errorf("recorded %v with no container", g)
	}
}

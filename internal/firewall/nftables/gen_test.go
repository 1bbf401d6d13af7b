package nftables

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nltest"
	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/firewall"
)

// A driver nobody asked to follow reads no generation: its changes cost
// what they did before.
func TestChangesReadNoGenerationUnlessFollowing(t *testing.T) {
	k := newFakeKernel(t)
	d := k.driver()
	if err := d.Setup([]firewall.NetworkRules{bridgeA}, []firewall.PortForward{web}); err != nil {
		t.Fatal(err)
	}
	if err := d.Teardown([]firewall.PortForward{web}, nil); err != nil {
		t.Fatal(err)
	}
	if k.gens != 0 {
		t.Errorf("%d generation reads without Mark", k.gens)
	}
	if _, ok := d.Followed(); ok {
		t.Error("Followed is ok without Mark")
	}
}

// After Mark, the driver's own setups, teardowns and repairs are followed
// to the kernel's generation.
func TestOwnChangesAreFollowed(t *testing.T) {
	k := newFakeKernel(t)
	d := k.driver()
	k.gen = 40
	g, err := d.Mark()
	if err != nil || g != (firewall.Generation{NetNS: fakeCookie, ID: 40}) {
		t.Fatalf("Mark = %v, %v", g, err)
	}
	nets, ports := []firewall.NetworkRules{bridgeA, bridgeB}, []firewall.PortForward{web}
	if err := d.Setup(nets, ports); err != nil {
		t.Fatal(err)
	}
	// Nothing to do: no batch is sent, none is counted.
	if err := d.Setup(nets, nil); err != nil {
		t.Fatal(err)
	}
	k.state = kernelState{elems: map[string][]storedElem{}, nextHandle: k.state.nextHandle}
	k.gen++ // the flush is another writer's: follow again from here
	if g, err = d.Mark(); err != nil {
		t.Fatal(err)
	}
	if err := d.Repair(nets, ports); err != nil {
		t.Fatal(err)
	}
	if err := d.Teardown(ports, []firewall.NetworkRules{bridgeB}); err != nil {
		t.Fatal(err)
	}
	got, ok := d.Followed()
	if !ok || got != (firewall.Generation{NetNS: fakeCookie, ID: k.gen}) || k.gen <= g.ID {
		t.Errorf("Followed = %v, %v; the kernel is at %d (from %d)", got, ok, k.gen, g.ID)
	}
}

// A commit of another writer between the driver's commit and its reading
// of the generation, or between two changes, is seen.
func TestAnotherWritersCommitIsSeen(t *testing.T) {
	for _, when := range []string{"after our commit", "between changes"} {
		t.Run(when, func(t *testing.T) {
			k := newFakeKernel(t)
			d := k.driver()
			if _, err := d.Mark(); err != nil {
				t.Fatal(err)
			}
			if when == "after our commit" {
				d.AfterCommit(func() { k.gen++ })
			}
			if err := d.Setup([]firewall.NetworkRules{bridgeA}, []firewall.PortForward{web}); err != nil {
				t.Fatal(err)
			}
			d.AfterCommit(nil)
			if when == "between changes" {
				k.gen++
			}
			if err := d.Teardown([]firewall.PortForward{web}, nil); err != nil {
				t.Fatal(err)
			}
			if g, ok := d.Followed(); ok {
				t.Errorf("Followed = %v, ok after another writer's commit", g)
			}
		})
	}
}

func TestParseGen(t *testing.T) {
	msg := func(attrs ...netlink.Attribute) []byte {
		return append([]byte{unix.AF_UNSPEC, 0, 0, 0}, nltest.MustMarshalAttributes(attrs)...)
	}
	id := binary.BigEndian.AppendUint32(nil, 0x01020304)
	good := msg(netlink.Attribute{Type: unix.NFTA_GEN_ID, Data: id},
		netlink.Attribute{Type: unix.NFTA_GEN_PROC_PID, Data: []byte{0, 0, 0, 9}},
		netlink.Attribute{Type: unix.NFTA_GEN_PROC_NAME, Data: []byte("nft\x00")})
	if got, err := parseGen(good); err != nil || got != 0x01020304 {
		t.Errorf("parseGen = %#x, %v", got, err)
	}
	for name, data := range map[string][]byte{
		"short":         {0, 0},
		"no ID":         msg(netlink.Attribute{Type: unix.NFTA_GEN_PROC_PID, Data: []byte{0, 0, 0, 9}}),
		"ID of 2 bytes": msg(netlink.Attribute{Type: unix.NFTA_GEN_ID, Data: []byte{1, 2}}),
		"truncated":     good[:len(good)-1],
	} {
		if got, err := parseGen(data); !errors.Is(err, ErrNoGeneration) {
			t.Errorf("%s: parseGen = %#x, %v; want ErrNoGeneration", name, got, err)
		}
	}
}

func FuzzParseGen(f *testing.F) {
	f.Add(append([]byte{0, 0, 0, 0}, nltest.MustMarshalAttributes([]netlink.Attribute{{Type: unix.NFTA_GEN_ID, Data: []byte{0, 0, 0, 5}}})...))
	f.Add([]byte{0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := parseGen(data); err != nil && !errors.Is(err, ErrNoGeneration) {
			t.Errorf("error %v does not wrap ErrNoGeneration", err)
		}
	})
}

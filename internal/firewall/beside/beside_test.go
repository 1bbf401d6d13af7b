package beside

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/berthnet/berth/internal/firewall"
	"github.com/berthnet/berth/internal/firewall/nftables"
	"github.com/berthnet/berth/internal/firewall/none"
)

// full is a driver with every optional interface.
type full struct{ none.Driver }

func (full) Intact([]firewall.NetworkRules, []firewall.PortForward) (bool, error) { return true, nil }
func (full) Repair([]firewall.NetworkRules, []firewall.PortForward) error         { return nil }
func (full) Mark() (firewall.Generation, error)                                   { return firewall.Generation{}, nil }
func (full) Followed() (firewall.Generation, bool)                                { return firewall.Generation{}, false }

// checker has only firewall.Checker.
type checker struct{ none.Driver }

func TestWrapKeepsInterfaces(t *testing.T) {
	w := Wrap(full{}, Options{})
	if _, ok := w.(firewall.Checker); !ok {
		t.Error("lost firewall.Checker")
	}
	if _, ok := w.(firewall.Healer); !ok {
		t.Error("lost firewall.Healer")
	}
	if _, ok := w.(firewall.Versioned); !ok {
		t.Error("lost firewall.Versioned")
	}
	w = Wrap(checker{}, Options{})
	if _, ok := w.(firewall.Healer); ok {
		t.Error("a driver without a healer got one")
	}
	if _, ok := w.(firewall.Checker); !ok {
		t.Error("lost firewall.Checker")
	}
	if w.Name() != firewall.DriverNone {
		t.Errorf("name %q", w.Name())
	}
}

func TestFamilies(t *testing.T) {
	p := netip.MustParsePrefix
	nets := []firewall.NetworkRules{{ID: "a", Subnets: []netip.Prefix{p("198.19.0.0/24"), p("fd00::/64")}}, {ID: "b", Subnets: []netip.Prefix{p("fd00:1::/64")}}}
	v4 := families(nets, true, false)
	if len(v4) != 2 || !slices.Equal(v4[0].Subnets, []netip.Prefix{p("198.19.0.0/24")}) || len(v4[1].Subnets) != 0 {
		t.Errorf("IPv4 only: %+v", v4)
	}
	if got := families(nets, true, true); !slices.Equal(got[0].Subnets, nets[0].Subnets) {
		t.Errorf("both: %+v", got)
	}
	if len(nets[0].Subnets) != 2 {
		t.Error("families changed its input")
	}
}

func TestInPlace(t *testing.T) {
	p := netip.MustParsePrefix
	nets := []firewall.NetworkRules{{ID: "a", Subnets: []netip.Prefix{p("198.19.0.0/24"), p("fd00::/64")}}}
	count := func(n firewall.NetworkRules) (int, int) {
		v4, v6 := firewall.SubnetsOf(n.Subnets)
		return 2 * len(v4), 2 * len(v6)
	}
	all := nftables.Others{Marks4: map[string]int{"berth net a": 2}, Marks6: map[string]int{"berth net a": 2}}
	if !inPlace(all, nets, count) {
		t.Error("all there: not in place")
	}
	for _, o := range []nftables.Others{
		{Marks4: map[string]int{"berth net a": 2}},
		{Marks4: map[string]int{"berth net a": 1}, Marks6: map[string]int{"berth net a": 2}},
		{Marks4: map[string]int{"berth net b": 2}, Marks6: map[string]int{"berth net a": 2}},
	} {
		if inPlace(o, nets, count) {
			t.Errorf("%+v: in place", o)
		}
	}
	if !inPlace(nftables.Others{}, families(nets, false, false), count) {
		t.Error("no subnets of the families: not in place")
	}
}

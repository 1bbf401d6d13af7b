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

func (full) Damage([]firewall.NetworkRules, []firewall.PortForward) ([]string, error) {
	return nil, nil
}
func (full) Repair([]firewall.NetworkRules, []firewall.PortForward) error { return nil }
func (full) Mark() (firewall.Generation, error)                           { return firewall.Generation{}, nil }
func (full) Followed() (firewall.Generation, bool)                        { return firewall.Generation{}, false }
func (full) Unannounced() bool                                            { return true }

// checker has only firewall.Checker.
type checker struct{ none.Driver }

// healer heals but is no firewall.Checker (the iptables driver).
type healer struct{ full }

func (healer) HasNetwork(string) {} // hides none.Driver's: no Checker

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
	if p, ok := w.(firewall.Polled); !ok || !p.Unannounced() {
		t.Error("lost firewall.Polled")
	}
	w = Wrap(healer{}, Options{})
	if _, ok := w.(firewall.Checker); ok {
		t.Fatal("the test's healer is a checker")
	}
	if _, ok := w.(firewall.Healer); !ok {
		t.Error("a healer that is no checker lost firewall.Healer")
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

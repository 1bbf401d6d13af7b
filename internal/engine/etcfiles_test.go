package engine

import (
	"net/netip"
	"testing"

	"github.com/berthnet/berth/internal/network"
	"github.com/berthnet/berth/internal/runopts"
)

// TestStatusFactsInternalNetwork: an internal network reports its
// addresses without a gateway (null in netavark's status block); the
// facts take the address and the next network's gateway.
func TestStatusFactsInternalNetwork(t *testing.T) {
	gw := netip.MustParseAddr("198.19.6.1")
	c := &Container{Config: Config{Name: "c1", Hostname: "h1", Net: runopts.NetMode{Networks: []runopts.NetworkRequest{{Name: "inner"}, {Name: "outer"}}}}}
	st := State{Networks: map[string]network.StatusBlock{
		"inner": {Interfaces: map[string]network.Interface{"eth0": {Subnets: []network.NetAddress{{IPNet: netip.MustParsePrefix("198.19.5.2/24")}}}}},
		"outer": {Interfaces: map[string]network.Interface{"eth1": {Subnets: []network.NetAddress{{IPNet: netip.MustParsePrefix("198.19.6.2/24"), Gateway: &gw}}}}},
	}}
	f := statusFacts(c, st)
	if f.gw4 != "198.19.6.1" || len(f.entries) != 2 || f.entries[0].IP != "198.19.5.2" {
		t.Errorf("facts %+v", f)
	}
	st.Networks = map[string]network.StatusBlock{"inner": st.Networks["inner"]}
	if f := statusFacts(c, st); f.gw4 != "" || len(f.entries) != 1 {
		t.Errorf("internal only: %+v", f)
	}
}

package vxlan

import (
	"net/netip"
	"testing"
)

// The VTEP MAC is locally administered, unicast, and a function of
// underlay address and VNI only.
func TestVTEPMAC(t *testing.T) {
	a := vtepMAC(netip.MustParseAddr("198.18.5.1"), 78)
	if a.String() != "0a:4e:c6:12:05:01" {
		t.Errorf("vtepMAC = %s", a)
	}
	if a[0]&0x02 == 0 || a[0]&0x01 != 0 {
		t.Errorf("%s is not a locally administered unicast address", a)
	}
	if vtepMAC(netip.MustParseAddr("198.18.5.2"), 78).String() == a.String() || vtepMAC(netip.MustParseAddr("198.18.5.1"), 79).String() == a.String() {
		t.Error("vtepMAC does not depend on address and VNI")
	}
}

package link

import (
	"errors"
	"testing"

	"github.com/vishvananda/netlink"
)

// Every mode name the network model accepts maps to the kernel's mode; ""
// is the kernel's usual default.
func TestModeNames(t *testing.T) {
	for name, want := range map[string]netlink.MacvlanMode{
		"": netlink.MACVLAN_MODE_BRIDGE, "bridge": netlink.MACVLAN_MODE_BRIDGE, "private": netlink.MACVLAN_MODE_PRIVATE,
		"vepa": netlink.MACVLAN_MODE_VEPA, "passthru": netlink.MACVLAN_MODE_PASSTHRU, "source": netlink.MACVLAN_MODE_SOURCE,
	} {
		if got, err := macvlanMode(name); err != nil || got != want {
			t.Errorf("macvlan mode %q: %v, %v; want %v", name, got, err, want)
		}
	}
	for name, want := range map[string]netlink.IPVlanMode{
		"": netlink.IPVLAN_MODE_L2, "l2": netlink.IPVLAN_MODE_L2, "l3": netlink.IPVLAN_MODE_L3, "l3s": netlink.IPVLAN_MODE_L3S,
	} {
		if got, err := ipvlanMode(name); err != nil || got != want {
			t.Errorf("ipvlan mode %q: %v, %v; want %v", name, got, err, want)
		}
	}
}

// A mode of the other driver, or none at all, is an error that names it.
func TestUnknownModeFails(t *testing.T) {
	for _, name := range []string{"l3", "Bridge", "Source"} {
		if _, err := macvlanMode(name); !errors.Is(err, ErrUnknownMode) {
			t.Errorf("macvlan mode %q: %v, want ErrUnknownMode", name, err)
		}
	}
	for _, name := range []string{"bridge", "L2", "l4"} {
		if _, err := ipvlanMode(name); !errors.Is(err, ErrUnknownMode) {
			t.Errorf("ipvlan mode %q: %v, want ErrUnknownMode", name, err)
		}
	}
	_, err := macvlanMode("vepa2")
	if want := `macvlan mode "vepa2": unknown mode (want bridge, private, vepa, passthru or source)`; err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
}

// An unknown mode fails before anything reaches the kernel (a nil handle
// would panic on any request).
func TestAddSublinkUnknownModeSendsNothing(t *testing.T) {
	var h Handle
	if err := h.AddMacvlan(SublinkSpec{Name: "m0", Mode: "l2"}); !errors.Is(err, ErrUnknownMode) {
		t.Errorf("AddMacvlan: %v", err)
	}
	if err := h.AddIPVlan(SublinkSpec{Name: "i0", Mode: "vepa"}); !errors.Is(err, ErrUnknownMode) {
		t.Errorf("AddIPVlan: %v", err)
	}
}

// The link's attributes: name, parent, namespace, and MTU and MAC only when
// given, on top of netlink's defaults.
func TestSublinkAttrs(t *testing.T) {
	a := SublinkSpec{Name: "eth0", Parent: Link{Name: "p", Index: 7}, NSFd: 9}.attrs()
	if a.Name != "eth0" || a.ParentIndex != 7 || a.Namespace != netlink.NsFd(9) || a.MTU != 0 || a.HardwareAddr != nil || a.TxQLen != -1 {
		t.Errorf("attrs %+v", a)
	}
	mac := []byte{2, 0, 0, 0, 0, 1}
	a = SublinkSpec{Name: "eth0", MTU: 1400, MAC: mac}.attrs()
	if a.MTU != 1400 || a.HardwareAddr.String() != "02:00:00:00:00:01" {
		t.Errorf("attrs %+v", a)
	}
}

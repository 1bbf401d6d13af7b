package network

import (
	"regexp"
	"testing"
)

func TestValidName(t *testing.T) {
	re := regexp.MustCompile("^" + NameRule + "$")
	for _, s := range []string{"", "a", "Z9", "0", "net-1", "net_1.x", "-a", ".a", "_a", "a b", "a/b", "ä", "a:b", "podman", "a\x00", "ab-", "a.."} {
		if got, want := ValidName(s), re.MatchString(s); got != want {
			t.Errorf("ValidName(%q) = %v, the rule says %v", s, got, want)
		}
	}
}

func TestManagedBridge(t *testing.T) {
	for _, tc := range []struct {
		n                   Network
		managed, firewalled bool
	}{
		{Network{Driver: DriverBridge}, true, true},
		{Network{Driver: DriverBridge, Internal: true}, true, false},
		{Network{Driver: DriverBridge, Options: map[string]string{OptMode: "unmanaged"}}, false, false},
		{Network{Driver: DriverMacvlan}, false, false},
		{Network{Driver: DriverMacvlan, Options: map[string]string{OptMode: "unmanaged"}}, false, false},
	} {
		if got := tc.n.ManagedBridge(); got != tc.managed {
			t.Errorf("%+v: ManagedBridge %v, want %v", tc.n, got, tc.managed)
		}
		if got := tc.n.Firewalled(); got != tc.firewalled {
			t.Errorf("%+v: Firewalled %v, want %v", tc.n, got, tc.firewalled)
		}
	}
}

func TestHostVethName(t *testing.T) {
	// The names of running containers' links must not change: this is the
	// value berth has always computed.
	if got := HostVethName("c1", "podman"); got != "veth45b86bb5863" {
		t.Errorf("HostVethName: %q", got)
	}
	a, b := HostVethName("c1", "n1"), HostVethName("c1", "n2")
	if a == b || len(a) != 15 || a[:4] != "veth" || HostVethName("c1", "n1") != a {
		t.Errorf("HostVethName: %q %q", a, b)
	}
	if got := HashedLinkName("vo", "x"); len(got) != 13 || got[:2] != "vo" {
		t.Errorf("HashedLinkName: %q", got)
	}
}

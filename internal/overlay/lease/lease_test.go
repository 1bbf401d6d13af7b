package lease

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

var cfg = Config{Network: netip.MustParsePrefix("198.19.0.0/16"), SubnetLen: 24, VNI: 78, Port: 4789}

func TestConfigValidate(t *testing.T) {
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.Network = netip.MustParsePrefix("198.19.1.0/16") }, "host bits"},
		{func(c *Config) { c.Network = netip.MustParsePrefix("fd00::/64") }, "IPv4 range"},
		{func(c *Config) { c.SubnetLen = 16 }, "subnet length /16"},
		{func(c *Config) { c.SubnetLen = 31 }, "subnet length /31"},
		{func(c *Config) { c.Network = netip.MustParsePrefix("10.0.0.0/8"); c.SubnetLen = 30 }, "at most 65536"},
		{func(c *Config) { c.VNI = 0 }, "vni 0"},
		{func(c *Config) { c.VNI = 1 << 24 }, "vni 16777216"},
		{func(c *Config) { c.Port = 0 }, "port 0"},
	}
	for _, b := range bad {
		c := cfg
		b.mod(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), b.want) || !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: got %v, want an ErrInvalid naming %q", c, err, b.want)
		}
	}
}

func TestKeyRoundTrip(t *testing.T) {
	s := netip.MustParsePrefix("198.19.7.0/24")
	k := Key("/berth/overlay/n1/", s)
	if k != "/berth/overlay/n1/subnets/198.19.7.0-24" {
		t.Fatalf("key %q", k)
	}
	got, err := ParseKey("/berth/overlay/n1", k)
	if err != nil || got != s {
		t.Fatalf("ParseKey = %v, %v", got, err)
	}
	for _, k := range []string{"/other/subnets/198.19.7.0-24", "/berth/overlay/n1/subnets/198.19.7.0", "/berth/overlay/n1/subnets/198.19.7.1-24", "/berth/overlay/n1/subnets/x-24"} {
		if _, err := ParseKey("/berth/overlay/n1", k); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseKey(%q) = %v, want ErrInvalid", k, err)
		}
	}
}

func TestLeaseEncodeDecode(t *testing.T) {
	l := Lease{Subnet: netip.MustParsePrefix("198.19.3.0/24"), PublicIP: netip.MustParseAddr("198.18.0.3"),
		BackendData: BackendData{VNI: 78, VtepMAC: "0a:58:c6:13:03:00"}, Host: "h3"}
	v := l.Encode()
	// flannel's vxlan lease fields
	want := `{"PublicIP":"198.18.0.3","BackendType":"vxlan","BackendData":{"VNI":78,"VtepMAC":"0a:58:c6:13:03:00"},"Host":"h3"}`
	if v != want {
		t.Fatalf("encode:\n got %s\nwant %s", v, want)
	}
	got, err := Decode("/p", Key("/p", l.Subnet), []byte(v))
	if err != nil {
		t.Fatal(err)
	}
	l.BackendType = "vxlan"
	if got != l {
		t.Fatalf("decode = %+v, want %+v", got, l)
	}
	for _, bad := range []string{`{`, `{"PublicIP":"fd00::1","BackendData":{"VtepMAC":"0a:58:c6:13:03:00"}}`, `{"PublicIP":"198.18.0.3","BackendData":{"VtepMAC":"zz"}}`} {
		if _, err := Decode("/p", Key("/p", l.Subnet), []byte(bad)); !errors.Is(err, ErrInvalid) {
			t.Errorf("Decode(%s) = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestPick(t *testing.T) {
	taken := map[netip.Prefix]bool{}
	s, err := Pick(cfg, taken, netip.Prefix{})
	if err != nil || s.String() != "198.19.1.0/24" {
		t.Fatalf("first pick = %v, %v (the range's first subnet is skipped)", s, err)
	}
	taken[s] = true
	taken[netip.MustParsePrefix("198.19.2.0/24")] = true
	if s, _ := Pick(cfg, taken, netip.Prefix{}); s.String() != "198.19.3.0/24" {
		t.Fatalf("pick with 1,2 taken = %v", s)
	}
	if _, err := Pick(cfg, taken, netip.MustParsePrefix("198.19.2.0/24")); !errors.Is(err, ErrTaken) {
		t.Fatalf("pick of a taken subnet: %v, want ErrTaken", err)
	}
	if s, err := Pick(cfg, taken, netip.MustParsePrefix("198.19.9.0/24")); err != nil || s.String() != "198.19.9.0/24" {
		t.Fatalf("pick of a free wanted subnet: %v, %v", s, err)
	}
	for _, w := range []string{"198.19.9.0/25", "10.0.0.0/24"} {
		if _, err := Pick(cfg, taken, netip.MustParsePrefix(w)); !errors.Is(err, ErrInvalid) {
			t.Errorf("pick %s: %v, want ErrInvalid", w, err)
		}
	}
	small := Config{Network: netip.MustParsePrefix("198.19.0.0/23"), SubnetLen: 24, VNI: 1, Port: 4789}
	if _, err := Pick(small, map[netip.Prefix]bool{netip.MustParsePrefix("198.19.1.0/24"): true}, netip.Prefix{}); !errors.Is(err, ErrExhausted) {
		t.Fatalf("exhausted: %v", err)
	}
	if s := cfg.Subnet(255); s.String() != "198.19.255.0/24" {
		t.Fatalf("Subnet(255) = %s", s)
	}
	if g := Gateway(netip.MustParsePrefix("198.19.4.0/24")); g.String() != "198.19.4.1" {
		t.Fatalf("gateway %s", g)
	}
}

func mk(sub, pub, mac string) Lease {
	return Lease{Subnet: netip.MustParsePrefix(sub), PublicIP: netip.MustParseAddr(pub), BackendData: BackendData{VNI: 78, VtepMAC: mac}}
}

func TestDesiredAndDiff(t *testing.T) {
	own := netip.MustParsePrefix("198.19.1.0/24")
	leases := []Lease{
		mk("198.19.3.0/24", "198.18.0.3", "0a:00:00:00:00:03"),
		mk("198.19.1.0/24", "198.18.0.1", "0a:00:00:00:00:01"),
		mk("198.19.2.0/24", "198.18.0.2", "0a:00:00:00:00:02"),
	}
	want := Desired(own, leases)
	golden := `fdb 0a:00:00:00:00:02 dst 198.18.0.2
fdb 0a:00:00:00:00:03 dst 198.18.0.3
neigh 198.19.2.0 lladdr 0a:00:00:00:00:02
neigh 198.19.3.0 lladdr 0a:00:00:00:00:03
route 198.19.2.0/24 via 198.19.2.0
route 198.19.3.0/24 via 198.19.3.0
`
	if want.String() != golden {
		t.Fatalf("desired:\n%s\nwant:\n%s", want, golden)
	}
	del, set := Diff(State{}, want)
	if !del.Empty() || set.String() != golden {
		t.Fatalf("from empty: del\n%s set\n%s", del, set)
	}
	if del, set := Diff(want, want); !del.Empty() || !set.Empty() {
		t.Fatalf("steady state: del\n%s set\n%s", del, set)
	}
	// host 3 leaves; host 2 comes back with a new VXLAN device (new MAC)
	// and moves to another underlay address.
	after := Desired(own, []Lease{mk("198.19.2.0/24", "198.18.0.9", "0a:00:00:00:00:22")})
	del, set = Diff(want, after)
	wantDel := `fdb 0a:00:00:00:00:02 dst 198.18.0.2
fdb 0a:00:00:00:00:03 dst 198.18.0.3
neigh 198.19.3.0 lladdr 0a:00:00:00:00:03
route 198.19.3.0/24 via 198.19.3.0
`
	wantSet := `fdb 0a:00:00:00:00:22 dst 198.18.0.9
neigh 198.19.2.0 lladdr 0a:00:00:00:00:22
`
	if del.String() != wantDel || set.String() != wantSet {
		t.Fatalf("del:\n%s\nwant:\n%s\nset:\n%s\nwant:\n%s", del, wantDel, set, wantSet)
	}
}

package pasta

import (
	"net/netip"
	"reflect"
	"testing"
)

func fw(first, last, to uint16) Forward { return Forward{First: first, Last: last, To: to} }

func bound(addr, iface string, first, last, to uint16) Forward {
	f := fw(first, last, to)
	if addr != "" {
		f.Addr = netip.MustParseAddr(addr)
	}
	f.Iface = iface
	return f
}

func weak(first, last uint16) Forward {
	f := fw(first, last, first)
	f.Weak = true
	return f
}

func TestParsePortSpec(t *testing.T) {
	cases := []struct {
		spec string
		host bool
		want PortSpec
	}{
		{"none", true, PortSpec{Mode: PortNone, Given: true}},
		{"auto", false, PortSpec{Mode: PortAuto, Given: true}},
		{"all", true, PortSpec{Mode: PortAll, Given: true, Forwards: []Forward{weak(1, 65535)}}},
		{"22", true, PortSpec{PortSpecific, true, []Forward{fw(22, 22, 22)}}},
		{"22:23", true, PortSpec{PortSpecific, true, []Forward{fw(22, 22, 23)}}},
		{"22,25", true, PortSpec{PortSpecific, true, []Forward{fw(22, 22, 22), fw(25, 25, 25)}}},
		{"22-80", false, PortSpec{PortSpecific, true, []Forward{fw(22, 80, 22)}}},
		{"22-80:32-90", true, PortSpec{PortSpecific, true, []Forward{fw(22, 80, 32)}}},
		{"8080-8080:80-80", true, PortSpec{PortSpecific, true, []Forward{fw(8080, 8080, 80)}}},
		{"1-65535", true, PortSpec{PortSpecific, true, []Forward{fw(1, 65535, 1)}}},
		{"65535:1", true, PortSpec{PortSpecific, true, []Forward{fw(65535, 65535, 1)}}},
		{"192.0.2.1/5", true, PortSpec{PortSpecific, true, []Forward{bound("192.0.2.1", "", 5, 5, 5)}}},
		{"127.0.0.1/8080-8080:80-80", true, PortSpec{PortSpecific, true, []Forward{bound("127.0.0.1", "", 8080, 8080, 80)}}},
		{"::1/8080-8080:80-80", true, PortSpec{PortSpecific, true, []Forward{bound("::1", "", 8080, 8080, 80)}}},
		{"[::1]/8080", true, PortSpec{PortSpecific, true, []Forward{bound("::1", "", 8080, 8080, 8080)}}},
		{"[127.0.0.1]/80", true, PortSpec{PortSpecific, true, []Forward{bound("127.0.0.1", "", 80, 80, 80)}}},
		{"fe80::1%eth0/22", true, PortSpec{PortSpecific, true, []Forward{bound("fe80::1", "eth0", 22, 22, 22)}}},
		{"10.0.0.1%eth0/22", true, PortSpec{PortSpecific, true, []Forward{bound("10.0.0.1", "eth0", 22, 22, 22)}}},
		{"%eth0/22", true, PortSpec{PortSpecific, true, []Forward{bound("", "eth0", 22, 22, 22)}}},
		{"*/22", true, PortSpec{PortSpecific, true, []Forward{fw(22, 22, 22)}}},
		{"0.0.0.0/22", true, PortSpec{PortSpecific, true, []Forward{bound("0.0.0.0", "", 22, 22, 22)}}},
		{"5-25,~10-20", true, PortSpec{PortSpecific, true, []Forward{fw(5, 9, 5), fw(21, 25, 21)}}},
		{"~10-20,5-25", true, PortSpec{PortSpecific, true, []Forward{fw(5, 9, 5), fw(21, 25, 21)}}},
		{"80-90:180-190,~85", true, PortSpec{PortSpecific, true, []Forward{fw(80, 84, 180), fw(86, 90, 186)}}},
		{"~25", true, PortSpec{PortSpecific, true, []Forward{weak(1, 24), weak(26, 65535)}}},
		{"~1,~65535", true, PortSpec{PortSpecific, true, []Forward{weak(2, 65534)}}},
		{"~0", true, PortSpec{PortSpecific, true, []Forward{weak(1, 65535)}}},
		{"::1/~22", true, PortSpec{PortSpecific, true, []Forward{
			{Addr: netip.MustParseAddr("::1"), First: 1, Last: 21, To: 1, Weak: true},
			{Addr: netip.MustParseAddr("::1"), First: 23, Last: 65535, To: 23, Weak: true}}}},
	}
	for _, c := range cases {
		got, err := ParsePortSpec(c.spec, c.host)
		if err != nil {
			t.Errorf("ParsePortSpec(%q): %v", c.spec, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParsePortSpec(%q) = %+v, want %+v", c.spec, got, c.want)
		}
	}
}

// Messages as pasta 0.0~git20230309 prints them (checked against the
// Debian binary).
func TestParsePortSpecErrors(t *testing.T) {
	cases := []struct {
		spec string
		host bool
		want string
	}{
		{"99999", true, "Invalid port specifier 99999"},
		{"65536", true, "Invalid port specifier 65536"},
		{"80-70", true, "Invalid port specifier 80-70"},
		{"80:90-91", true, "Invalid port specifier 80:90-91"},
		{"80-81:90", true, "Invalid port specifier 80-81:90"},
		{"80x", true, "Invalid port specifier 80x"},
		{"0x50", true, "Invalid port specifier 0x50"},
		{"80,", true, "Invalid port specifier 80,"},
		{",80", true, "Invalid port specifier ,80"},
		{"", true, "Invalid port specifier "},
		{"~70000", true, "Invalid port specifier ~70000"},
		{"~80-70", true, "Invalid port specifier ~80-70"},
		{"1.2.3/80", true, "Invalid port specifier 1.2.3/80"},
		{"/80", true, "Invalid port specifier /80"},
		{"127.0.0.1%/80", true, "Invalid port specifier 127.0.0.1%/80"},
		{"127.0.0.1%abcdefghijklmnop/80", true, "Invalid port specifier 127.0.0.1%abcdefghijklmnop/80"},
		{"127.0.0.1/80", false, "Invalid port specifier 127.0.0.1/80"},
		{"0", true, "Invalid port specifier 0"},
		{"80:0", true, "Invalid port specifier 80:0"},
		{"+80", true, "Invalid port specifier +80"},
		{" 80", true, "Invalid port specifier  80"},
		{"~80,~79-81", true, "Overlapping port specifier ~80,~79-81"},
		{"80,80", true, "Overlapping port specifier 80,80"},
		{"80:81,80:82", true, "Overlapping port specifier 80:81,80:82"},
		{"80-90,85", true, "Overlapping port specifier 80-90,85"},
	}
	for _, c := range cases {
		_, err := ParsePortSpec(c.spec, c.host)
		if err == nil || err.Error() != c.want {
			t.Errorf("ParsePortSpec(%q) error %v, want %q", c.spec, err, c.want)
		}
	}
}

func TestPortSpecAccumulates(t *testing.T) {
	cases := []struct {
		specs []string
		want  string // "" for success
	}{
		{[]string{"80", "81-90"}, ""},
		{[]string{"127.0.0.1/80", "::1/80"}, ""},
		{[]string{"127.0.0.1/80", "127.0.0.2/80"}, ""},
		{[]string{"80", "80"}, "Overlapping port specifier 80"},
		{[]string{"80", "127.0.0.1/80"}, "Overlapping port specifier 127.0.0.1/80"},
		{[]string{"127.0.0.1/80", "127.0.0.1/80"}, "Overlapping port specifier 127.0.0.1/80"},
		{[]string{"0.0.0.0/80", "127.0.0.1/80"}, "Overlapping port specifier 127.0.0.1/80"},
		{[]string{"0.0.0.0/80", "::1/80"}, ""},
		{[]string{"::/80", "127.0.0.1/80"}, "Overlapping port specifier 127.0.0.1/80"},
		{[]string{"~22", "80"}, "Overlapping port specifier 80"},
		{[]string{"~22", "22"}, ""},
		{[]string{"none", "80"}, "Specific ports cannot be specified together with all/none/auto"},
		{[]string{"auto", "80"}, "Specific ports cannot be specified together with all/none/auto"},
		{[]string{"80", "none"}, "Port forwarding mode 'none' conflicts with previous mode"},
		{[]string{"none", "none"}, "Port forwarding mode 'none' conflicts with previous mode"},
		{[]string{"auto", "auto"}, "Port forwarding mode 'auto' conflicts with previous mode"},
		{[]string{"80", "auto"}, "Port forwarding mode 'auto' conflicts with previous mode"},
		{[]string{"80", "all"}, "Port forwarding mode 'all' conflicts with previous mode"},
	}
	for _, c := range cases {
		var ps PortSpec
		var err error
		for _, s := range c.specs {
			if err = ps.add(s, true); err != nil {
				break
			}
		}
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != c.want {
			t.Errorf("%q: error %q, want %q", c.specs, got, c.want)
		}
	}
}

func TestPortModeString(t *testing.T) {
	for m, want := range map[PortMode]string{PortNone: "none", PortAuto: "auto", PortAll: "all", PortSpecific: "spec", 9: "PortMode(9)"} {
		if m.String() != want {
			t.Errorf("%d: %q, want %q", int(m), m.String(), want)
		}
	}
}

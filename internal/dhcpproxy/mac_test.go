package dhcpproxy

import (
	"errors"
	"testing"
)

func TestParseMAC(t *testing.T) {
	for _, tc := range []struct {
		in     string
		want   string
		reason MACReason
	}{
		{"2a:0b:09:84:96:2b", "2a:0b:09:84:96:2b", 0},
		{"2A-0B-09-84-96-2B", "2a:0b:09:84:96:2b", 0},
		{"a:b:c:d:e:f", "0a:0b:0c:0d:0e:0f", 0},
		{"00ff:1:2:3:4:5", "ff:01:02:03:04:05", 0},
		{"+a:1-2:3:4:5", "0a:01:02:03:04:05", 0},
		{"", "", MACEmptyOctet},
		{"2a::09:84:96:2b", "", MACEmptyOctet},
		{"123", "", MACOctetTooLarge},
		{"fffz:1:2:3:4:5", "", MACOctetTooLarge},
		{"ffz:1:2:3:4:5", "", MACInvalidDigit},
		{"+:1:2:3:4:5", "", MACInvalidDigit},
		{"-1:2:3:4:5:6:", "", MACEmptyOctet},
		{"0000.0000.0000", "", MACInvalidDigit},
		{"1:2:3:4:5", "", MACWrongLength},
		{"1:2:3:4:5:6:7", "", MACWrongLength},
		{"12", "", MACWrongLength},
	} {
		mac, err := ParseMAC(tc.in)
		var me *MACError
		switch {
		case tc.reason == 0 && (err != nil || mac.String() != tc.want):
			t.Errorf("ParseMAC(%q) = %v, %v; want %s", tc.in, mac, err, tc.want)
		case tc.reason != 0 && (!errors.As(err, &me) || me.Reason != tc.reason || me.Input != tc.in):
			t.Errorf("ParseMAC(%q) error %#v, want reason %d", tc.in, err, tc.reason)
		}
	}
}

// FuzzParseMAC: an accepted address has six octets and prints back to
// itself; a refused one says why.
func FuzzParseMAC(f *testing.F) {
	for _, s := range []string{"", "2a:0b:09:84:96:2b", "a-b-c-d-e-f", "123", "+f:1:2:3:4:5", "::::::"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		mac, err := ParseMAC(s)
		if err != nil {
			var me *MACError
			if !errors.As(err, &me) || me.Reason < MACEmptyOctet || me.Reason > MACWrongLength || me.Input != s {
				t.Fatalf("ParseMAC(%q): %#v", s, err)
			}
			return
		}
		if len(mac) != 6 {
			t.Fatalf("ParseMAC(%q) = %v", s, mac)
		}
		if again, err := ParseMAC(mac.String()); err != nil || again.String() != mac.String() {
			t.Fatalf("round trip of %q: %v %v", s, again, err)
		}
	})
}

// FuzzParseLeaseFile: any cache text parses or fails without panic, and
// what parses is saved and read back with the same MACs.
func FuzzParseLeaseFile(f *testing.F) {
	for _, s := range []string{`{}`, `{"02:00:00:00:00:01":[{"yiaddr":"198.18.1.5"}]}`,
		`{"02:00:00:00:00:01":[{"berth":{"container_iface":"eth0","mac":"02:00:00:00:00:01","ns_path":"/x","metric":0,"lease":null}}]}`,
		`{"version":1,"leases":{"m":{"container_iface":"eth0","mac":"m","ns_path":"/x","metric":0,"lease":null}}}`, `[]`, `{"a":{}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := parseLeaseFile(b)
		if err != nil {
			return
		}
		s := store{path: t.TempDir() + "/" + LeaseFile}
		if err := s.save(recs); err != nil {
			return // a record JSON cannot encode (e.g. a broken lease)
		}
		again, err := s.load()
		if err != nil || len(again) != len(recs) {
			t.Fatalf("round trip: %d records, then %d (%v)", len(recs), len(again), err)
		}
	})
}

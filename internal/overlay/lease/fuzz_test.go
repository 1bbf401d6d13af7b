package lease

import (
	"encoding/json"
	"net/netip"
	"testing"
)

const fuzzPrefix = "/berth/overlay/ov1"

// FuzzDecode: no etcd key and value make Decode panic. An accepted lease
// has an IPv4 public address and an Ethernet VTEP MAC, encodes to a value
// that decodes to itself under its own key, and plans to one forwarding
// entry, neighbour and route. The same value read as the network's
// configuration, when valid, yields subnets inside the network.
func FuzzDecode(f *testing.F) {
	// flannel's vxlan lease, as berth and flannel store it.
	f.Add(fuzzPrefix+"/subnets/198.19.3.0-24", []byte(`{"PublicIP":"192.0.2.10","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0a:58:c6:13:03:00"},"Host":"node-a"}`))
	f.Add(fuzzPrefix+"/subnets/10.244.1.0-24", []byte(`{"PublicIP":"10.0.0.2","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"7e:ba:1f:62:23:2e"}}`))
	f.Add(fuzzPrefix+"/config", []byte(`{"Network":"198.19.0.0/16","SubnetLen":24,"VNI":42,"Port":4789}`))
	f.Add(fuzzPrefix+"/subnets/198.19.0.0-30", []byte(`{"Network":"10.244.0.0/16","SubnetLen":30,"VNI":16777215,"Port":8472,"Backend":{"Type":"vxlan"}}`))
	f.Fuzz(func(t *testing.T, key string, value []byte) {
		checkConfig(t, value)
		l, err := Decode(fuzzPrefix, key, value)
		if err != nil {
			return
		}
		if !l.PublicIP.Is4() || l.Subnet != l.Subnet.Masked() {
			t.Fatalf("lease %+v accepted", l)
		}
		if _, err := l.MAC(); err != nil {
			t.Fatalf("lease accepted with a bad MAC: %v", err)
		}
		k := Key(fuzzPrefix, l.Subnet)
		if s, err := ParseKey(fuzzPrefix, k); err != nil || s != l.Subnet {
			t.Fatalf("key %q of %s parses to %v, %v", k, l.Subnet, s, err)
		}
		again, err := Decode(fuzzPrefix, k, []byte(l.Encode()))
		l.BackendType = "vxlan"
		// Host is free text: JSON keeps only its valid UTF-8.
		l.Host = again.Host
		if err != nil || again != l {
			t.Fatalf("lease %+v does not round-trip: %+v, %v", l, again, err)
		}
		if third, _ := Decode(fuzzPrefix, k, []byte(again.Encode())); third != again {
			t.Fatalf("lease %+v not stable: %+v", again, third)
		}
		own := netip.MustParsePrefix("0.0.0.0/32")
		st := Desired(own, []Lease{l})
		if len(st.FDB) != 1 || len(st.Neighs) != 1 || len(st.Routes) != 1 || st.Routes[0].Dst != l.Subnet {
			t.Fatalf("plan for %+v: %v", l, st)
		}
	})
}

func checkConfig(t *testing.T, value []byte) {
	var c Config
	if json.Unmarshal(value, &c) != nil || c.Validate() != nil {
		return
	}
	if n := c.Subnets(); n < 2 || n > 1<<16 {
		t.Fatalf("config %+v has %d subnets", c, n)
	}
	for _, i := range []int{0, 1, c.Subnets() - 1} {
		s := c.Subnet(i)
		if !c.Contains(s) || !s.Contains(Gateway(s)) {
			t.Fatalf("config %+v: subnet %d is %s", c, i, s)
		}
	}
	s, err := Pick(c, nil, netip.Prefix{})
	if err != nil || !c.Contains(s) {
		t.Fatalf("config %+v: picked %s, %v", c, s, err)
	}
	if _, err := Pick(c, map[netip.Prefix]bool{s: true}, s); err == nil {
		t.Fatalf("config %+v: picked %s although it is taken", c, s)
	}
}

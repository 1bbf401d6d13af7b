package netavark

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/berthnet/berth/internal/network"
)

// podman5Input is the array shape of "networks" (netavark 2 / Podman 5).
const podman5Input = `{"container_id":"6c6b2a5e5a0ab4b8e8d7c9f7c6f6b3a6f0b0e1c2d3e4f5a6b7c8d9e0f1a2b3c4","container_name":"web",
"port_mappings":[{"host_ip":"127.0.0.1","container_port":80,"host_port":8080,"range":3,"protocol":"tcp,udp"}],
"networks":[{"name":"podman","static_ips":["10.88.0.5"],"aliases":["web"],"interface_name":"eth0","static_mac":"9a:3c:2e:11:22:33","options":{"host_interface_name":"veth9"}}],
"network_info":{"podman":{"name":"podman","id":"2f259bab93aaaaa2542ba43ef33eb990d0999ee1b9924b557b7be53c0b7a1bb9","driver":"bridge","network_interface":"podman0","created":"2024-05-01T10:00:00Z","subnets":[{"subnet":"10.88.0.0/16","gateway":"10.88.0.1"}],"ipv6_enabled":false,"internal":false,"dns_enabled":false,"ipam_options":{"driver":"host-local"}}},
"dns_servers":["10.88.0.1"]}`

// macvlanDHCPInput is a Podman 4 macvlan network leasing by DHCP.
const macvlanDHCPInput = `{"container_id":"aa11","container_name":"m","networks":{"mv":{"interface_name":"eth0"}},
"network_info":{"mv":{"name":"mv","id":"5d3b4b8fa8e7cc80c2a7bd8c8e7e4e45a3a2e2ea0b4f3c6f1a0f4e7a2b5c6d7e","driver":"macvlan","network_interface":"eth0","subnets":[],"ipv6_enabled":false,"internal":false,"dns_enabled":false,"options":{"mode":"bridge"},"ipam_options":{"driver":"dhcp"}}}}`

// decodeOptions is the setup/teardown input path: the JSON as
// decodeInput reads it, then the validation that runs before any change.
func decodeOptions(in []byte) (*network.Options, error, error) {
	var o network.Options
	if err := decodeInput(&globals{}, Env{Stdin: bytes.NewReader(in)}, &o); err != nil {
		return nil, err, nil
	}
	return &o, nil, o.Validate()
}

// FuzzOptions: any setup/teardown input is decoded and validated without
// a panic; what decodes encodes to JSON that decodes to the same (in both
// shapes of "networks"), and what validates really is well formed.
func FuzzOptions(f *testing.F) {
	seeds, _ := filepath.Glob("../../network/testdata/*-input.json")
	seeds = append(seeds, "../../../bench/captured/podman-4.3.1-netavark-setup-stdin.json")
	for _, p := range seeds {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(podman5Input))
	f.Add([]byte(macvlanDHCPInput))
	f.Add([]byte(`{"container_id":"x","networks":[],"network_info":{}}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		o, err, verr := decodeOptions(in)
		if err != nil {
			return
		}
		out, err := json.Marshal(o)
		if err != nil {
			t.Fatalf("decoded options do not encode: %v", err)
		}
		o2, err, verr2 := decodeOptions(out)
		if err != nil {
			t.Fatalf("encoded options do not decode: %v\n%s", err, out)
		}
		if out2, _ := json.Marshal(o2); !bytes.Equal(out, out2) {
			t.Fatalf("not stable:\n%s\n%s", out, out2)
		}
		if (verr == nil) != (verr2 == nil) {
			t.Fatalf("validation changed over a round trip: %v / %v", verr, verr2)
		}
		if verr == nil {
			checkValidOptions(t, o)
		}
	})
}

// checkValidOptions asserts what validation promises to setup.
func checkValidOptions(t *testing.T, o *network.Options) {
	if o.ContainerID == "" {
		t.Fatal("valid options without a container ID")
	}
	ifs := map[string]bool{}
	for _, a := range o.Networks {
		n, ok := o.NetworkInfo[a.Name]
		if !ok {
			t.Fatalf("network %q attached without network_info", a.Name)
		}
		if !network.ValidInterfaceName(a.InterfaceName) || ifs[a.InterfaceName] {
			t.Fatalf("interface name %q invalid or used twice", a.InterfaceName)
		}
		ifs[a.InterfaceName] = true
		if n.IPAMDriver() == network.IPAMHostLocal {
			for _, ip := range a.StaticIPs {
				if _, ok := n.SubnetFor(ip); !ok {
					t.Fatalf("static ip %s outside the subnets of %q", ip, a.Name)
				}
			}
		}
	}
	for _, pm := range o.PortMappings {
		if pm.HostPort == 0 || pm.ContainerPort == 0 || int(pm.HostPort)+pm.Ports()-1 > 65535 || int(pm.ContainerPort)+pm.Ports()-1 > 65535 {
			t.Fatalf("port mapping out of range: %+v", pm)
		}
		if _, err := pm.HostAddr(); err != nil {
			t.Fatalf("port mapping host ip %q: %v", pm.HostIP, err)
		}
	}
}

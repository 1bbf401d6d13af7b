package cni

import (
	"net/netip"
	"testing"

	"github.com/berthnet/berth/internal/network"
)

// Configurations as runtimes pass them on stdin: Podman 3's
// 87-podman-bridge.conflist entries, with prevResult where chained.
var cniSeeds = []string{
	`{"cniVersion":"0.4.0","name":"podman","type":"berth-bridge","bridge":"cni-podman0","isGateway":true,"ipMasq":true,"hairpinMode":true,"ipam":{"type":"berth-ipam","routes":[{"dst":"0.0.0.0/0"}],"ranges":[[{"subnet":"10.88.0.0/16","gateway":"10.88.0.1"}]]}}`,
	`{"cniVersion":"1.1.0","name":"dual","type":"berth-bridge","bridge":"br-dual","mtu":1450,"runtimeConfig":{"mac":"92:d0:c6:0a:29:33","portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"},{"hostPort":5353,"containerPort":53,"protocol":"udp","hostIP":"127.0.0.1"}]},"ipam":{"type":"berth-ipam","ranges":[[{"subnet":"10.22.0.0/24","rangeStart":"10.22.0.10","rangeEnd":"10.22.0.200"}],[{"subnet":"fd00:22::/64"}]],"dataDir":"/run/berth-ipam"}}`,
	`{"cniVersion":"1.0.0","name":"ipam-old","type":"berth-ipam","ipam":{"type":"berth-ipam","subnet":"192.168.10.0/24","rangeStart":"192.168.10.100","rangeEnd":"192.168.10.150","gateway":"192.168.10.1"},"runtimeConfig":{"ips":["192.168.10.120/24"]},"args":{"cni":{"ips":["192.168.10.121"]}}}`,
	`{"cniVersion":"1.0.0","name":"lan","type":"berth-macvlan","master":"eth0","mode":"bridge","ipam":{"type":"berth-ipam","mode":"dhcp","daemonSocketPath":"/run/podman/nv-proxy.sock"}}`,
	`{"cniVersion":"1.0.0","name":"podman","type":"berth-portmap","snat":true,"capabilities":{"portMappings":true},"runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]},"prevResult":{"cniVersion":"1.0.0","interfaces":[{"name":"cni-podman0","mac":"aa:bb:cc:dd:ee:ff"},{"name":"eth0","mac":"92:d0:c6:0a:29:33","sandbox":"/run/netns/cni-1"}],"ips":[{"address":"10.88.0.5/16","gateway":"10.88.0.1","interface":1}],"routes":[{"dst":"0.0.0.0/0"}],"dns":{}}}`,
	`{"cniVersion":"1.0.0","name":"podman","type":"berth-dns","dnsPort":53,"upstreamServers":["1.1.1.1"],"runtimeConfig":{"aliases":["web","www"]},"prevResult":{"cniVersion":"0.4.0","ips":[{"version":"4","address":"10.88.0.5/16","gateway":"10.88.0.1"}]}}`,
	`{"cniVersion":"1.1.0","name":"podman","cni.dev/valid-attachments":[{"containerID":"abc","ifname":"eth0"}],"cni.dev/attachments":[{"containerID":"def","ifname":"eth1"}]}`,
}

// FuzzConf: no configuration on stdin (nor CNI_ARGS) makes any plugin's
// parser panic; what a parser accepts holds only valid interface names,
// MTUs, ports, aliases and, for berth-ipam, subnets whose gateway, lease
// range and requested addresses lie inside them, one per family.
func FuzzConf(f *testing.F) {
	for _, s := range cniSeeds {
		f.Add([]byte(s), "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;IP=10.88.0.7")
	}
	f.Fuzz(func(t *testing.T, stdin []byte, cniArgs string) {
		if c, err := parseBridge(stdin); err == nil {
			if !network.ValidInterfaceName(c.Bridge) || !validMTU(c.MTU) {
				t.Fatalf("bridge %q mtu %d accepted", c.Bridge, c.MTU)
			}
			for _, p := range c.ports {
				if p.HostPort == 0 || p.ContainerPort == 0 {
					t.Fatalf("bridge port mapping %+v accepted", p)
				}
			}
		}
		if c, err := parseMacvlan(stdin); err == nil {
			if (c.Master != "" && !network.ValidInterfaceName(c.Master)) || !validMTU(c.MTU) {
				t.Fatalf("macvlan master %q mtu %d accepted", c.Master, c.MTU)
			}
		}
		if c, err := parsePortmap(stdin); err == nil {
			for _, m := range c.mappings {
				if err := m.Validate(); err != nil {
					t.Fatalf("port mapping %+v accepted: %v", m, err)
				}
			}
		}
		if c, err := parseDNS(stdin); err == nil && (c.DNSPort < 1 || c.DNSPort > 65535) {
			t.Fatalf("dns port %d accepted", c.DNSPort)
		}
		_, _ = validAttachments(stdin)
		if c, p, err := parseIPAM(stdin, cniArgs); err == nil && c.IPAM.Mode != "dhcp" {
			checkPlan(t, p)
		}
	})
}

func validMTU(m int) bool { return m == 0 || (m >= 68 && m <= 65535) }

func checkPlan(t *testing.T, p *ipamPlan) {
	fam := map[bool]bool{}
	for _, s := range p.net.Subnets {
		if !s.Subnet.IsValid() || s.Subnet != s.Subnet.Masked() || fam[s.Subnet.Addr().Is4()] {
			t.Fatalf("subnet %v accepted (families so far %v)", s.Subnet, fam)
		}
		fam[s.Subnet.Addr().Is4()] = true
		for _, a := range []netip.Addr{s.Gateway} {
			if !s.Subnet.Contains(a) {
				t.Fatalf("gateway %v outside %s", a, s.Subnet)
			}
		}
		if lr := s.LeaseRange; lr != nil {
			for _, a := range []netip.Addr{lr.StartIP, lr.EndIP} {
				if a.IsValid() && !s.Subnet.Contains(a) {
					t.Fatalf("range address %s outside %s", a, s.Subnet)
				}
			}
		}
	}
	for _, a := range p.static {
		if _, ok := p.net.SubnetFor(a); !ok {
			t.Fatalf("requested address %s outside every range", a)
		}
	}
}

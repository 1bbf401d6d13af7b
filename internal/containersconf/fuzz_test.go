package containersconf

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// podmanNetworkTables is containers.conf as Podman's distributions ship
// it (the [network] and [engine] tables, keys uncommented).
const podmanNetworkTables = `# The containers configuration file specifies all of the available configuration
# command-line options/flags for container engine tools like Podman & Buildah.
[containers]
log_driver = "k8s-file"
dns_servers = []

[network]
# Network backend determines what network driver will be used to set up and tear down container networks.
network_backend = "netavark"
cni_plugin_dirs = [
  "/usr/local/libexec/cni",
  "/usr/libexec/cni",
  "/usr/local/lib/cni",
  "/usr/lib/cni",
  "/opt/cni/bin",
]
default_network = "podman"
default_subnet = "10.88.0.0/16"
default_subnet_pools = [
  {"base" = "10.89.0.0/16", "size" = 24},
  {"base" = "10.90.0.0/15", "size" = 24},
  {"base" = "10.92.0.0/14", "size" = 24},
  {"base" = "10.96.0.0/11", "size" = 24},
  {"base" = "10.128.0.0/9", "size" = 24},
]
network_config_dir = "/etc/containers/networks"
firewall_driver = "nftables"
dns_bind_port = 53

[engine]
helper_binaries_dir = [
  "/usr/local/libexec/podman",
  "/usr/local/lib/podman",
  "/usr/libexec/podman",
  "/usr/lib/podman",
]
active_service = "production"

[engine.service_destinations]
  [engine.service_destinations.production]
  uri = "ssh://root@localhost:22/run/podman/podman.sock"
`

// FuzzLoadFile: no containers.conf makes LoadFile panic; an accepted
// file has valid [network] values and defaults filled in, and encoded
// back to TOML it loads to the same settings.
func FuzzLoadFile(f *testing.F) {
	f.Add(podmanNetworkTables)
	f.Add("[network]\ndefault_subnet_pools = [{base = \"fd00::/48\", size = 64}]\ndns_bind_port = 5353\n")
	f.Add("[network]\nfirewall_driver = \"iptables\"\ndefault_network = \"\"\n[engine]\nhelper_binaries_dir = []\n")
	f.Add("[network\n")
	f.Fuzz(func(t *testing.T, text string) {
		p := filepath.Join(t.TempDir(), "containers.conf")
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := LoadFile(p)
		if err != nil {
			return
		}
		n := c.Network
		if n.DefaultNetwork == "" || n.DNSBindPort == 0 {
			t.Fatalf("defaults not applied: %+v", n)
		}
		if _, err := netip.ParsePrefix(n.DefaultSubnet); err != nil {
			t.Fatalf("default_subnet %q accepted: %v", n.DefaultSubnet, err)
		}
		for _, pool := range n.DefaultSubnetPools {
			if !pool.Base.IsValid() || pool.Base != pool.Base.Masked() || pool.Size < pool.Base.Bits() || pool.Size > pool.Base.Addr().BitLen() {
				t.Fatalf("pool %+v accepted", pool)
			}
		}
		var buf bytes.Buffer
		if err := toml.NewEncoder(&buf).Encode(c); err != nil {
			return // not every string TOML decodes can be encoded again
		}
		if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		c2, err := LoadFile(p)
		if err != nil {
			t.Fatalf("encoded configuration does not load: %v\n%s", err, buf.String())
		}
		if !reflect.DeepEqual(normConf(c), normConf(c2)) {
			t.Fatalf("not stable:\n%+v\n%+v\n%s", c, c2, buf.String())
		}
	})
}

// normConf is what a round trip keeps: empty and missing lists are the
// same setting.
func normConf(c *Config) string {
	var b strings.Builder
	_ = toml.NewEncoder(&b).Encode(struct {
		Network Network
		Engine  Engine
	}{c.Network, c.Engine})
	return b.String()
}

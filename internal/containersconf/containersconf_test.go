package containersconf

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berthnet/berth/internal/safefile"
)

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestDefaults(t *testing.T) {
	c, err := Load(Env{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	n := c.Network
	if n.DefaultNetwork != "podman" || n.DefaultSubnet != "10.88.0.0/16" || n.DNSBindPort != 53 || len(n.DefaultSubnetPools) != 0 || len(c.Files) != 0 ||
		n.DefaultRootlessNetworkCmd != "pasta" || len(n.PastaOptions) != 0 {
		t.Errorf("%+v", c)
	}
}

// TestMergeOrder: system file, /etc, its .d directory, then the user's
// file (rootless); later keys override earlier ones, others stay.
func TestMergeOrder(t *testing.T) {
	root, home := t.TempDir(), t.TempDir()
	write(t, root+"/usr/share/containers/containers.conf", "[network]\ndefault_network = \"a\"\ndns_bind_port = 5353\n[engine]\nhelper_binaries_dir = [\"/opt/berth/bin\"]\n")
	write(t, root+"/etc/containers/containers.conf", "[network]\ndefault_network = \"b\"\nfirewall_driver = \"iptables\"\n[containers]\nunknown_key = 1\n")
	write(t, root+"/etc/containers/containers.conf.d/10-pools.conf", "[network]\ndefault_subnet_pools = [{base = \"198.19.0.0/16\", size = 26}, {base = \"fd00:1::/48\", size = 64}]\n")
	write(t, home+"/.config/containers/containers.conf", "[network]\nnetwork_config_dir = \"/tmp/x\"\ndefault_subnet = \"10.123.0.0/24\"\ndefault_rootless_network_cmd = \"slirp4netns\"\npasta_options = [\"--mtu\", \"1500\"]\n")
	c, err := Load(Env{Root: root, Home: home, Rootless: true})
	if err != nil {
		t.Fatal(err)
	}
	n := c.Network
	if n.DefaultNetwork != "b" || n.DNSBindPort != 5353 || n.FirewallDriver != "iptables" || n.NetworkConfigDir != "/tmp/x" || n.DefaultSubnet != "10.123.0.0/24" {
		t.Errorf("merged: %+v", n)
	}
	if n.DefaultRootlessNetworkCmd != "slirp4netns" || strings.Join(n.PastaOptions, " ") != "--mtu 1500" {
		t.Errorf("rootless network: %q %q", n.DefaultRootlessNetworkCmd, n.PastaOptions)
	}
	if len(n.DefaultSubnetPools) != 2 || n.DefaultSubnetPools[0].Base.String() != "198.19.0.0/16" || n.DefaultSubnetPools[1].Size != 64 {
		t.Errorf("pools: %+v", n.DefaultSubnetPools)
	}
	if len(c.Engine.HelperBinariesDir) != 1 || len(c.Files) != 4 {
		t.Errorf("engine %v files %v", c.Engine, c.Files)
	}
	// Rootful does not read the user's file.
	c, _ = Load(Env{Root: root, Home: home})
	if c.Network.NetworkConfigDir != "" {
		t.Error("rootful read the user's containers.conf")
	}
}

func TestContainersConfEnvAlone(t *testing.T) {
	root := t.TempDir()
	write(t, root+"/etc/containers/containers.conf", "[network]\ndefault_network = \"b\"\n")
	p := filepath.Join(t.TempDir(), "only.conf")
	write(t, p, "[network]\ndns_bind_port = 54\n")
	c, err := Load(Env{Root: root, Getenv: func(k string) string {
		if k == "CONTAINERS_CONF" {
			return p
		}
		return ""
	}})
	if err != nil || c.Network.DefaultNetwork != "podman" || c.Network.DNSBindPort != 54 {
		t.Errorf("%v %+v", err, c)
	}
	_, err = Load(Env{Getenv: func(string) string { return "/nonexistent.conf" }})
	if err == nil || !strings.Contains(err.Error(), "CONTAINERS_CONF") {
		t.Errorf("missing CONTAINERS_CONF file: %v", err)
	}
}

func TestErrors(t *testing.T) {
	cases := map[string]string{
		"[network]\ndefault_subnet = \"nope\"\n":                                   `default_subnet "nope": not a CIDR subnet`,
		"[network]\ndefault_subnet_pools = [{base = \"10.0.0.0/16\", size = 8}]\n": "size 8 must be between 16",
		"[network]\ndefault_subnet_pools = [{base = \"10.0.0/16\", size = 24}]\n":  `subnet pool base "10.0.0/16": not a CIDR subnet`,
		"[network]\ndefault_subnet_pools = [{size = 24}]\n":                        "base is missing",
		"[network]\nfirewall_driver = \"pf\"\n":                                    `firewall_driver "pf": want nftables, iptables, firewalld or none`,
		"[network]\ndefault_rootless_network_cmd = \"vde\"\n":                      `default_rootless_network_cmd "vde": want pasta or slirp4netns`,
		"[network\n": "read ",
	}
	for content, want := range cases {
		p := filepath.Join(t.TempDir(), "c.conf")
		write(t, p, content)
		if _, err := LoadFile(p); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", content, err, want)
		}
	}
}

// A containers.conf.d entry that is a FIFO, a link to a device or a huge
// file is skipped with a reason, never read; the other files still are.
func TestHostileFilesAreSkipped(t *testing.T) {
	root := t.TempDir()
	d := filepath.Join(root, "etc/containers/containers.conf.d")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "50-good.conf"), []byte("[network]\ndefault_network = \"good\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(d, "10-fifo.conf"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/zero", filepath.Join(d, "20-zero.conf")); err != nil {
		t.Fatal(err)
	}
	big := "# " + strings.Repeat("x", 2<<20) + "\n"
	if err := os.WriteFile(filepath.Join(d, "30-big.conf"), []byte(big), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var c *Config
	var err error
	go func() {
		defer close(done)
		c, err = Load(Env{Root: root, Getenv: func(string) string { return "" }})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Load blocked on a hostile file")
	}
	if err != nil {
		t.Fatal(err)
	}
	if c.Network.DefaultNetwork != "good" {
		t.Errorf("default_network = %q: the good file was not read", c.Network.DefaultNetwork)
	}
	if len(c.Skipped) != 3 {
		t.Fatalf("skipped %v, want the three hostile files", c.Skipped)
	}
	for i, want := range []error{safefile.ErrNotRegular, safefile.ErrNotRegular, safefile.ErrTooLarge} {
		if !errors.Is(c.Skipped[i], want) {
			t.Errorf("skipped[%d] = %v, want %v", i, c.Skipped[i], want)
		}
	}
}

package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	bolt "go.etcd.io/bbolt"

	"github.com/berthnet/berth/internal/engine"
	"github.com/berthnet/berth/internal/ipam"
	"github.com/berthnet/berth/internal/netstore"
	"github.com/berthnet/berth/internal/network"
)

func loadNet(t *testing.T, tw *testWorld, name string) network.Network {
	t.Helper()
	n, err := netstore.LoadFile(filepath.Join(tw.cfg, name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func mustRun(t *testing.T, tw *testWorld, args ...string) string {
	t.Helper()
	rc, out, errOut := tw.run(t, args...)
	if rc != 0 {
		t.Fatalf("berth %s: rc %d: %s", strings.Join(args, " "), rc, errOut)
	}
	return out
}

// TestCreateFlags covers the create flags beyond Podman 4.3.1's (those are
// in the golden cases).
func TestCreateFlags(t *testing.T) {
	tw := newTestWorld(t, "empty")
	mustRun(t, tw, "network", "create", "--dns", "1.1.1.1,9.9.9.9", "--dns", "2606:4700::1111", "d")
	if n := loadNet(t, tw, "d"); len(n.NetworkDNSServers) != 3 || n.NetworkDNSServers[2].String() != "2606:4700::1111" {
		t.Errorf("--dns: %v", n.NetworkDNSServers)
	}
	mustRun(t, tw, "network", "create", "--interface-name", "br9", "b")
	if n := loadNet(t, tw, "b"); n.NetworkInterface != "br9" {
		t.Errorf("--interface-name: %s", n.NetworkInterface)
	}
	mustRun(t, tw, "network", "create", "--route", "10.9.0.0/16,10.89.2.7,50", "--route", "10.10.0.0/16,10.89.2.8", "r")
	if n := loadNet(t, tw, "r"); len(n.Routes) != 2 || *n.Routes[0].Metric != 50 || n.Routes[1].Metric != nil || n.Routes[0].Gateway.String() != "10.89.2.7" {
		t.Errorf("--route: %+v", n.Routes)
	}
	mustRun(t, tw, "network", "create", "-o", "metric=200", "-o", "vrf=vrf0", "-o", "no_default_route=1", "-o", "isolate=strict", "o")
	if n := loadNet(t, tw, "o"); n.Options["metric"] != "200" || n.Options["vrf"] != "vrf0" || n.Options["no_default_route"] != "true" || n.Options["isolate"] != "strict" {
		t.Errorf("options: %v", n.Options)
	}
	mustRun(t, tw, "network", "create", "-d", "ipvlan", "-o", "parent=lo", "-o", "mode=l3", "--subnet", "198.19.60.0/24", "iv")
	if n := loadNet(t, tw, "iv"); n.Driver != "ipvlan" || n.NetworkInterface != "lo" || n.Options["mode"] != "l3" || n.DNSEnabled {
		t.Errorf("ipvlan: %+v", n)
	}
	mustRun(t, tw, "network", "create", "-d", "macvlan", "--interface-name", "lo", "mvd")
	if n := loadNet(t, tw, "mvd"); n.IPAMDriver() != "dhcp" || len(n.Subnets) != 0 || n.NetworkInterface != "lo" {
		t.Errorf("macvlan without subnet: %+v", n)
	}
	// --ignore leaves an existing network unchanged.
	before, _ := os.ReadFile(filepath.Join(tw.cfg, "b.json"))
	if out := mustRun(t, tw, "network", "create", "--ignore", "--subnet", "198.19.61.0/24", "b"); out != "b\n" {
		t.Errorf("--ignore printed %q", out)
	}
	if after, _ := os.ReadFile(filepath.Join(tw.cfg, "b.json")); !bytes.Equal(before, after) {
		t.Error("--ignore changed the file")
	}
	// Every file berth writes is Podman's format: five spaces, newline.
	b, _ := os.ReadFile(filepath.Join(tw.cfg, "r.json"))
	if !strings.HasPrefix(string(b), "{\n     \"name\": \"r\",") || !strings.HasSuffix(string(b), "}\n") {
		t.Errorf("file format:\n%s", b)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(tw.cfg, ".*tmp*")); len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

// TestCreateErrors covers the validation errors beyond the golden cases:
// each names the flag or value and what would be valid, exit code 125.
func TestCreateErrors(t *testing.T) {
	tw := newTestWorld(t, "empty")
	mustRun(t, tw, "network", "create", "--interface-name", "br9", "taken")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--dns", "1.1.1.1", "--disable-dns", "x"}, "cannot set NetworkDNSServers if DNS is not enabled for the network: invalid argument"},
		{[]string{"--dns", "one.one", "x"}, "--dns one.one: not an IP address"},
		{[]string{"--interface-name", "averyveryverylongname", "x"}, `interface name "averyveryverylongname" is not valid: want 1-15 characters`},
		{[]string{"--interface-name", "br9", "x"}, "bridge name br9 already in use"},
		{[]string{"--route", "10.9.0.0/16", "x"}, "invalid route: 10.9.0.0/16 (want 2 or 3 comma-separated fields)\nFormat: --route <destination in CIDR>,<gateway>,<metric (optional)>"},
		{[]string{"--route", "10.9.0.0/16,nogw", "x"}, "gateway is not an IP address"},
		{[]string{"--route", "10.9.0.0/16,10.1.1.1,x", "x"}, "metric is not a number"},
		{[]string{"--route", "10.9.0.1/16,10.1.1.1", "x"}, "invalid route: destination 10.9.0.1/16 must be a network address (such as 10.9.0.0/16)"},
		{[]string{"-o", "metric=-1", "x"}, "option metric=-1: want a route metric 0-4294967295"},
		{[]string{"-o", "no_default_route=perhaps", "x"}, "option no_default_route=perhaps: want true or false"},
		{[]string{"-o", "mode=foo", "x"}, `unknown bridge mode "foo" (want managed, unmanaged)`},
		{[]string{"-o", "vlan=abc", "x"}, "option vlan=abc: not a number (want a VLAN ID 0-4094)"},
		{[]string{"-d", "ipvlan", "-o", "parent=lo", "-o", "mode=vepa", "--subnet", "198.19.0.0/24", "x"}, `unknown ipvlan mode "vepa" (want l2, l3, l3s)`},
		{[]string{"-d", "ipvlan", "-o", "parent=lo", "--ipam-driver", "dhcp", "x"}, "ipam driver dhcp is not supported with ipvlan"},
		{[]string{"-d", "macvlan", "-o", "parent=lo", "--ipam-driver", "dhcp", "--subnet", "198.19.0.0/24", "x"}, "ipam driver dhcp set but subnets are set"},
		{[]string{"-d", "macvlan", "-o", "parent=lo", "--ipam-driver", "host-local", "x"}, "macvlan driver needs at least one subnet specified when the host-local ipam driver is set"},
		{[]string{"-d", "macvlan", "-o", "bclim=x", "--subnet", "198.19.0.0/24", "x"}, "option bclim=x: want a number"},
		{[]string{"--subnet", "198.19.0.0/24", "--ip-range", "198.19.0.0/25", "--ip-range", "198.19.0.128/25", "x"}, "cannot set more ranges than subnets"},
		{[]string{"--subnet", "198.19.0.0/24", "--subnet", "198.19.0.128/25", "x"}, "subnet 198.19.0.128/25 overlaps subnet 198.19.0.0/24 of the same network"},
		{[]string{"--label", "=v", "x"}, `invalid label "=v": want KEY=VALUE`},
		{[]string{"--bogus", "x"}, "unknown flag: --bogus\nSee 'berth network create --help'"},
	}
	for _, c := range cases {
		rc, _, errOut := tw.run(t, append([]string{"network", "create"}, c.args...)...)
		if rc != 125 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: rc %d, stderr %q, want %q", c.args, rc, errOut, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(tw.cfg, "x.json")); err == nil {
		t.Error("a rejected create wrote x.json")
	}
}

// TestCreateAvoidsHostAndConfig: automatic names skip host interfaces and
// automatic subnets skip host addresses; containers.conf pools, default
// network and config directory are honoured.
func TestCreateAvoidsHostAndConfig(t *testing.T) {
	tw := newTestWorld(t, "empty")
	tw.env.Links = func() (HostLinks, error) {
		return HostLinks{Names: []string{"lo", "eth0", "podman1"}, Prefix: []netip.Prefix{netip.MustParsePrefix("198.19.70.9/26")}}, nil
	}
	conf := `[network]
default_network = "a2default"
default_subnet = "10.123.0.0/24"
default_subnet_pools = [{base = "198.19.70.0/24", size = 26}]
`
	if err := os.WriteFile(tw.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := mustRun(t, tw, "network", "create"); out != "podman2\n" {
		t.Errorf("automatic name %q, want podman2 (podman1 is a host link)", out)
	}
	if n := loadNet(t, tw, "podman2"); n.Subnets[0].Subnet.String() != "198.19.70.64/26" {
		t.Errorf("subnet %s: the pool's first block is on a host interface", n.Subnets[0].Subnet)
	}
	mustRun(t, tw, "network", "create", "second")
	if n := loadNet(t, tw, "second"); n.Subnets[0].Subnet.String() != "198.19.70.128/26" || n.NetworkInterface != "podman3" {
		t.Errorf("second: %s on %s", n.Subnets[0].Subnet, n.NetworkInterface)
	}
	if rc, _, errOut := tw.run(t, "network", "create", "--subnet", "198.19.70.0/25", "x"); rc != 125 || !strings.Contains(errOut, "subnet 198.19.70.0/25 is already used on the host or by another config") {
		t.Errorf("host subnet: %d %s", rc, errOut)
	}
	mustRun(t, tw, "network", "create", "third")
	if rc, _, errOut := tw.run(t, "network", "create", "fourth"); rc != 125 || !strings.Contains(errOut, "could not find free subnet from subnet pools") {
		t.Errorf("pool exhausted: %d %s", rc, errOut)
	}
	out := mustRun(t, tw, "network", "ls", "--format", "{{.Name}} {{.ID}} {{range .Subnets}}{{.Subnet}}{{end}} {{.NetworkInterface}}", "--filter", "name=a2default")
	if out != "a2default 2f259bab93aa 10.123.0.0/24 podman0\n" {
		t.Errorf("default network from containers.conf: %q", out)
	}
	// network_config_dir from containers.conf (without the flag).
	dir := filepath.Join(t.TempDir(), "confdir")
	if err := os.WriteFile(tw.conf, []byte("[network]\nnetwork_config_dir = \""+dir+"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var o, e bytes.Buffer
	env := tw.env
	env.Stdout, env.Stderr = &o, &e
	if rc := Run(context.Background(), []string{"--network-run-dir", tw.rundir, "network", "create", "--subnet", "198.19.71.0/24", "inconf"}, env); rc != 0 {
		t.Fatalf("create: %s", e.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "inconf.json")); err != nil {
		t.Errorf("network_config_dir not honoured: %v", err)
	}
}

func TestRootlessDirectories(t *testing.T) {
	tw := newTestWorld(t, "empty")
	tw.env.Rootless = true
	rt := t.TempDir()
	get := tw.env.Getenv
	tw.env.Getenv = func(k string) string {
		if k == "XDG_RUNTIME_DIR" {
			return rt
		}
		return get(k)
	}
	var o, e bytes.Buffer
	env := tw.env
	env.Stdout, env.Stderr = &o, &e
	if rc := Run(context.Background(), []string{"network", "create", "--subnet", "198.19.72.0/24", "rl"}, env); rc != 0 {
		t.Fatalf("rootless create: %s", e.String())
	}
	if _, err := os.Stat(filepath.Join(tw.env.Home, ".local/share/containers/storage/networks/rl.json")); err != nil {
		t.Errorf("rootless network file: %v", err)
	}
	o.Reset()
	if rc := Run(context.Background(), []string{"info", "--format", "{{.Store.NetworkRunDir}} {{.Host.Security.Rootless}}"}, env); rc != 0 || o.String() != filepath.Join(rt, "containers/networks")+" true\n" {
		t.Errorf("rootless info: %q %s", o.String(), e.String())
	}
	// system reset removes the rootless directory's networks, default
	// export included.
	os.WriteFile(filepath.Join(tw.env.Home, ".local/share/containers/storage/networks/podman.json"), []byte(`{"name":"podman","id":"2f259bab93aaaaa2542ba43ef33eb990d0999ee1b9924b557b7be53c0b7a1bb9","driver":"bridge","network_interface":"podman0","subnets":[{"subnet":"10.88.0.0/16"}]}`), 0o644)
	if rc := Run(context.Background(), []string{"system", "reset", "--force"}, env); rc != 0 {
		t.Fatalf("reset: %s", e.String())
	}
	left, _ := filepath.Glob(filepath.Join(tw.env.Home, ".local/share/containers/storage/networks/*.json"))
	if len(left) != 0 {
		t.Errorf("left after rootless reset: %v", left)
	}
}

func TestSystemResetRootfulKeepsExportedDefault(t *testing.T) {
	tw := newTestWorld(t, "fixtures")
	os.WriteFile(filepath.Join(tw.cfg, "podman.json"), []byte(`{"name":"podman","id":"2f259bab93aaaaa2542ba43ef33eb990d0999ee1b9924b557b7be53c0b7a1bb9","driver":"bridge","network_interface":"podman0","subnets":[{"subnet":"10.88.0.0/16"}]}`), 0o644)
	// No answer (EOF) exits 1 as Podman does; "n" exits 0; neither resets.
	if rc, _, _ := tw.run(t, "system", "reset"); rc != 1 {
		t.Fatalf("reset without --force and EOF on the prompt: rc %d, want 1", rc)
	}
	tw.env.Stdin = strings.NewReader("n\n")
	if rc, _, _ := tw.run(t, "system", "reset"); rc != 0 {
		t.Fatal("reset without --force and a 'no' answer should do nothing")
	}
	if out := mustRun(t, tw, "network", "ls", "-q"); strings.Count(out, "\n") != 7 {
		t.Errorf("reset without confirmation removed networks: %q", out)
	}
	mustRun(t, tw, "system", "reset", "--force")
	if out := mustRun(t, tw, "network", "ls", "-q"); out != "podman\n" {
		t.Errorf("after reset: %q", out)
	}
	if _, err := os.Stat(filepath.Join(tw.cfg, "podman.json")); err != nil {
		t.Error("rootful reset removed the exported default network")
	}
}

func TestLsAndInspectExtras(t *testing.T) {
	tw := newTestWorld(t, "fixtures")
	if out := mustRun(t, tw, "network", "ls", "--format", "json", "--filter", "name=nothing"); out != "[]\n" {
		t.Errorf("empty json: %q", out)
	}
	if out := mustRun(t, tw, "network", "ls", "--format", "{{.Labels}}", "--filter", "name=a2net"); out != "app=web,tier=1\n" {
		t.Errorf("labels sorted: %q", out)
	}
	if out := mustRun(t, tw, "network", "ls", "--format", "table {{.Name}}", "-n", "--filter", "driver=macvlan"); out != "webnetwork\n" {
		t.Errorf("table with --noheading: %q", out)
	}
	if out := mustRun(t, tw, "network", "ls", "--filter", "until=1h", "-q"); !strings.Contains(out, "a2net") || strings.Contains(out, "podman") {
		t.Errorf("until=1h: %q", out)
	}
	if rc, _, errOut := tw.run(t, "network", "ls", "--filter", "until=someday"); rc != 125 || !strings.Contains(errOut, "invalid until filter") {
		t.Errorf("bad until: %d %s", rc, errOut)
	}
	if rc, _, errOut := tw.run(t, "network", "ls", "--filter", "name=("); rc != 125 || !strings.Contains(errOut, "invalid name filter") {
		t.Errorf("bad regex: %d %s", rc, errOut)
	}
	if out := mustRun(t, tw, "network", "inspect", "--format", "json", "minimal"); !strings.HasPrefix(out, "[\n     {") {
		t.Errorf("inspect --format json: %q", out)
	}
}

func TestPruneAsks(t *testing.T) {
	tw := newTestWorld(t, "fixtures")
	tw.env.Stdin = strings.NewReader("n\n")
	if out := mustRun(t, tw, "network", "prune"); !strings.Contains(out, "Are you sure you want to continue? [y/N]") {
		t.Errorf("prompt: %q", out)
	}
	if out := mustRun(t, tw, "network", "ls", "-q"); strings.Count(out, "\n") != 7 {
		t.Errorf("'n' pruned: %q", out)
	}
	tw.env.Stdin = strings.NewReader("y\n")
	mustRun(t, tw, "network", "prune", "--filter", "label!=app=web")
	if out := mustRun(t, tw, "network", "ls", "-q"); out != "a2net\npodman\n" {
		t.Errorf("after prune: %q", out)
	}
	if rc, _, errOut := tw.run(t, "network", "prune", "-f", "--filter", "driver=bridge"); rc != 125 || !strings.Contains(errOut, `invalid filter "driver"`) {
		t.Errorf("prune filter: %d %s", rc, errOut)
	}
}

func TestUpdate(t *testing.T) {
	tw := newTestWorld(t, "fixtures")
	if out := mustRun(t, tw, "network", "update", "--dns-add", "1.1.1.1,9.9.9.9", "--dns-add", "1.1.1.1", "a2net"); out != "a2net\n" {
		t.Errorf("update printed %q", out)
	}
	mustRun(t, tw, "network", "update", "--dns-drop", "1.1.1.1", "--dns-add", "8.8.8.8", "a2net")
	if n := loadNet(t, tw, "a2net"); len(n.NetworkDNSServers) != 2 || n.NetworkDNSServers[0].String() != "9.9.9.9" || n.NetworkDNSServers[1].String() != "8.8.8.8" {
		t.Errorf("servers %v", n.NetworkDNSServers)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"a2net"}, "nothing to update: give --dns-add or --dns-drop"},
		{[]string{"--dns-add", "x.y", "a2net"}, "--dns-add x.y: not an IP address"},
		{[]string{"--dns-add", "1.1.1.1", "a2opts"}, "cannot set NetworkDNSServers if DNS is not enabled for the network a2opts"},
		{[]string{"--dns-add", "1.1.1.1", "nosuch"}, "unable to find network with name or ID nosuch: network not found"},
	} {
		if rc, _, errOut := tw.run(t, append([]string{"network", "update"}, c.args...)...); rc != 125 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: %d %q, want %q", c.args, rc, errOut, c.want)
		}
	}
}

// TestConnectValidatesFirst: bad requests leave no record and no address;
// a setup that fails (the path is no namespace) is rolled back.
func TestConnectValidatesFirst(t *testing.T) {
	tw := newTestWorld(t, "fixtures")
	notNS := filepath.Join(t.TempDir(), "plainfile")
	os.WriteFile(notNS, nil, 0o644)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"nosuchnet", "c"}, "unable to find network with name or ID nosuchnet"},
		{[]string{"a2net", "c"}, `no container with name or ID "c" found: no such container (register a network namespace with --netns PATH or give ns:PATH)`},
		{[]string{"--netns", notNS, "--ip", "10.1.1.1", "a2net", "c"}, "requested static ip 10.1.1.1 not in any subnet on network a2net (192.168.55.0/24)"},
		{[]string{"--netns", notNS, "--ip", "192.168.55.3", "a2net", "c"}, "requested static ip 192.168.55.3 is the gateway of network a2net"},
		{[]string{"--netns", notNS, "--ip", "fd00::1", "a2net", "c"}, "--ip fd00::1: not an IPv4 address"},
		{[]string{"--netns", notNS, "--ip6", "10.0.0.1", "a2net", "c"}, "--ip6 10.0.0.1: not an IPv6 address"},
		{[]string{"--netns", notNS, "--ip", "192.168.55.9", "a2none", "c"}, "network a2none does not hand out addresses (ipam driver none)"},
		{[]string{"--netns", notNS, "--mac-address", "zz", "a2net", "c"}, `--mac-address: "zz" is not an Ethernet MAC address`},
		{[]string{"--netns", notNS, "--alias", "a b", "a2net", "c"}, `--alias "a b": must not be empty or contain spaces or commas`},
		{[]string{"--netns", "/nonexistent/ns", "a2net", "c"}, "--netns /nonexistent/ns"},
		{[]string{"--netns", notNS, "a2net", "bad name"}, `container name "bad name" invalid`},
		{[]string{"--netns", notNS, "a2net", "c"}, "connect container c to network a2net: invalid namespace path"},
		{[]string{"a2net"}, "accepts 2 arg(s), received 1"},
	}
	for _, c := range cases {
		rc, _, errOut := tw.run(t, append([]string{"network", "connect"}, c.args...)...)
		if rc != 125 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: rc %d %q, want %q", c.args, rc, errOut, c.want)
		}
	}
	a, _ := ipam.New(filepath.Join(tw.rundir, "ipam.db"))
	if l, err := a.Dump(); err != nil || len(l) != 0 {
		t.Errorf("leases after failed connects: %v %v", l, err)
	}
	if err := a.Check(); err != nil {
		t.Error(err)
	}
	if all := attachedRecords(t, filepath.Join(filepath.Dir(tw.cfg), "root"), tw.rundir); len(all) != 0 {
		t.Errorf("containers registered by failed connects: %v", all)
	}
	for _, c := range []struct {
		cmd  []string
		want string
	}{
		{[]string{"disconnect", "a2net", "c"}, `no container with name or ID "c" found`},
		{[]string{"reload", "c"}, `no container with name or ID "c" found: no such container`},
		{[]string{"reload", "--all", "c"}, "--all and --latest cannot be used with container names"},
	} {
		if rc, _, errOut := tw.run(t, append([]string{"network"}, c.cmd...)...); rc != 125 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: rc %d %q", c.cmd, rc, errOut)
		}
	}
	if out := mustRun(t, tw, "network", "reload", "--all"); out != "" {
		t.Errorf("reload --all with no containers: %q", out)
	}
}

func TestInfo(t *testing.T) {
	tw := newTestWorld(t, "empty")
	if out := mustRun(t, tw, "info", "--format", "{{.Host.NetworkBackend}}"); out != "netavark\n" {
		t.Errorf("{{.Host.NetworkBackend}} = %q", out)
	}
	out := mustRun(t, tw, "info", "--format", "json")
	var v map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("info json: %v\n%s", err, out)
	}
	out = mustRun(t, tw, "info")
	if got := mustRun(t, tw, "info", "--format", "{{.Host.Slirp4NetNS.Version}}"); !strings.HasPrefix(got, "slirp4netns version 1.2.0 (berth ") {
		t.Errorf("{{.Host.Slirp4NetNS.Version}} = %q", got)
	}
	for _, want := range []string{"host:\n", "  networkBackend: netavark\n", "plugins:\n  network:\n  - bridge\n  - macvlan\n  - ipvlan\n", "  networkConfigDir: " + tw.cfg + "\n", "  slirp4netns:\n    executable: "} {
		if !strings.Contains(out, want) {
			t.Errorf("info lacks %q:\n%s", want, out)
		}
	}
}

func TestGlobalFlagsHelpAndCompletion(t *testing.T) {
	tw := newTestWorld(t, "empty")
	if rc, _, errOut := tw.run(t, "--log-level", "loud", "network", "ls"); rc != 125 || !strings.Contains(errOut, `log level "loud" is not supported, choose from: trace, debug, info, warn, error, fatal, panic`) {
		t.Errorf("bad log level: %d %q", rc, errOut)
	}
	if rc, _, errOut := tw.run(t, "--log-level", "debug", "network", "create", "--subnet", "198.19.80.0/24", "dbg"); rc != 0 || !strings.Contains(errOut, "level=DEBUG") {
		t.Errorf("debug log: %d %q", rc, errOut)
	}
	// --help on every command.
	var o, e bytes.Buffer
	env := tw.env
	env.Stdout, env.Stderr = &o, &e
	var walk func(c *cobra.Command, path []string)
	n := 0
	walk = func(c *cobra.Command, path []string) {
		for _, sub := range c.Commands() {
			p := append(append([]string{}, path...), sub.Name())
			o.Reset()
			if rc := Run(context.Background(), append(p, "--help"), env); rc != 0 || !strings.Contains(o.String(), "Usage:") {
				t.Errorf("%v --help: rc %d\n%s", p, rc, o.String())
			}
			n++
			walk(sub, p)
		}
	}
	walk(rootForTest(env), nil)
	if n < 15 {
		t.Errorf("only %d commands have help", n)
	}
	for _, sh := range []string{"bash", "zsh", "fish", "powershell"} {
		o.Reset()
		if rc := Run(context.Background(), []string{"completion", sh}, env); rc != 0 || o.Len() < 1000 {
			t.Errorf("completion %s: rc %d, %d bytes", sh, rc, o.Len())
		}
	}
	// Network names complete.
	o.Reset()
	Run(context.Background(), []string{"--network-config-dir", tw.cfg, "__complete", "network", "inspect", "db"}, env)
	if !strings.HasPrefix(o.String(), "dbg\n") {
		t.Errorf("completion of network names: %q", o.String())
	}
}

func TestArgv0Dispatch(t *testing.T) {
	var o, e bytes.Buffer
	if rc := Main(context.Background(), "netavark", []string{"version"}, strings.NewReader(""), &o, &e); rc != 0 || !strings.Contains(o.String(), `"default_fw_driver"`) {
		t.Errorf("netavark version: %d %q %q", rc, o.String(), e.String())
	}
	o.Reset()
	if rc := Main(context.Background(), "berth", []string{"version"}, strings.NewReader(""), &o, &e); rc != 0 || !strings.HasPrefix(o.String(), "berth ") {
		t.Errorf("berth version: %d %q", rc, o.String())
	}
}

func rootForTest(env Env) *cobra.Command { return newRoot(env, &globals{}, new(int)) }

// TestLegacyRecordsMigrate: a namespace registered in the CLI's former
// containers.db is the engine's record after the first command: the
// network it is on is in use, and the old database is renamed aside.
func TestLegacyRecordsMigrate(t *testing.T) {
	tw := newTestWorld(t, "fixtures")
	legacy := filepath.Join(tw.rundir, "berth", "containers.db")
	if err := os.MkdirAll(filepath.Dir(legacy), 0o755); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(legacy, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := `{"id":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","name":"web","netns":"/run/netns/web",` +
		`"created":"2026-01-02T03:04:05Z","networks":[{"network":{"name":"a2net","driver":"bridge","network_interface":"podman9"},` +
		`"opts":{"static_ips":["192.168.55.5"],"interface_name":"eth0"}}]}`
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("containers"))
		if err != nil {
			return err
		}
		return b.Put([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"), []byte(rec))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	rc, _, errOut := tw.run(t, "network", "rm", "a2net")
	if rc != 2 || !strings.Contains(errOut, `"a2net" has associated containers with it`) {
		t.Errorf("network rm of a network a migrated namespace is on: rc %d %q", rc, errOut)
	}
	if _, err := os.Stat(legacy + engine.MigratedSuffix); err != nil {
		t.Errorf("legacy database not renamed aside: %v", err)
	}
	all := attachedRecords(t, filepath.Join(filepath.Dir(tw.cfg), "root"), tw.rundir)
	if len(all) != 1 || all[0].Config.Name != "web" || !all[0].Config.Registered || all[0].State.NetNS != "/run/netns/web" {
		t.Fatalf("records after migration: %+v", all)
	}
	// ps lists engine containers only.
	if rc, out, _ := tw.run(t, "ps", "-a", "-q"); rc != 0 || strings.TrimSpace(out) != "" {
		t.Errorf("ps -a shows a registered namespace: rc %d %q", rc, out)
	}
}

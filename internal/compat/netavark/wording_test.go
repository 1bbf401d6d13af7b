package netavark_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/berthnet/berth/internal/compat/netavark"
	"github.com/berthnet/berth/internal/core"
	"github.com/berthnet/berth/internal/network"
)

// createInput is a `netavark create` input; NET stands for the network.
const createInput = `{"network":NET,"used":{"interfaces":[],"names":{"taken":"x"},"subnets":[]},"options":{"default_interface_name":"podman","check_used_subnets":true}}`

var id64 = strings.Repeat("ab", 32)

// createNet is a bridge network definition with extra fields (JSON).
func createNet(extra string) string {
	return `{"name":"n1","id":"` + id64 + `","driver":"bridge","dns_enabled":false` + extra + `}`
}

// netavark create refuses what netavark 2.1 refuses, in its words.
func TestCreateErrorsInNetavarkWords(t *testing.T) {
	cases := []struct{ net, want string }{
		{`{"name":"","id":"` + id64 + `","driver":"bridge"}`, "Network name must be supplied"},
		{`{"name":"badname!","id":"` + id64 + `","driver":"bridge"}`, `Invalid characters in network name "badname!": must match [a-zA-Z0-9][a-zA-Z0-9_.-]*`},
		{`{"name":"taken","id":"` + id64 + `","driver":"bridge"}`, "network already exists taken"},
		{`{"name":"n1","id":"","driver":"bridge"}`, "Network id must be supplied"},
		{`{"name":"n1","id":"xyz","driver":"bridge"}`, `Network id must be a hexadecimal string "xyz"`},
		{createNet(`,"ipam_options":{"driver":"none"},"subnets":[{"subnet":"10.1.0.0/24"}]`), "None ipam driver is set but subnets are given"},
		{createNet(`,"ipam_options":{"driver":"foo"}`), "Unsupported ipam driver: foo"},
		{createNet(`,"options":{"mtu":"abc"}`), `unable to parse "mtu": invalid digit found in string`},
		{createNet(`,"options":{"vlan":"5000"}`), "vlan must be between 0 and 4094"},
		{createNet(`,"subnets":[{"subnet":"10.1.2.0/23"},{"subnet":"10.1.3.248/30"}]`), "overlapping subnets: 10.1.2.0/23 and 10.1.3.248/30"},
		{createNet(`,"subnets":[{"subnet":"10.100.0.0/24"},{"subnet":"10.100.0.0/24"}]`), "duplicate subnet defined: 10.100.0.0/24"},
		{createNet(`,"subnets":[{"subnet":"192.168.0.0/32"}]`), "could not create gateway for subnet 192.168.0.0/32 because it has a 31 or greater subnet prefix"},
		{createNet(`,"subnets":[{"subnet":"10.100.0.0/24","gateway":"10.200.0.1"}]`), "gateway 10.200.0.1 not in subnet 10.100.0.0/24"},
		{createNet(`,"subnets":[{"subnet":"10.100.0.0/24","lease_range":{"start_ip":"10.200.0.20"}}]`), "lease range start_ip 10.200.0.20 not in subnet 10.100.0.0/24"},
		{createNet(`,"routes":[{"destination":"10.89.0.0/24"}]`), "route 10.89.0.0/24 requires a gateway for type unicast"},
		{createNet(`,"routes":[{"destination":"10.89.0.0/24","gateway":"10.88.0.2","route_type":"blackhole"}]`), "route 10.89.0.0/24 must not have a gateway for type blackhole"},
		{createNet(`,"routes":[{"destination":"10.89.0.1/24","gateway":"10.88.0.2"}]`), "route destination invalid"},
		{createNet(`,"routes":[{"destination":"192.168.0.1","gateway":"10.88.0.2"}]`), "failed to load network create: JSON Decoding error: invalid IP address syntax"},
		{createNet(`,"dns_enabled":true,"network_dns_servers":["not.an.ip"]`), "failed to load network create: JSON Decoding error: invalid IP address syntax"},
	}
	for _, tc := range cases {
		out, _, code := run(t, strings.Replace(createInput, "NET", tc.net, 1), "create")
		if got := errorLine(t, out); code != 1 || got != tc.want {
			t.Errorf("%s:\n got %d %q\nwant %q", tc.net, code, got, tc.want)
		}
	}
}

// setupInput is a setup input with network a of driver DRV, subnets
// SUBNETS and static addresses IPS.
const setupInput = `{"container_id":"x","container_name":"y","networks":{"a":{"interface_name":"eth0","static_ips":IPS}},"port_mappings":PORTS,
 "network_info":{"a":{"name":"a","driver":"DRV","network_interface":"b0","subnets":SUBNETS,"ipam_options":{"driver":"IPAM"}}}}`

func setupCase(drv, ipam, subnets, ips, ports string) string {
	return strings.NewReplacer("DRV", drv, "IPAM", ipam, "SUBNETS", subnets, "IPS", ips, "PORTS", ports).Replace(setupInput)
}

// setup's validation errors are netavark's words, and checked in its
// order (overlapping subnets before the static addresses).
func TestSetupErrorsInNetavarkWords(t *testing.T) {
	two := `[{"subnet":"10.88.0.0/16","gateway":"10.88.0.1"},{"subnet":"10.89.0.0/16","gateway":"10.89.0.1"}]`
	cases := []struct{ in, want string }{
		{setupCase("macvlan", "host-local", `[{"subnet":"10.1.2.0/23","gateway":"10.1.2.1"},{"subnet":"10.1.3.248/30","gateway":"10.1.3.249"}]`, `["10.1.2.5","10.1.3.249"]`, "[]"),
			"overlapping subnets: 10.1.2.0/23 and 10.1.3.248/30"},
		{setupCase("ipvlan", "host-local", `[{"subnet":"10.88.0.0/16"},{"subnet":"10.88.0.0/16"}]`, `["10.88.0.5"]`, "[]"),
			"duplicate subnet defined: 10.88.0.0/16"},
		{setupCase("macvlan", "host-local", two, `["10.88.0.5","10.89.0.10","10.90.0.15"]`, "[]"),
			"not all static IPs matched a subnet: expected 3, got 2"},
		{setupCase("bridge", "someDriver", `[]`, `[]`, "[]"), "unsupported ipam driver someDriver"},
		{setupCase("bridge", "dhcp", `[]`, `[]`, "[]"), "cannot use dhcp ipam driver without using the option mode=unmanaged"},
		{setupCase("bridge", "host-local", two, `["10.88.0.5","10.89.0.5"]`, `[{"host_ip":"abcd","container_port":80,"host_port":8080,"protocol":"tcp"}]`),
			`invalid host ip "abcd" provided for port 8080`},
	}
	for _, tc := range cases {
		out, _, code := run(t, tc.in, "--config", t.TempDir(), "setup", "/proc/self/ns/net")
		if got := errorLine(t, out); code != 1 || got != tc.want {
			t.Errorf("%s:\n got %d %q\nwant %q", tc.in, code, got, tc.want)
		}
	}
}

// A namespace path or input file that does not exist is reported as
// netavark reports a failed system call, the namespace first.
func TestMissingPathsInRustsWords(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.json")
	if err := os.WriteFile(in, []byte(setupCase("bridge", "host-local", `[{"subnet":"10.1.0.0/24"}]`, `["10.1.0.2"]`, "[]")), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, code := run(t, "", "--config", dir, "-f", filepath.Join(dir, "missing"), "setup", filepath.Join(dir, "nons"))
	if got := errorLine(t, out); code != 1 || got != "invalid namespace path: IO error: No such file or directory (os error 2)" {
		t.Errorf("missing namespace: %d %q", code, got)
	}
	out, _, code = run(t, "", "--config", dir, "-f", filepath.Join(dir, "missing"), "setup", "/proc/self/ns/net")
	if got := errorLine(t, out); code != 1 || got != "failed to load network options: IO error: No such file or directory (os error 2)" {
		t.Errorf("missing input: %d %q", code, got)
	}
}

// Rust's text for an errno is the C library's message and the number,
// for any errno.
func TestOSErrorText(t *testing.T) {
	for errno, want := range map[syscall.Errno]string{
		syscall.ENOENT: "No such file or directory (os error 2)",
		syscall.EACCES: "Permission denied (os error 13)",
		syscall.EEXIST: "File exists (os error 17)",
		syscall.EPERM:  "Operation not permitted (os error 1)",
	} {
		if got := netavark.OSErrorText(errno); got != want {
			t.Errorf("%d: %q, want %q", errno, got, want)
		}
	}
}

// The failures of setup's steps the core reports with typed errors are
// netavark's words.
func TestSetupStepFailuresInNetavarkWords(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{fmt.Errorf("network podman: create veth pair: %w", &network.InterfaceExistsError{Name: "eth0", Err: syscall.EEXIST}),
			"create veth pair: interface eth0 already exists on container namespace: Netlink error: File exists (os error 17)"},
		{fmt.Errorf("network podman: create veth pair: %w", &network.InterfaceExistsError{Name: "eth0", HostName: "podman0", Err: syscall.EEXIST}),
			"create veth pair: interface eth0 already exists on container namespace or podman0 exists on host namespace: Netlink error: File exists (os error 17)"},
		{fmt.Errorf("network podman1: %w", &network.BridgeAddrError{Addr: mustPrefix("fd10:88:a::1/64"), Bridge: "podman1", Err: syscall.EACCES}),
			"add ip addr to bridge: failed to add ipv6 address, is ipv6 enabled in the kernel?: Netlink error: Permission denied (os error 13)"},
		{&network.DNSStartError{Err: fmt.Errorf("exit status 1")},
			"error while applying dns entries: aardvark-dns exited unexpectedly without error message"},
		{&network.DNSStartError{Stderr: "bind: address in use", Err: fmt.Errorf("exit status 1")},
			"error while applying dns entries: aardvark-dns failed to start: bind: address in use"},
		{&core.NetworkError{Network: "podman", Err: fmt.Errorf("set up sysctls: %w", &network.SysctlWriteError{Key: "net.ipv4.ip_forward", Value: "1", Err: syscall.EROFS})},
			"set sysctl net/ipv4/ip_forward: IO error: Read-only file system (os error 30)"},
		{&core.NetworkError{Network: "podman", Err: fmt.Errorf("bridge podman0 must already exist")},
			"bridge podman0 must already exist"},
		{&core.NetworkError{Network: "podman", Err: &network.MissingLinkError{Role: "vrf", Name: "test-vrf", Err: errors.New("link not found")}},
			"get vrf to set up bridge interface: Netlink error: No such device (os error 19)"},
		{&core.NetworkError{Network: "podman", Err: &network.MissingLinkError{Role: "bridge", Name: "brtest0", Err: errors.New("link not found")}},
			"in unmanaged mode, the bridge must already exist on the host: Netlink error: No such device (os error 19)"},
		{&core.NetworkError{Network: "podman", Err: fmt.Errorf("dns: %w", &core.NoDNSAddressError{Bridge: "brtest0"})},
			"bridge 'brtest0' in unmanaged mode has no usable IP addresses. Aardvark-dns requires at least one address (should not be an IPv6 link-local address) to bind to. Please add an IP address or disable DNS for this network (--disable-dns)."},
		{fmt.Errorf("something else"), "something else"},
	}
	for _, tc := range cases {
		if got := netavark.Wording("setup", tc.err); got != tc.want {
			t.Errorf("%v:\n got %q\nwant %q", tc.err, got, tc.want)
		}
	}
}

// Invalid aliases are dropped with netavark's warning on a bridge
// network with DNS, silently elsewhere; valid ones are kept.
func TestInvalidAliasesWarnedAndSkipped(t *testing.T) {
	in := `{"container_id":"x","container_name":"y","networks":{
	  "a":{"interface_name":"eth0","aliases":["valid","space 1","comma,1","newline\n2"]},
	  "b":{"interface_name":"eth1","aliases":["other","bad one"]}},
	 "network_info":{"a":{"name":"a","driver":"bridge","dns_enabled":true},"b":{"name":"b","driver":"bridge"}}}`
	var o network.Options
	if err := json.Unmarshal([]byte(in), &o); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	netavark.DropInvalidAliases(&o, &log, "netavark=warn")
	want := `[WARN  netavark::network::bridge] invalid network alias "space 1": name contains invalid chars, ignoring this name
[WARN  netavark::network::bridge] invalid network alias "comma,1": name contains invalid chars, ignoring this name
[WARN  netavark::network::bridge] invalid network alias "newline\n2": name contains invalid chars, ignoring this name
`
	if log.String() != want {
		t.Errorf("log:\n%s\nwant:\n%s", log.String(), want)
	}
	if a, b := o.Networks[0].Aliases, o.Networks[1].Aliases; len(a) != 1 || a[0] != "valid" || len(b) != 1 || b[0] != "other" {
		t.Errorf("aliases kept: %q %q", a, b)
	}
	log.Reset()
	netavark.DropInvalidAliases(&o, &log, "")
	if log.Len() != 0 {
		t.Errorf("logged without RUST_LOG: %q", log.String())
	}
}

// Log lines are env_logger's, the firewall driver's line first: what
// netavark's tests look for on stderr. (Only the none driver is run here:
// the test must not touch the host's firewall.)
func TestFirewallDriverLogLine(t *testing.T) {
	var out, errb strings.Builder
	// firewall-reload with an empty state directory does nothing but pick
	// the driver.
	netavark.Run(t.Context(), []string{"--config", t.TempDir(), "firewall-reload"}, netavark.Env{
		Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb,
		Getenv: func(k string) string {
			return map[string]string{"NETAVARK_FW": "none", "RUST_LOG": "netavark=info"}[k]
		},
	})
	if want := "[INFO  netavark::firewall] Not using firewall\n"; !strings.HasPrefix(errb.String(), want) {
		t.Errorf("stderr %q, want it to start with %q", errb.String(), want)
	}
	for fw, want := range map[string]string{"nftables": "Using nftables firewall driver", "iptables": "Using iptables firewall driver", "firewalld": "Using firewalld firewall driver"} {
		if got := netavark.FirewallLine(fw); got != want {
			t.Errorf("%s: %q, want %q", fw, got, want)
		}
	}
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/berthnet"
	"github.com/berthnet/berth/internal/doctor"
	"github.com/berthnet/berth/internal/nettest"
)

// dhost is a host namespace with a default route to "outside", a network
// dn (198.19.30.0/24, DNS on) with the registered namespace dc attached by
// the CLI, and a network pn (198.19.31.0/24, bridge brpn) with container
// pctr attached through the Go API, publishing 8080/tcp and 8053/udp.
type dhost struct {
	*ptopo
	c, pc  *nettest.NS
	bridge string // dn's bridge
}

func newDoctorHost(t *testing.T) *dhost {
	t.Helper()
	p := newPTopo(t)
	d := &dhost{ptopo: p}
	d.run(t, "ip", "route", "add", "default", "via", "198.18.0.2")
	p.must(t, "network", "create", "--subnet", "198.19.30.0/24", "dn")
	d.bridge = strings.TrimSpace(p.must(t, "network", "inspect", "--format", "{{.NetworkInterface}}", "dn"))
	d.c = nettest.NewNS(t, nettest.RandName("dc"))
	p.must(t, "network", "connect", "--netns", d.c.Path(), "dn", "dc")

	h, err := berthnet.New(berthnet.Config{StateDir: p.run, HostNetns: p.host.Path()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	d.pc = nettest.NewNS(t, nettest.RandName("pc"))
	n := berthnet.Network{Name: "pn", Interface: "brpn", Subnets: []berthnet.Subnet{{Prefix: netip.MustParsePrefix("198.19.31.0/24"), Gateway: netip.MustParseAddr("198.19.31.1")}}}
	_, err = h.Attach(context.Background(), n, berthnet.AttachOptions{ContainerID: "pctr", Netns: d.pc.Path(), Addresses: []netip.Addr{netip.MustParseAddr("198.19.31.2")},
		Ports: []berthnet.PortMapping{{HostPort: 8080, ContainerPort: 80}, {HostPort: 8053, ContainerPort: 53, Protocol: "udp"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Detach(context.Background(), "pctr", "eth0") })
	// The firewall watcher the CLI's setup started would mend the damage
	// these tests show the doctor before the doctor looks.
	stopWatcher(t, p.run)
	return d
}

// stopWatcher stops the firewall watcher of the run directory, by the PID
// in its pid file, and waits until it is gone.
func stopWatcher(t *testing.T, runDir string) {
	t.Helper()
	p := filepath.Join(runDir, "berth", "firewall-watch.pid")
	var pid int
	for deadline := time.Now().Add(10 * time.Second); pid == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		b, _ := os.ReadFile(p)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	if pid == 0 {
		t.Fatalf("no firewall watcher in %s", p)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatalf("stop the firewall watcher %d: %v", pid, err)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if b, _ := os.ReadFile(p); strings.TrimSpace(string(b)) == "" {
			return
		}
	}
	t.Fatalf("the firewall watcher %d did not stop", pid)
}

// run runs a command in the host namespace.
func (d *dhost) run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := nettest.Run(d.host, 10*time.Second, args[0], args[1:]...); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// doctor runs berth network doctor --format json [args] and returns the
// report and the exit code.
func (d *dhost) doctor(t *testing.T, args ...string) (doctor.Report, int) {
	t.Helper()
	full := append([]string{"--net=" + d.host.Path(), "--", d.bin, "--network-config-dir", d.cfg, "--network-run-dir", d.ptopo.run, "--root", d.root, "--runroot", d.runRoot,
		"network", "doctor", "--format", "json"}, args...)
	cmd := exec.Command("nsenter", full...)
	cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+d.conf)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	var r doctor.Report
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("doctor output (exit %d): %v\n%s\n%s", code, err, stdout.String(), stderr.String())
	}
	return r, code
}

// expect checks that the doctor exits 1 and names finding id (on network,
// for container when given), with a fix that contains fix.
func (d *dhost) expect(t *testing.T, id, network, container, fix string, args ...string) doctor.Report {
	t.Helper()
	r, code := d.doctor(t, args...)
	if code != 1 || r.Healthy {
		t.Errorf("exit %d, healthy %v; want 1, false", code, r.Healthy)
	}
	found := false
	for _, f := range r.Findings {
		if f.ID == id && f.Network == network && (container == "" || f.Container == container) {
			found = true
			if !strings.Contains(f.Fix, fix) {
				t.Errorf("%s: fix %q does not say %q", id, f.Fix, fix)
			}
			if f.What == "" || f.Why == "" {
				t.Errorf("%s: no explanation: %+v", id, f)
			}
		}
	}
	if !found {
		t.Errorf("no %s finding on %s; got %s", id, network, describeFindings(r))
	}
	return r
}

func describeFindings(r doctor.Report) string {
	var s []string
	for _, f := range r.Findings {
		s = append(s, f.ID+"@"+f.Network+": "+f.What)
	}
	return "[" + strings.Join(s, "; ") + "] notes " + strings.Join(r.Notes, "; ")
}

func ids(r doctor.Report) []string {
	var out []string
	for _, f := range r.Findings {
		out = append(out, f.ID)
	}
	return out
}

// TestPrivilegedDoctorHealthy: a host as berth leaves it is healthy: exit
// 0, for every network, one network and one container.
func TestPrivilegedDoctorHealthy(t *testing.T) {
	d := newDoctorHost(t)
	for _, args := range [][]string{nil, {"dn"}, {"pn"}, {"dc"}, {"pctr"}} {
		r, code := d.doctor(t, args...)
		if code != 0 || !r.Healthy {
			t.Errorf("doctor %v: exit %d, %s", args, code, describeFindings(r))
		}
	}
	r, _ := d.doctor(t)
	if !slices.Equal(r.Networks, []string{"dn", "pn"}) {
		t.Errorf("networks checked: %v", r.Networks)
	}
	// The text form says so too.
	out := d.must(t, "network", "doctor")
	if !strings.Contains(out, "network dn: ok") || !strings.Contains(out, "No problems found on 2 networks") {
		t.Errorf("text output:\n%s", out)
	}
}

func TestPrivilegedDoctorIPForward(t *testing.T) {
	d := newDoctorHost(t)
	nettest.ServeBanner(nettest.Listen(t, d.outside, "tcp4", "198.18.0.2:80"), "outside")
	if got, err := nettest.Fetch(d.c, "tcp4", "198.18.0.2:80"); err != nil || got != "outside" {
		t.Fatalf("egress before: %q %v", got, err)
	}
	d.run(t, "sysctl", "-qw", "net.ipv4.ip_forward=0")
	if _, err := nettest.FetchWithin(d.c, "tcp4", "198.18.0.2:80", time.Second); err == nil {
		t.Fatal("egress works with forwarding off")
	}
	d.expect(t, doctor.IPForwardOff, "dn", "", "sysctl -w net.ipv4.ip_forward=1")
	// Limited to a container, the finding is about its network.
	r := d.expect(t, doctor.IPForwardOff, "dn", "", "ip_forward", "dc")
	for _, f := range r.Findings {
		if f.Network != "dn" {
			t.Errorf("doctor dc reports on %s", f.Network)
		}
	}
	// The text form names it, with the fix.
	out, err := d.berth("network", "doctor", "dn")
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(out, "ip-forward-off") || !strings.Contains(out, "fix: sysctl -w net.ipv4.ip_forward=1") {
		t.Errorf("text: %v\n%s", err, out)
	}
}

func TestPrivilegedDoctorTableMissing(t *testing.T) {
	d := newDoctorHost(t)
	d.run(t, "nft", "delete", "table", "inet", "berth")
	d.expect(t, doctor.FirewallMissing, "dn", "", "berth network reload --all")
	d.expect(t, doctor.FirewallMissing, "pn", "", "berth network reload --all")
}

func TestPrivilegedDoctorMapElementMissing(t *testing.T) {
	d := newDoctorHost(t)
	d.run(t, "nft", "delete", "element", "inet", "berth", "pf4any", "{ tcp . 8080 }")
	r := d.expect(t, doctor.PortForwardMissing, "pn", "pctr/eth0", "berth network reload --all")
	if slices.Contains(ids(r), doctor.FirewallMissing) {
		t.Errorf("a missing element reported as missing rules: %s", describeFindings(r))
	}
}

func TestPrivilegedDoctorForeignDrop(t *testing.T) {
	d := newDoctorHost(t)
	nettest.ServeBanner(nettest.Listen(t, d.outside, "tcp4", "198.18.0.2:80"), "outside")
	if got, err := nettest.Fetch(d.c, "tcp4", "198.18.0.2:80"); err != nil || got != "outside" {
		t.Fatalf("egress before: %q %v", got, err)
	}
	// Docker's way: the iptables FORWARD policy drop.
	d.run(t, "iptables", "-P", "FORWARD", "DROP")
	if _, err := nettest.FetchWithin(d.c, "tcp4", "198.18.0.2:80", time.Second); err == nil {
		t.Fatal("egress works with a foreign drop policy")
	}
	r := d.expect(t, doctor.ForeignDrop, "dn", "", "iptables -I FORWARD -i "+d.bridge+" -j ACCEPT")
	if !strings.Contains(describeFindings(r), "table ip filter chain FORWARD") {
		t.Errorf("the chain is not named: %s", describeFindings(r))
	}
	d.expect(t, doctor.ForeignDrop, "dn", "", "berth network reload --all")
	// berth's reload puts its accept rules at the end of FORWARD: the
	// traffic flows and the doctor says the rules are in place.
	d.must(t, "network", "reload", "--all")
	if got, err := nettest.Fetch(d.c, "tcp4", "198.18.0.2:80"); err != nil || got != "outside" {
		t.Fatalf("egress after the reload: %q %v", got, err)
	}
	r, _ = d.doctor(t)
	if slices.Contains(ids(r), doctor.ForeignDrop) {
		t.Errorf("foreign drop reported with berth's accept rules in place: %s", describeFindings(r))
	}
	if notes := strings.Join(r.Notes, "\n"); !strings.Contains(notes, "network dn: Table ip filter chain FORWARD drops forwarded traffic by policy; berth's accept rules for the network are in place in chain FORWARD") {
		t.Errorf("notes do not say the accept rules are in place: %q", r.Notes)
	}
	// A drop rule before them, instead of the policy.
	d.run(t, "iptables", "-P", "FORWARD", "ACCEPT")
	d.run(t, "iptables", "-I", "FORWARD", "-j", "DROP")
	r = d.expect(t, doctor.ForeignDrop, "pn", "", "Remove that rule")
	if !strings.Contains(describeFindings(r), "rule handle") {
		t.Errorf("the rule is not named: %s", describeFindings(r))
	}
}

// TestPrivilegedDoctorBridgeNF: with br_netfilter's bridge-nf-call-iptables
// on, a foreign forward drop also cuts containers of one network off from
// each other; off, it does not.
func TestPrivilegedDoctorBridgeNF(t *testing.T) {
	d := newDoctorHost(t)
	if _, err := os.Stat("/proc/sys/net/bridge/bridge-nf-call-iptables"); err != nil {
		t.Skip("br_netfilter is not loaded on this kernel (its sysctls are missing); berth does not load modules")
	}
	c2 := nettest.NewNS(t, nettest.RandName("dc2"))
	d.must(t, "network", "connect", "--netns", c2.Path(), "dn", "dc2")
	stopWatcher(t, d.ptopo.run) // that setup started one again
	nettest.ServeBanner(nettest.Listen(t, c2, "tcp4", "198.19.30.3:80"), "c2")
	d.run(t, "iptables", "-P", "FORWARD", "DROP")
	d.run(t, "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1")
	if _, err := nettest.FetchWithin(d.c, "tcp4", "198.19.30.3:80", time.Second); err == nil {
		t.Fatal("containers of one network reach each other through a foreign drop with bridge-nf-call-iptables on")
	}
	d.expect(t, doctor.BridgeNFDrop, "dn", "", "net.bridge.bridge-nf-call-iptables=0")
	d.run(t, "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=0")
	if got, err := nettest.Fetch(d.c, "tcp4", "198.19.30.3:80"); err != nil || got != "c2" {
		t.Fatalf("same network with bridge-nf-call-iptables off: %q %v", got, err)
	}
	r := d.expect(t, doctor.ForeignDrop, "dn", "", "ACCEPT")
	if slices.Contains(ids(r), doctor.BridgeNFDrop) {
		t.Errorf("bridge-nf reported while off: %s", describeFindings(r))
	}
}

func TestPrivilegedDoctorRPFilter(t *testing.T) {
	d := newDoctorHost(t)
	d.run(t, "sysctl", "-qw", "net.ipv4.conf."+d.bridge+".rp_filter=1")
	d.expect(t, doctor.RPFilterStrict, "dn", "", "sysctl -w net.ipv4.conf."+d.bridge+".rp_filter=2")
}

func TestPrivilegedDoctorRouteOverlap(t *testing.T) {
	d := newDoctorHost(t)
	// A more specific route through the uplink.
	d.run(t, "ip", "route", "add", "198.19.30.128/25", "dev", "eth0")
	d.expect(t, doctor.RouteOverlap, "dn", "", "ip route del 198.19.30.128/25 dev eth0")
	d.run(t, "ip", "route", "del", "198.19.30.128/25", "dev", "eth0")
	// A VPN's way: its own table, consulted first by a rule.
	d.run(t, "ip", "route", "add", "default", "dev", "eth0", "table", "51820")
	d.run(t, "ip", "rule", "add", "pref", "100", "lookup", "51820")
	r := d.expect(t, doctor.RouteOverlap, "pn", "", "table 51820")
	if !strings.Contains(describeFindings(r), "rule priority 100") {
		t.Errorf("the rule is not named: %s", describeFindings(r))
	}
	// wg-quick's way is healthy: a rule before it has the main table's
	// own routes (longer than /0) win.
	d.run(t, "ip", "rule", "del", "pref", "100")
	d.run(t, "ip", "rule", "add", "pref", "100", "lookup", "main", "suppress_prefixlength", "0")
	d.run(t, "ip", "rule", "add", "pref", "101", "lookup", "51820")
	if r, code := d.doctor(t); code != 0 {
		t.Errorf("suppress_prefixlength 0 before the VPN table: exit %d, %s", code, describeFindings(r))
	}
}

func TestPrivilegedDoctorDNSNotRunning(t *testing.T) {
	d := newDoctorHost(t)
	pid := dnsPID(t, d)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(t, pid)
	d.expect(t, doctor.DNSNotRunning, "dn", "", "berth network reload --all")
}

func TestPrivilegedDoctorDNSNotListening(t *testing.T) {
	d := newDoctorHost(t)
	dnsPID(t, d)
	// containers.conf now says the DNS server listens on 5353; the
	// running one was started on 53.
	if err := os.WriteFile(d.conf, []byte("[network]\ndefault_subnet_pools = [{base = \"198.19.128.0/17\", size = 24}]\ndns_bind_port = 5353\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.expect(t, doctor.DNSNotListening, "dn", "", "berth network reload --all")
}

// dnsPID returns the PID of the DNS server berth started for dd.
func dnsPID(t *testing.T, d *dhost) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(d.ptopo.run, "aardvark-dns", "aardvark.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		t.Fatalf("pid file %q", b)
	}
	return pid
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	for i := 0; i < 100; i++ {
		if err := syscall.Kill(pid, 0); err != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("process %d still there", pid)
}

func TestPrivilegedDoctorPortTaken(t *testing.T) {
	d := newDoctorHost(t)
	l := nettest.Listen(t, d.host, "tcp4", "0.0.0.0:8080")
	defer l.Close()
	// (The Go API records the container as ID/interface.)
	r := d.expect(t, doctor.PortTaken, "pn", "pctr/eth0", "-p OTHER:80", "pctr")
	if !strings.Contains(describeFindings(r), "process "+strconv.Itoa(os.Getpid())) {
		t.Errorf("the process is not named: %s", describeFindings(r))
	}
}

func TestPrivilegedDoctorMTU(t *testing.T) {
	d := newDoctorHost(t)
	d.run(t, "ip", "link", "set", "eth0", "mtu", "1400")
	d.expect(t, doctor.MTUMismatch, "dn", "", "mtu=1400")
}

func TestPrivilegedDoctorStaleConntrack(t *testing.T) {
	d := newDoctorHost(t)
	var h *netlink.Handle
	if err := d.host.Do(func() (err error) {
		h, err = netlink.NewHandle(unix.NETLINK_NETFILTER)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	// A UDP flow to the published 8053 that still goes to 198.19.31.99, an
	// address the container had before (it has 198.19.31.2 now).
	flow := &netlink.ConntrackFlow{
		FamilyType: unix.AF_INET,
		Forward:    netlink.IPTuple{Protocol: unix.IPPROTO_UDP, SrcIP: net.ParseIP("198.18.0.2").To4(), SrcPort: 40000, DstIP: net.ParseIP("198.18.0.1").To4(), DstPort: 8053},
		Reverse:    netlink.IPTuple{Protocol: unix.IPPROTO_UDP, SrcIP: net.ParseIP("198.19.31.99").To4(), SrcPort: 53, DstIP: net.ParseIP("198.18.0.2").To4(), DstPort: 40000},
		TimeOut:    300,
	}
	if err := h.ConntrackCreate(netlink.ConntrackTable, unix.AF_INET, flow); err != nil {
		t.Skipf("this kernel does not take a conntrack entry from netlink: %v", err)
	}
	d.expect(t, doctor.StaleConntrack, "pn", "pctr/eth0", "conntrack -D -p udp --orig-port-dst 8053")
}

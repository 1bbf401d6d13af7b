package netavark_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berthnet/berth/internal/compat/netavark"
	"github.com/berthnet/berth/internal/nettest"
	"github.com/berthnet/berth/internal/network"
)

func run(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := netavark.Run(context.Background(), args, netavark.Env{
		Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb,
		Getenv: func(k string) string { return map[string]string{"NETAVARK_FW": "none"}[k] },
	})
	return out.String(), errb.String(), code
}

// errorLine checks netavark's error convention: exactly one JSON object with
// only "error" on stdout.
func errorLine(t *testing.T, out string) string {
	t.Helper()
	if strings.Count(out, "\n") != 1 {
		t.Fatalf("want one line on stdout, got %q", out)
	}
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	var e struct {
		Error string `json:"error"`
	}
	if err := dec.Decode(&e); err != nil || e.Error == "" {
		t.Fatalf("stdout %q is not a netavark error object: %v", out, err)
	}
	return e.Error
}

// good is a setup input with one network, a; NETS stands for its networks.
const good = `{"container_id":"x","container_name":"y","networks":NETS,"network_info":{"a":{"name":"a","driver":"bridge","network_interface":"b0","subnets":[{"subnet":"10.0.0.0/24","gateway":"10.0.0.1"}]}}}`

func TestErrorsAreJSONWithExitCode1(t *testing.T) {
	cases := []struct {
		stdin string
		args  []string
		want  string
	}{
		{`{`, []string{"setup", "/proc/self/ns/net"}, "failed to load network options"},
		{``, []string{"setup", "/proc/self/ns/net"}, "failed to load network options"},
		{`{"container_id":"x","container_name":"y","networks":{"a":{"interface_name":"eth0"}},"network_info":{"a":{"name":"a","driver":"foo"}}}`,
			[]string{"setup", "/proc/self/ns/net"}, `unknown network driver "foo"`},
		{`{"container_id":"x","container_name":"y","networks":{"a":{"interface_name":"eth0"}},"network_info":{"a":{"name":"a","driver":"bridge","network_interface":"b0","subnets":[{"subnet":"10.0.0.0/24"}]}}}`,
			[]string{"setup", "/proc/self/ns/net"}, "no static ips provided"},
		{`{"container_id":"x","container_name":"y","networks":[],"network_info":{}}`, []string{"setup", "/proc/self/ns/net"}, "networks: must specify at least one network"},
		{`{"container_id":"x","container_name":"y","networks":{},"network_info":{}}`, []string{"setup", "/proc/self/ns/net"}, "networks: must specify at least one network"},
		{`{"container_id":"x","container_name":"y","network_info":{}}`, []string{"setup", "/proc/self/ns/net"}, "networks: must specify at least one network"},
		{strings.Replace(good, "NETS", `{"a":{"interface_name":"eth0","static_ips":["10.0.0.255"]}}`, 1), []string{"setup", "/proc/self/ns/net"},
			"networks.a.static_ips[0]: 10.0.0.255 is the broadcast address of subnet 10.0.0.0/24; want an address from 10.0.0.1 to 10.0.0.254"},
		{strings.Replace(good, "NETS", `{"a":{"interface_name":"eth0","static_ips":["10.0.0.0"]}}`, 1), []string{"setup", "/proc/self/ns/net"},
			"networks.a.static_ips[0]: 10.0.0.0 is the network address of subnet 10.0.0.0/24"},
		{strings.Replace(strings.Replace(good, "10.0.0.0/24", "127.0.0.0/8", 1), "NETS", `{"a":{"interface_name":"eth0","static_ips":["127.0.0.2"]}}`, 1), []string{"setup", "/proc/self/ns/net"},
			"network a.subnets[0].subnet: 127.0.0.0/8 overlaps the loopback range"},
		{strings.Replace(good, "NETS", `{"a":{"interface_name":"eth0","static_ips":["10.0.0.2"]}},"port_mappings":[{"host_port":8080,"container_port":80,"protocol":"tcp"},{"host_port":8080,"container_port":81,"protocol":"tcp"}]`, 1), []string{"setup", "/proc/self/ns/net"},
			"port_mappings[1].host_port: host port 8080/tcp (all addresses) is published twice: to container port 80 (mapping 0) and to container port 81 (mapping 1)"},
		{`{}`, []string{"update", "net1", "--network-dns-servers", "1.2.3.4"}, "--config not specified"},
		{`{}`, []string{"--config", "/tmp", "update", "net1", "--network-dns-servers", "nope"}, "not an IP address"},
	}
	for _, tc := range cases {
		out, _, code := run(t, tc.stdin, append([]string{"--config", t.TempDir()}, tc.args...)...)
		if tc.args[0] == "update" {
			out, _, code = run(t, tc.stdin, tc.args...)
		}
		if code != 1 {
			t.Errorf("%v: exit %d, want 1", tc.args, code)
		}
		if msg := errorLine(t, out); !strings.Contains(msg, tc.want) {
			t.Errorf("%v: error %q, want it to mention %q", tc.args, msg, tc.want)
		}
	}
	out, _, code := run(t, strings.Replace(good, "NETS", `{"a":{"interface_name":"eth0","static_ips":["10.0.0.2"]}}`, 1), "--config", t.TempDir(), "setup", "/nonexistent/netns")
	if code != 1 || !strings.HasPrefix(errorLine(t, out), "invalid namespace path") {
		t.Errorf("bad netns: %d %q", code, out)
	}
}

func TestUsageErrorsExit2OnStderr(t *testing.T) {
	for _, args := range [][]string{{"bogus"}, {"setup"}, {"--nope", "setup", "x"}, {"setup", "a", "b"}} {
		out, errOut, code := run(t, "", args...)
		if code != 2 || out != "" || !strings.Contains(errOut, "error:") {
			t.Errorf("%v: code %d stdout %q stderr %q", args, code, out, errOut)
		}
	}
}

func TestVersionJSON(t *testing.T) {
	out, _, code := run(t, "", "version")
	var v map[string]string
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || v["version"] == "" || v["default_fw_driver"] != "nftables" {
		t.Fatalf("version: %d %q", code, out)
	}
	for _, k := range []string{"commit", "build_time", "target"} {
		if _, ok := v[k]; !ok {
			t.Errorf("version JSON lacks %q", k)
		}
	}
	out, _, code = run(t, "", "--version")
	if code != 0 || !strings.HasPrefix(out, "netavark ") {
		t.Errorf("--version: %d %q", code, out)
	}
}

// buildBinary builds berth once for the end-to-end tests.
func buildBinary(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	berth := filepath.Join(dir, "berth")
	cmd := exec.Command("go", "build", "-o", berth, "github.com/berthnet/berth/cmd/berth")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	if err := os.Symlink("berth", filepath.Join(dir, "netavark")); err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command("go", "build", "-o", filepath.Join(dir, "aardvark-dns"), "github.com/berthnet/berth/cmd/aardvark-dns")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return filepath.Join(dir, "netavark")
}

// TestPrivilegedPodmanStyleCallWithAardvark runs the binary exactly as
// Podman 4.3.1 does, inside a fresh host namespace, with Debian's
// aardvark-dns: the StatusBlock has Podman's shape, the name resolves
// through the DNS server netavark started, and teardown stops it.
func TestPrivilegedPodmanStyleCallWithAardvark(t *testing.T) {
	nettest.Privileged(t)
	if _, err := exec.LookPath("dig"); err != nil {
		t.Skip("dig is not installed (apt-get install dnsutils)")
	}
	bin := buildBinary(t)
	t.Run("berth-dns", func(t *testing.T) { podmanStyleCall(t, bin, filepath.Join(filepath.Dir(bin), "aardvark-dns")) })
	t.Run("debian-aardvark", func(t *testing.T) {
		if _, err := os.Stat("/usr/lib/podman/aardvark-dns"); err != nil {
			t.Skip("Debian's aardvark-dns is not installed (apt-get install aardvark-dns)")
		}
		podmanStyleCall(t, bin, "/usr/lib/podman/aardvark-dns")
	})
}

func podmanStyleCall(t *testing.T, bin, aardvark string) {
	host := nettest.NewNS(t, "host")
	ctr := nettest.NewNS(t, "ctr")
	cfg := t.TempDir()
	in := `{"container_id":"f031bf33eecba75d0d84952337b1ceef6a239eb8e94b48aec1ed3fc4e6b3a8ac","container_name":"somename",
	 "networks":{"podman1":{"static_ips":["198.19.20.2"],"aliases":["somealias"],"interface_name":"eth0"}},
	 "network_info":{"podman1":{"dns_enabled":true,"driver":"bridge","id":"53ce4390f2adb1681eb1a90ec8b48c49c015e0a8d336c197637e7f65e365fa9e",
	   "internal":false,"ipv6_enabled":false,"name":"podman1","network_interface":"bdns0","created":"2026-11-27T13:45:53.989985833Z",
	   "subnets":[{"gateway":"198.19.20.1","subnet":"198.19.20.0/24"}],"ipam_options":{"driver":"host-local"}}}}`
	call := func(verb string) (string, error) {
		cmd := exec.Command("nsenter", "--net="+host.Path(), "--", bin, "--config", cfg, "--rootless=false", "--aardvark-binary="+aardvark, verb, ctr.Path())
		cmd.Stdin = strings.NewReader(in)
		cmd.Env = append(os.Environ(), "RUST_LOG=netavark=info")
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		if err != nil {
			return out.String(), fmt.Errorf("%s: %v: %s %s", verb, err, out.String(), errb.String())
		}
		return out.String(), nil
	}
	t.Cleanup(func() {
		call("teardown")
		if b, err := os.ReadFile(filepath.Join(cfg, "aardvark-dns", "aardvark.pid")); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	out, err := call("setup")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(out, "\n") != 1 {
		t.Errorf("setup output is not one line: %q", out)
	}
	var res map[string]network.StatusBlock
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	sb := res["podman1"]
	if len(sb.DNSServerIPs) != 1 || sb.DNSServerIPs[0] != netip.MustParseAddr("198.19.20.1") || len(sb.DNSSearchDomains) != 1 || sb.DNSSearchDomains[0] != "dns.podman" {
		t.Errorf("dns fields: %+v", sb)
	}
	if sb.Interfaces["eth0"].Subnets[0].IPNet.String() != "198.19.20.2/24" {
		t.Errorf("interfaces: %+v", sb.Interfaces)
	}
	file, err := os.ReadFile(filepath.Join(cfg, "aardvark-dns", "podman1"))
	want := "198.19.20.1\nf031bf33eecba75d0d84952337b1ceef6a239eb8e94b48aec1ed3fc4e6b3a8ac 198.19.20.2  somename,somealias\n"
	if err != nil || string(file) != want {
		t.Errorf("aardvark file:\n%q\nwant\n%q (%v)", file, want, err)
	}
	var answer string
	for i := 0; i < 20; i++ {
		answer, _ = nettest.Run(ctr, 5*time.Second, "dig", "+short", "+time=1", "+tries=1", "@198.19.20.1", "somealias")
		if strings.TrimSpace(answer) == "198.19.20.2" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if strings.TrimSpace(answer) != "198.19.20.2" {
		t.Errorf("somealias resolved to %q through aardvark-dns, want 198.19.20.2", answer)
	}
	pidb, _ := os.ReadFile(filepath.Join(cfg, "aardvark-dns", "aardvark.pid"))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(pidb)))
	if _, err := call("teardown"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(cfg, "aardvark-dns", "podman1")); !os.IsNotExist(err) {
		t.Errorf("dns entry file left after teardown: %v", err)
	}
	// aardvark-dns exits when its last network is gone.
	gone := false
	for i := 0; i < 50 && pid > 0; i++ {
		if err := syscall.Kill(pid, 0); err != nil {
			gone = true
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if pid > 0 && !gone {
		t.Errorf("aardvark-dns (pid %d) still runs after the last teardown", pid)
	}
	// Teardown retired the veth (renamed brtgone…, down, off the
	// bridge); the reaper it started deletes it within moments.
	links := nettest.Links(t, host)
	for i := 0; i < 100 && len(links) != 1; i++ {
		time.Sleep(20 * time.Millisecond)
		links = nettest.Links(t, host)
	}
	if len(links) != 1 {
		t.Errorf("host keeps links %v", links)
	}
}

func TestCreateCompletesNetwork(t *testing.T) {
	in := `{"network":{"name":"n1","id":"` + strings.Repeat("ab", 32) + `","driver":"bridge","dns_enabled":true,"ipv6_enabled":false,"internal":false},
	 "used":{"interfaces":["podman0"],"names":{"podman":"2f259bab93aaaaa2542ba43ef33eb990d0999ee1b9924b557b7be53c0b7a1bb9"},"subnets":["10.89.0.0/24"]},
	 "options":{"subnet_pools":[{"base":"10.89.0.0/16","size":24}],"default_interface_name":"podman","check_used_subnets":true}}`
	out, _, code := run(t, in, "create")
	var n network.Network
	if code != 0 || json.Unmarshal([]byte(out), &n) != nil {
		t.Fatalf("create: %d %q", code, out)
	}
	if n.NetworkInterface != "podman1" || n.Subnets[0].Subnet.String() != "10.89.1.0/24" || n.Created == "" {
		t.Errorf("create result: %+v", n)
	}
	out, _, code = run(t, strings.Replace(in, `"name":"n1"`, `"name":"podman"`, 1), "create")
	if code != 1 || errorLine(t, out) != "network already exists podman" {
		t.Errorf("duplicate name: %d %q", code, out)
	}
	for sub, want := range map[string]string{
		"127.0.0.0/8":    "127.0.0.0/8 overlaps the loopback range",
		"224.1.0.0/16":   "multicast range",
		"169.254.0.0/16": "link-local range",
		"10.90.0.1/32":   "could not create gateway for subnet 10.90.0.1/32 because it has a 31 or greater subnet prefix",
		"fe80::/64":      "link-local range",
		"fd00::/127":     "want a prefix length of /126 or shorter",
	} {
		bad := strings.Replace(in, `"internal":false`, `"internal":false,"subnets":[{"subnet":"`+sub+`"}]`, 1)
		out, _, code = run(t, bad, "create")
		if code != 1 || !strings.Contains(errorLine(t, out), want) {
			t.Errorf("create with subnet %s: %d %q, want %q", sub, code, out, want)
		}
	}
}

// TestPrivilegedDNSForwardingAndUpdate: berth's netavark and DNS server with
// dnsmasq upstreams in their own namespace. The network's DNS server answers
// forwarded names; `netavark update` switches upstreams at once; when the
// first upstream is down the second one answers; an internal network never
// forwards.
func TestPrivilegedDNSForwardingAndUpdate(t *testing.T) {
	nettest.Privileged(t)
	for _, tool := range []string{"dig", "dnsmasq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	bin := buildBinary(t)
	host := nettest.NewNS(t, "host")
	up := nettest.NewNS(t, "up")
	ctr := nettest.NewNS(t, "ctr")
	nettest.Connect(t, host, "uplink0", netip.MustParsePrefix("198.18.9.1/24"), up, "eth0", netip.MustParsePrefix("198.18.9.2/24"))
	h := nettest.Handle(t, up.NetNS)
	eth, _ := h.ByName("eth0")
	h.AddAddr(eth, netip.MustParsePrefix("198.18.9.3/24"))
	// Two upstreams: 198.18.9.2 answers a.up.test with .102, 198.18.9.3 with .103.
	var pids []int
	for _, u := range []struct{ ip, ans string }{{"198.18.9.2", "198.18.9.102"}, {"198.18.9.3", "198.18.9.103"}} {
		pidFile := filepath.Join(t.TempDir(), "pid")
		out, err := nettest.Run(up, 5*time.Second, "dnsmasq", "--no-resolv", "--no-hosts", "--bind-interfaces", "--listen-address="+u.ip,
			"--address=/up.test/"+u.ans, "--pid-file="+pidFile, "--user=root")
		if err != nil {
			t.Fatalf("dnsmasq: %v %s", err, out)
		}
		b, _ := os.ReadFile(pidFile)
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		pids = append(pids, pid)
		t.Cleanup(func() { syscall.Kill(pid, syscall.SIGTERM) })
	}
	cfg := t.TempDir()
	in := `{"container_id":"d1d1bf33eecba75d0d84952337b1ceef6a239eb8e94b48aec1ed3fc4e6b3a8ac","container_name":"fwd",
	 "networks":{"fwdnet":{"static_ips":["198.19.21.2"],"interface_name":"eth0"}},
	 "network_info":{"fwdnet":{"dns_enabled":true,"driver":"bridge","id":"6a6ce4390f2adb1681eb1a90ec8b48c49c015e0a8d336c197637e7f65e365fa9",
	   "internal":false,"ipv6_enabled":false,"name":"fwdnet","network_interface":"bfwd0","network_dns_servers":["198.18.9.2"],
	   "subnets":[{"gateway":"198.19.21.1","subnet":"198.19.21.0/24"}]}}}`
	aardvark := filepath.Join(filepath.Dir(bin), "aardvark-dns")
	call := func(stdin string, args ...string) {
		t.Helper()
		cmd := exec.Command("nsenter", append([]string{"--net=" + host.Path(), "--", bin, "--config", cfg, "--aardvark-binary=" + aardvark}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("netavark %v: %v %s", args, err, out)
		}
	}
	call(in, "setup", ctr.Path())
	t.Cleanup(func() {
		cmd := exec.Command("nsenter", "--net="+host.Path(), "--", bin, "--config", cfg, "--aardvark-binary="+aardvark, "teardown", ctr.Path())
		cmd.Stdin = strings.NewReader(in)
		cmd.Run()
		if b, err := os.ReadFile(filepath.Join(cfg, "aardvark-dns", "aardvark.pid")); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	dig := func(name string) string {
		out, _ := nettest.Run(ctr, 10*time.Second, "dig", "+short", "+time=3", "+tries=1", "@198.19.21.1", name)
		return strings.TrimSpace(out)
	}
	if got := dig("a.up.test"); got != "198.18.9.102" {
		t.Errorf("forwarded to the network's server: %q", got)
	}
	call("", "update", "fwdnet", "--network-dns-servers", "198.18.9.3")
	if got := dig("b.up.test"); got != "198.18.9.103" {
		t.Errorf("after update: %q, want the new upstream's answer", got)
	}
	// Failover: the first server is down, the second answers.
	call("", "update", "fwdnet", "--network-dns-servers", "198.18.9.2,198.18.9.3")
	syscall.Kill(pids[0], syscall.SIGTERM)
	time.Sleep(200 * time.Millisecond)
	if got := dig("c.up.test"); got != "198.18.9.103" {
		t.Errorf("with the first upstream down: %q", got)
	}
	// TCP queries work too.
	out, _ := nettest.Run(ctr, 10*time.Second, "dig", "+short", "+tcp", "+time=3", "+tries=1", "@198.19.21.1", "fwd")
	if strings.TrimSpace(out) != "198.19.21.2" {
		t.Errorf("tcp query for the container's own name: %q", out)
	}
}

// --file naming a FIFO or a device is refused at once, never read.
// --file names the input as stdin does: a regular file or a pipe (a
// shell's `--file <(...)`, netavark's test helpers use it) is read; a
// device such as /dev/zero, a directory and a socket are refused, without
// blocking.
func TestInputFileRegularOrPipe(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "in.json")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	in := `{"network":{"name":"n1","id":"` + strings.Repeat("ab", 32) + `","driver":"bridge"},"used":{"names":{}},"options":{"default_interface_name":"podman"}}`
	go func() {
		f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			return
		}
		f.WriteString(in)
		f.Close()
	}()
	done := make(chan struct{})
	go func() {
		defer close(done)
		out, _, code := run(t, "", "-f", fifo, "create")
		if code != 0 || !strings.Contains(out, `"name":"n1"`) {
			t.Errorf("-f FIFO: %d %q", code, out)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("-f FIFO blocked")
	}
	// A pipe is read up to MaxInput bytes, as standard input is.
	big := filepath.Join(dir, "big.json")
	if err := syscall.Mkfifo(big, 0o644); err != nil {
		t.Fatal(err)
	}
	go func() {
		f, err := os.OpenFile(big, os.O_WRONLY, 0)
		if err != nil {
			return
		}
		defer f.Close()
		chunk := make([]byte, 1<<20)
		for i := 0; i <= netavark.MaxInput>>20; i++ {
			if _, err := f.Write(chunk); err != nil {
				return
			}
		}
	}()
	if out, _, code := run(t, "", "-f", big, "create"); code != 1 || !strings.Contains(errorLine(t, out), "file too large") {
		t.Errorf("-f pipe past the limit: %d %q", code, out)
	}
	for _, f := range []string{"/dev/zero", dir} {
		out, _, code := run(t, "", "--config", t.TempDir(), "-f", f, "setup", "/proc/self/ns/net")
		if code != 1 || !strings.Contains(errorLine(t, out), "not a regular file") {
			t.Errorf("-f %s: %d %q", f, code, out)
		}
	}
}

// Global flags take both `--flag value` and `--flag=value`, `--rootless`
// included (netavark 2.x's test helpers and Podman use either), and
// version reports a netavark 2.1 interface.
func TestGlobalFlagForms(t *testing.T) {
	for _, args := range [][]string{
		{"--rootless", "false", "--config", "/tmp/x", "version"},
		{"--rootless=false", "--config=/tmp/x", "version"},
		{"-r", "true", "-c", "/tmp/x", "version"},
		{"--rootless", "--firewall-driver", "none", "--aardvark-binary", "/x", "--plugin-directory", "/y", "version"},
	} {
		out, errOut, code := run(t, "", args...)
		var v map[string]string
		if code != 0 || json.Unmarshal([]byte(out), &v) != nil || !strings.HasPrefix(v["version"], "2.1.") {
			t.Errorf("%v: code %d stdout %q stderr %q, want version 2.1.x", args, code, out, errOut)
		}
	}
	if _, errOut, code := run(t, "", "--rootless", "maybe", "version"); code != 2 {
		t.Errorf("--rootless maybe: code %d (%s), want a usage error", code, errOut)
	}
}

// firewalld-reload is a command of its own, as in netavark 2.1 (Podman's
// netavark-firewalld-reload.service runs it); without a system bus it
// fails with an error instead of waiting forever.
func TestFirewalldReloadCommand(t *testing.T) {
	if _, errOut, code := run(t, "", "firewalld-reload", "extra"); code != 2 || !strings.Contains(errOut, "firewalld-reload") {
		t.Errorf("firewalld-reload extra: code %d %q, want a usage error", code, errOut)
	}
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path="+filepath.Join(t.TempDir(), "nobus"))
	out, _, code := run(t, "", "--config", t.TempDir(), "firewalld-reload")
	if code != 1 || errorLine(t, out) == "" {
		t.Errorf("firewalld-reload without a bus: code %d %q, want a JSON error", code, out)
	}
}

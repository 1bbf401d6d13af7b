package cli

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/nettest"
)

// rtopo is a rootless user created for the test (with subordinate IDs), a
// "host" namespace where it runs berth, and an outside client.
type rtopo struct {
	host, outside *nettest.NS
	user          string
	uid           int
	home, xdg     string
	bin, tun      string
	rootfs        string
	resolv        string // the host's resolv.conf as berth sees it
}

// newRTopo creates the user and everything it needs; cleanup resets its
// berth, stops whatever still runs as it (by PID) and deletes the user.
func newRTopo(t *testing.T) *rtopo {
	t.Helper()
	nettest.Privileged(t)
	for _, tool := range []string{"useradd", "usermod", "userdel", "newuidmap", "newgidmap", "nsenter", "setpriv", "runc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("rootless tests need %s: %v", tool, err)
		}
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skip("rootless tests need /dev/net/tun")
	}
	suffix := make([]byte, 3)
	_, _ = rand.Read(suffix)
	r := &rtopo{user: "brl" + hex.EncodeToString(suffix)}
	base, err := os.MkdirTemp("", "brl-rootless-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	r.home, r.xdg = filepath.Join(base, "home"), filepath.Join(base, "xdg")
	if out, err := exec.Command("useradd", "-M", "-d", r.home, "-s", "/bin/sh", r.user).CombinedOutput(); err != nil {
		t.Fatalf("useradd: %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("userdel", r.user).CombinedOutput(); err != nil {
			t.Logf("userdel %s: %v %s", r.user, err, out)
		}
	})
	if out, err := exec.Command("usermod", "--add-subuids", "3500000-3565535", "--add-subgids", "3500000-3565535", r.user).CombinedOutput(); err != nil {
		t.Fatalf("usermod: %v %s", err, out)
	}
	out, err := exec.Command("id", "-u", r.user).Output()
	if err != nil {
		t.Fatal(err)
	}
	r.uid, _ = strconv.Atoi(strings.TrimSpace(string(out)))
	for _, d := range []string{r.home, r.xdg} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, r.uid, r.uid); err != nil {
			t.Fatal(err)
		}
	}
	// berth, with its slirp4netns and aardvark-dns, where the user may
	// run them.
	bindir := filepath.Join(base, "bin")
	if err := os.MkdirAll(bindir, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(berthBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	r.bin = filepath.Join(bindir, "berth")
	if err := os.WriteFile(r.bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"slirp4netns", "aardvark-dns"} {
		if err := os.Symlink("berth", filepath.Join(bindir, n)); err != nil {
			t.Fatal(err)
		}
	}
	if data, err = os.ReadFile(filepath.Join(filepath.Dir(berthBinary(t)), "pasta")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bindir, "pasta"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	// The host's /dev/net/tun is 0600 here: the user gets a 0666 node
	// bind-mounted in a mount namespace of berth's own.
	r.tun = filepath.Join(base, "tun")
	if err := unix.Mknod(r.tun, unix.S_IFCHR|0o666, int(unix.Mkdev(10, 200))); err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(r.tun, 0o666)
	// The root filesystem belongs to the user: root in its namespace.
	r.rootfs = busyboxRootfs(t)
	if err := os.Chmod(filepath.Dir(r.rootfs), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("chown", "-R", strconv.Itoa(r.uid)+":"+strconv.Itoa(r.uid), r.rootfs).CombinedOutput(); err != nil {
		t.Fatalf("chown rootfs: %v %s", err, out)
	}
	r.host = nettest.NewNS(t, nettest.RandName("brlh"))
	r.outside = nettest.NewNS(t, nettest.RandName("brlo"))
	nettest.Connect(t, r.host, "eth0", netip.MustParsePrefix("198.18.0.1/24"), r.outside, "eth0", netip.MustParsePrefix("198.18.0.2/24"))
	// pasta copies the host's interface and default route: the host's
	// gateway is the outside namespace, which also answers DNS for the
	// host's resolv.conf (bind-mounted where berth runs).
	if out, err := nettest.Run(r.host, 5*time.Second, "ip", "route", "add", "default", "via", "198.18.0.2"); err != nil {
		t.Fatalf("default route: %v %s", err, out)
	}
	r.resolv = filepath.Join(base, "resolv.conf")
	if err := os.WriteFile(r.resolv, []byte("nameserver 198.18.0.2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	serveDNS(t, r.outside, "198.18.0.2:53", outsideName, "198.18.0.2")
	t.Cleanup(func() {
		if out, err := r.berth("system", "reset", "--force"); err != nil {
			t.Logf("rootless system reset: %v %s", err, out)
		}
		r.killAll(t)
	})
	return r
}

// berth runs berth as the user in the host namespace.
func (r *rtopo) berth(args ...string) (string, error) {
	full := append([]string{"--mount", "--propagation", "private", "--",
		"sh", "-c", `mount --bind "$0" /dev/net/tun && mount --bind "$1" /etc/resolv.conf && shift && exec "$@"`, r.tun, r.resolv,
		"nsenter", "--net=" + r.host.Path(), "--",
		"setpriv", "--reuid=" + strconv.Itoa(r.uid), "--regid=" + strconv.Itoa(r.uid), "--clear-groups", "--",
		"env", "-i", "HOME=" + r.home, "XDG_RUNTIME_DIR=" + r.xdg, "PATH=/usr/bin:/bin:/usr/sbin:/sbin",
		r.bin}, args...)
	cmd := exec.Command("unshare", full...)
	cmd.Dir = "/"
	var buf strings.Builder
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		return "", err
	}
	timer := time.AfterFunc(90*time.Second, func() { _ = cmd.Process.Kill() })
	defer timer.Stop()
	err := cmd.Wait()
	out := buf.String()
	return out, err
}

func (r *rtopo) must(t *testing.T, args ...string) string {
	t.Helper()
	out, err := r.berth(args...)
	if err != nil {
		t.Fatalf("rootless berth %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// pids lists the processes running as the user.
func (r *rtopo) pids() []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat("/proc/"+e.Name(), &st) != nil || int(st.Uid) != r.uid {
			continue
		}
		if b, _ := os.ReadFile("/proc/" + e.Name() + "/stat"); strings.Contains(string(b), ") Z ") {
			continue
		}
		out = append(out, pid)
	}
	return out
}

// processes describes the user's processes (for failure messages).
func (r *rtopo) processes() string {
	var out []string
	for _, pid := range r.pids() {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		out = append(out, fmt.Sprintf("%d %s", pid, strings.ReplaceAll(string(b), "\x00", " ")))
	}
	return strings.Join(out, "; ")
}

// killAll stops every process of the test's user (ours: the user exists
// only for this test).
func (r *rtopo) killAll(t *testing.T) {
	for i := 0; i < 2; i++ {
		for _, pid := range r.pids() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if left := r.processes(); left != "" {
		t.Logf("processes of %s left: %s", r.user, left)
	}
}

// outsideName is the name the outside namespace's DNS server answers.
const outsideName = "svc.berth.test."

// serveDNS answers name A addr on listen (UDP and TCP) in ns.
func serveDNS(t *testing.T, ns *nettest.NS, listen, name, addr string) {
	t.Helper()
	h := mdns.HandlerFunc(func(w mdns.ResponseWriter, q *mdns.Msg) {
		r := new(mdns.Msg)
		r.SetReply(q)
		if len(q.Question) == 1 && q.Question[0].Name == name && q.Question[0].Qtype == mdns.TypeA {
			rr, _ := mdns.NewRR(name + " 60 IN A " + addr)
			r.Answer = append(r.Answer, rr)
		} else {
			r.Rcode = mdns.RcodeNameError
		}
		_ = w.WriteMsg(r)
	})
	pc := nettest.ListenPacket(t, ns, "udp", listen)
	ln := nettest.Listen(t, ns, "tcp", listen)
	for _, srv := range []*mdns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		go func() { _ = srv.ActivateAndServe() }()
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
}

// serveHTTP answers every request on addr in ns with body and the
// client's address.
func serveHTTP(t *testing.T, ns *nettest.NS, addr, body string) {
	t.Helper()
	ln := nettest.Listen(t, ns, "tcp4", addr)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		fmt.Fprintf(w, "%s from %s\n", body, req.RemoteAddr)
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
}

// sections splits the output of commands separated by "echo @@".
func sections(out string) []string {
	parts := strings.Split(out, "@@\n")
	for len(parts) < 8 {
		parts = append(parts, "")
	}
	return parts
}

// TestPrivilegedRootlessRun is the guide's rootless scenario with berth
// alone, as an unprivileged user, on the default rootless network (pasta,
// as Podman 5): a web server published on 8080 and fetched from outside
// through the host's address, with the client's own address seen by the
// server; a second container reaching an outside server, a name through
// the DNS forwarder 169.254.1.1, and the host (a service of its own and
// the published port) through host.containers.internal; a rootless bridge
// network in the rootless netns (pasta as its uplink) with name
// resolution and a port published through the uplink (client address
// kept again); berth unshare --rootless-netns; and system reset leaving no
// process behind.
func TestPrivilegedRootlessRun(t *testing.T) {
	r := newRTopo(t)
	serveHTTP(t, r.outside, "198.18.0.2:9098", "outside server")
	serveHTTP(t, r.host, "198.18.0.1:9097", "host service")
	r.must(t, "run", "-d", "--name", "web", "-p", "8080:80", "--rootfs", r.rootfs, "httpd", "-f", "-v", "-p", "80", "-h", "/www")
	if mode := strings.TrimSpace(r.must(t, "inspect", "-f", "{{.HostConfig.NetworkMode}}", "web")); mode != "pasta" {
		t.Errorf("rootless network mode %q, want pasta", mode)
	}
	got, err := httpGet(r.outside, "198.18.0.1:8080")
	if err != nil || !strings.Contains(got, "hello from berth") {
		t.Fatalf("outside -> 198.18.0.1:8080: %q %v\nuser's processes: %s", got, err, r.processes())
	}
	waitLog(t, r, "web", "198.18.0.2]:")
	out := r.must(t, "run", "--rm", "--rootfs", r.rootfs, "sh", "-c",
		"ip -o -4 addr show scope global; echo @@; cat /etc/hosts /etc/resolv.conf; echo @@; wget -qO- http://198.18.0.2:9098/; echo @@; "+
			"nslookup "+strings.TrimSuffix(outsideName, ".")+" 169.254.1.1; echo @@; wget -qO- http://host.containers.internal:9097/; echo @@; wget -qO- http://host.containers.internal:8080/")
	sec := sections(out)
	if !strings.Contains(sec[0], "198.18.0.1/24") {
		t.Errorf("the pasta container's address is not the host's (198.18.0.1/24):\n%s", sec[0])
	}
	if !strings.Contains(sec[1], "169.254.1.2\thost.containers.internal") || !strings.Contains(sec[1], "nameserver 169.254.1.1\nnameserver 198.18.0.2") {
		t.Errorf("pasta container's /etc/hosts and resolv.conf:\n%s", sec[1])
	}
	if !strings.Contains(sec[2], "outside server from 198.18.0.1:") {
		t.Errorf("pasta container -> outside server: %q", sec[2])
	}
	if !strings.Contains(sec[3], "Address: 198.18.0.2") {
		t.Errorf("pasta container: %s through 169.254.1.1: %q", outsideName, sec[3])
	}
	if !strings.Contains(sec[4], "host service from ") {
		t.Errorf("pasta container -> host.containers.internal:9097 (host service): %q", sec[4])
	}
	if !strings.Contains(sec[5], "hello from berth") {
		t.Errorf("pasta container -> host.containers.internal:8080 (published port): %q\n%s", sec[5], out)
	}
	if t.Failed() {
		t.FailNow()
	}

	// A rootless bridge network, in the rootless netns whose uplink is
	// pasta.
	r.must(t, "network", "create", "--subnet", "198.19.200.0/24", "rnet")
	if _, err := os.Stat(filepath.Join(r.home, ".local/share/containers/storage/networks/rnet.json")); err != nil {
		t.Errorf("rootless network file: %v", err)
	}
	r.must(t, "run", "-d", "--name", "rweb", "--network", "rnet", "-p", "8083:80", "-p", "8086:8086/udp", "--rootfs", r.rootfs, "httpd", "-f", "-v", "-p", "80", "-h", "/www")
	ip := strings.TrimSpace(r.must(t, "inspect", "-f", `{{(index .NetworkSettings.Networks "rnet").IPAddress}}`, "rweb"))
	if !strings.HasPrefix(ip, "198.19.200.") {
		t.Fatalf("rweb's address %q", ip)
	}
	out = r.must(t, "run", "--rm", "--network", "rnet", "--rootfs", r.rootfs, "sh", "-c", "nslookup rweb; echo @@; wget -qO- http://rweb/; echo @@; wget -qO- http://198.18.0.2:9098/")
	if sec := sections(out); !strings.Contains(sec[0], "Address: "+ip) || !strings.Contains(sec[1], "hello from berth") || !strings.Contains(sec[2], "outside server from 198.18.0.1:") {
		t.Errorf("rootless network DNS, fetch by name, outside server:\n%s", out)
	}
	got, err = httpGet(r.outside, "198.18.0.1:8083")
	if err != nil || !strings.Contains(got, "hello from berth") {
		t.Fatalf("outside -> 198.18.0.1:8083 (rootless netns): %q %v", got, err)
	}
	// A host whose resolver is on its own loopback (systemd-resolved's
	// 127.0.0.53): the rootless netns cannot reach that address, so its
	// DNS server forwards to pasta's DNS address, which asks the host's.
	serveDNS(t, r.host, "127.0.0.53:53", "loopback.test.", "198.18.0.77")
	if err := os.WriteFile(r.resolv, []byte("nameserver 127.0.0.53\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // resolv.conf is re-read when its mtime moves
	// (busybox nslookup exits 1 for the AAAA half the server does not know)
	if out, _ := r.berth("run", "--rm", "--network", "rnet", "--rootfs", r.rootfs, "nslookup", "loopback.test"); !strings.Contains(out, "198.18.0.77") {
		t.Errorf("rootless network: a name the host's loopback resolver knows:\n%s", out)
	}
	if err := os.WriteFile(r.resolv, []byte("nameserver 198.18.0.2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitLog(t, r, "rweb", "198.18.0.2]:")
	links := r.must(t, "unshare", "--rootless-netns", "sh", "-c", "ip -o link; ip -o -4 addr show scope global; ip route")
	if !strings.Contains(links, "eth0") || !strings.Contains(links, "veth") || !strings.Contains(links, "198.18.0.1/24") || !strings.Contains(links, "default via 198.18.0.2") {
		t.Errorf("berth unshare --rootless-netns (pasta's copy of the host's eth0, address and route):\n%s", links)
	}
	uplink := rootlessUplinkPID(t, r)
	if cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", uplink)); !strings.Contains(string(cmd), "--berth-api-socket") {
		t.Errorf("the rootless netns's uplink is not pasta: %q", cmd)
	}
	// An uplink that died is restarted by the next command, and the
	// journaled forwards are published again.
	if err := syscall.Kill(uplink, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50 && processAlive(uplink); i++ {
		time.Sleep(100 * time.Millisecond)
	}
	r.must(t, "run", "--rm", "--network", "rnet", "--rootfs", r.rootfs, "true")
	if again := rootlessUplinkPID(t, r); again == uplink {
		t.Errorf("the uplink was not restarted (PID %d)", again)
	}
	got, err = httpGet(r.outside, "198.18.0.1:8083")
	if err != nil || !strings.Contains(got, "hello from berth") {
		t.Fatalf("outside -> 198.18.0.1:8083 after the uplink restarted: %q %v", got, err)
	}
	if m := strings.TrimSpace(r.must(t, "info", "--format", "{{.Host.Security.Rootless}} {{range .Host.IDMappings.UIDMap}}{{.ContainerID}}:{{.HostID}}:{{.Size}} {{end}}")); !strings.HasPrefix(m, fmt.Sprintf("true 0:%d:1 1:", r.uid)) || !strings.Contains(m, ":3500000:65536") {
		// (useradd may give the user a range of its own before ours)
		t.Errorf("rootless info: %q", m)
	}
	if id := strings.TrimSpace(r.must(t, "unshare", "id", "-u")); id != "0" {
		t.Errorf("berth unshare id -u = %q, want 0", id)
	}

	// Hostile files and ownership, rootless too: a FIFO among the user's
	// network files is skipped with a warning (it used to hang every
	// command), and a network naming a link the user made in the rootless
	// netns as its bridge is refused without that link being deleted.
	fifo := filepath.Join(r.home, ".local/share/containers/storage/networks/fifo.json")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	_ = os.Chown(fifo, r.uid, r.uid)
	if ls, err := r.berth("network", "ls"); err != nil || !strings.Contains(ls, "rnet") || !strings.Contains(ls, "fifo.json") {
		t.Errorf("network ls with a FIFO among the network files: %v\n%s", err, ls)
	}
	_ = os.Remove(fifo)
	r.must(t, "unshare", "--rootless-netns", "ip", "link", "add", "rfor0", "type", "veth", "peer", "name", "rfor1")
	r.must(t, "network", "create", "--interface-name", "rfor0", "--subnet", "198.19.201.0/24", "rown")
	if out, err := r.berth("run", "--rm", "--network", "rown", "--rootfs", r.rootfs, "true"); err == nil {
		t.Errorf("run on a network whose bridge is the user's veth succeeded:\n%s", out)
	}
	if links := r.must(t, "unshare", "--rootless-netns", "ip", "-o", "link"); !strings.Contains(links, "rfor0") {
		t.Errorf("the failed run deleted the user's link rfor0:\n%s", links)
	}
	r.must(t, "network", "rm", "rown")

	// Images: imported into the user's store and run (files keep their
	// owners through the subordinate IDs).
	tarball := filepath.Join(r.home, "bb.tar")
	if out, err := exec.Command("tar", "--numeric-owner", "-C", r.rootfs, "-cf", tarball, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	_ = os.Chown(tarball, r.uid, r.uid)
	r.must(t, "import", tarball, "bbimg")
	if out := r.must(t, "run", "--rm", "bbimg", "sh", "-c", "id -u; cat /www/index.html"); !strings.Contains(out, "0\nhello from berth") {
		t.Errorf("rootless run of an imported image:\n%s", out)
	}

	// Stopping the container removes its forward: the port is free.
	r.must(t, "rm", "-f", "rweb")
	if got, err := httpGet(r.outside, "198.18.0.1:8083"); err == nil {
		t.Errorf("8083 still answers after rm: %q", got)
	}
	r.must(t, "rm", "-f", "web")
	if got, err := httpGet(r.outside, "198.18.0.1:8080"); err == nil {
		t.Errorf("8080 still answers after rm: %q", got)
	}
	r.must(t, "system", "reset", "--force")
	var left string
	for i := 0; i < 50; i++ {
		if left = r.processes(); left == "" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if left != "" {
		t.Errorf("processes left after system reset: %s", left)
	}
}

// waitLog waits until the container's log contains s (the server logged
// the client's address).
func waitLog(t *testing.T, r *rtopo, ctr, s string) {
	t.Helper()
	var out string
	for i := 0; i < 30; i++ {
		out, _ = r.berth("logs", ctr)
		if strings.Contains(out, s) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("%s's log does not show the client address %q (source address lost?):\n%s", ctr, s, out)
}

// rootlessUplinkPID is the PID of the rootless netns's uplink.
func rootlessUplinkPID(t *testing.T, r *rtopo) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(r.xdg, "berth", "rootless-netns", "uplink.pid"))
	if err != nil {
		t.Fatalf("rootless netns uplink PID: %v", err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// TestPrivilegedRootlessSlirp: with containers.conf's
// default_rootless_network_cmd = "slirp4netns", rootless containers get
// slirp4netns (10.0.2.100, nameserver 10.0.2.3) and the rootless netns's
// uplink is slirp4netns; published ports keep the client's address on
// both.
func TestPrivilegedRootlessSlirp(t *testing.T) {
	r := newRTopo(t)
	conf := filepath.Join(r.home, ".config", "containers", "containers.conf")
	if err := os.MkdirAll(filepath.Dir(conf), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte("[network]\ndefault_rootless_network_cmd = \"slirp4netns\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Join(r.home, ".config"), filepath.Dir(conf), conf} {
		_ = os.Chown(d, r.uid, r.uid)
	}
	r.must(t, "run", "-d", "--name", "web", "-p", "8080:80", "--rootfs", r.rootfs, "httpd", "-f", "-v", "-p", "80", "-h", "/www")
	if mode := strings.TrimSpace(r.must(t, "inspect", "-f", "{{.HostConfig.NetworkMode}}", "web")); mode != "slirp4netns" {
		t.Errorf("rootless network mode %q, want slirp4netns", mode)
	}
	got, err := httpGet(r.outside, "198.18.0.1:8080")
	if err != nil || !strings.Contains(got, "hello from berth") {
		t.Fatalf("outside -> 198.18.0.1:8080: %q %v\nuser's processes: %s", got, err, r.processes())
	}
	waitLog(t, r, "web", "198.18.0.2]:")
	out := r.must(t, "run", "--rm", "--rootfs", r.rootfs, "sh", "-c", "wget -qO- http://198.18.0.1:8080/; echo @@; cat /etc/hosts /etc/resolv.conf")
	sec := sections(out)
	if !strings.Contains(sec[0], "hello from berth") {
		t.Errorf("second slirp4netns container -> 198.18.0.1:8080: %q", sec[0])
	}
	if !strings.Contains(sec[1], "10.0.2.100") || !strings.Contains(sec[1], "nameserver 10.0.2.3") {
		t.Errorf("slirp4netns container's /etc/hosts and resolv.conf:\n%s", sec[1])
	}
	// --network pasta still works per container.
	if out := r.must(t, "run", "--rm", "--network", "pasta", "--rootfs", r.rootfs, "cat", "/etc/resolv.conf"); !strings.Contains(out, "nameserver 169.254.1.1") {
		t.Errorf("--network pasta's resolv.conf:\n%s", out)
	}
	r.must(t, "network", "create", "--subnet", "198.19.202.0/24", "snet")
	r.must(t, "run", "-d", "--name", "sweb", "--network", "snet", "-p", "8084:80", "-p", "8085:80/udp", "--rootfs", r.rootfs, "httpd", "-f", "-v", "-p", "80", "-h", "/www")
	got, err = httpGet(r.outside, "198.18.0.1:8084")
	if err != nil || !strings.Contains(got, "hello from berth") {
		t.Fatalf("outside -> 198.18.0.1:8084 (rootless netns on slirp4netns): %q %v", got, err)
	}
	waitLog(t, r, "sweb", "198.18.0.2]:")
	if links := r.must(t, "unshare", "--rootless-netns", "ip", "-o", "link"); !strings.Contains(links, "tap0") {
		t.Errorf("the rootless netns's uplink is not slirp4netns (no tap0):\n%s", links)
	}
	r.must(t, "system", "reset", "--force")
}

// processAlive reports whether pid runs (not a zombie).
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err == nil && !strings.Contains(string(b), ") Z ")
}

package cli

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berthnet/berth/internal/image"
	"github.com/berthnet/berth/internal/image/imagetest"
	"github.com/berthnet/berth/internal/ipam"
	"github.com/berthnet/berth/internal/nettest"
)

// etopo is a ptopo with the engine's directories and a busybox rootfs.
type etopo struct {
	*ptopo
	rootfs string
}

// busyboxRootfs builds a root filesystem from Debian's busybox-static:
// /bin/busybox, its applets as symlinks, a page in /www.
func busyboxRootfs(t *testing.T) string {
	t.Helper()
	bb := "/bin/busybox"
	if _, err := os.Stat(bb); err != nil {
		t.Skip("needs busybox-static (/bin/busybox)")
	}
	dir := t.TempDir()
	for _, d := range []string{"bin", "etc", "www", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bb, "--list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range strings.Fields(string(out)) {
		if a != "busybox" {
			_ = os.Symlink("busybox", filepath.Join(dir, "bin", a))
		}
	}
	files := map[string]string{
		"etc/passwd":     "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33::/www:/bin/sh\n",
		"etc/group":      "root:x:0:\nwww:x:33:\n",
		"www/index.html": "hello from berth\n",
	}
	for p, c := range files {
		if err := os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func newETopo(t *testing.T) *etopo {
	t.Helper()
	if _, err := os.Stat("/usr/sbin/runc"); err != nil {
		t.Skip("needs runc")
	}
	p := &etopo{ptopo: newPTopo(t), rootfs: busyboxRootfs(t)}
	t.Cleanup(func() {
		// Runs before the ptopo's system reset: every container goes.
		if out, err := p.b("rm", "-a", "-f"); err != nil && !strings.Contains(out, "at least one") {
			t.Logf("rm -a -f: %v %s", err, out)
		}
	})
	return p
}

// b runs berth with the engine's directories inside the host namespace.
func (p *etopo) b(args ...string) (string, error) {
	return p.berth(args...)
}

// b3 is b with stdout and stderr apart.
func (p *etopo) b3(args ...string) (string, string, error) {
	full := append([]string{"--net=" + p.host.Path(), "--", p.bin, "--network-config-dir", p.cfg, "--network-run-dir", p.run, "--root", p.root, "--runroot", p.runRoot}, args...)
	cmd := exec.Command("nsenter", full...)
	cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+p.conf)
	var so, se strings.Builder
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	return so.String(), se.String(), err
}

func (p *etopo) mustB(t *testing.T, args ...string) string {
	t.Helper()
	out, err := p.b(args...)
	if err != nil {
		t.Fatalf("berth %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// httpGet fetches / from addr inside ns over HTTP/1.0.
// httpGetOnce is one attempt of httpGet within timeout.
func httpGetOnce(ns *nettest.NS, addr string, timeout time.Duration) (string, error) {
	c, err := nettest.Dial(ns, "tcp4", addr, timeout)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	_, _ = io.WriteString(c, "GET / HTTP/1.0\r\nHost: x\r\n\r\n")
	b, err := io.ReadAll(c)
	return string(b), err
}

func httpGet(ns *nettest.NS, addr string) (string, error) {
	var lastErr error
	for i := 0; i < 20; i++ {
		c, err := nettest.Dial(ns, "tcp4", addr, 2*time.Second)
		if err != nil {
			lastErr = err
			time.Sleep(100 * time.Millisecond)
			continue
		}
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		_, _ = io.WriteString(c, "GET / HTTP/1.0\r\nHost: x\r\n\r\n")
		b, err := io.ReadAll(c)
		c.Close()
		if len(b) > 0 {
			s := string(b)
			if i := strings.Index(s, "\r\n\r\n"); i >= 0 {
				s = s[i+4:]
			}
			return s, nil
		}
		lastErr = err
		time.Sleep(100 * time.Millisecond)
	}
	return "", lastErr
}

// assertClean checks that nothing of any container is left: processes,
// namespace pins, veths/bridges, addresses and port rules.
func (p *etopo) assertClean(t *testing.T, pids ...int) {
	t.Helper()
	for _, pid := range pids {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			if !strings.Contains(string(st), ") Z ") {
				t.Errorf("process %d still runs", pid)
			}
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(p.runRoot, "netns")); len(ents) != 0 {
		t.Errorf("namespace pins left: %v", ents)
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), p.runRoot) {
		t.Errorf("mounts left under %s", p.runRoot)
	}
	for _, l := range nettest.Links(t, p.host) {
		if strings.HasPrefix(l, "veth") || strings.HasPrefix(l, "podman") {
			t.Errorf("host link left: %s", l)
		}
	}
	a, _ := ipam.New(filepath.Join(p.run, "ipam.db"))
	if leases, _ := a.Dump(); len(leases) != 0 {
		t.Errorf("leases left: %v", leases)
	}
	if out, _ := nettest.Run(p.host, 5*time.Second, "nft", "list", "ruleset"); strings.Contains(out, "8080") {
		t.Errorf("port rules left:\n%s", out)
	}
	if out := p.mustB(t, "ps", "-aq"); out != "" {
		t.Errorf("containers left: %q", out)
	}
}

func (p *etopo) inspect(t *testing.T, ctr, format string) string {
	t.Helper()
	return strings.TrimSpace(p.mustB(t, "inspect", "--format", format, ctr))
}

// TestPrivilegedRunPublish is the guide's first scenario: a web server with
// -p 8080:80 on the default network, fetched from an outside namespace;
// the port is held, stop and rm leave nothing behind.
func TestPrivilegedRunPublish(t *testing.T) {
	p := newETopo(t)
	id := strings.TrimSpace(p.mustB(t, "run", "-d", "--name", "web", "-p", "8080:80", "--rootfs", p.rootfs, "httpd", "-f", "-p", "80", "-h", "/www"))
	if len(id) != 64 {
		t.Fatalf("run -d printed %q", id)
	}
	if got, err := httpGet(p.outside, "198.18.0.1:8080"); err != nil || got != "hello from berth\n" {
		t.Fatalf("page from outside: %q %v", got, err)
	}
	if st := p.inspect(t, "web", "{{.State.Status}} {{.NetworkSettings.Networks.podman.IPAddress}}"); !strings.HasPrefix(st, "running 10.88.0.") {
		t.Errorf("inspect: %q", st)
	}
	if out := p.mustB(t, "port", "web"); out != "80/tcp -> 0.0.0.0:8080\n" {
		t.Errorf("port: %q", out)
	}
	if out := p.mustB(t, "ps"); !strings.Contains(out, "0.0.0.0:8080->80/tcp  web") || !strings.Contains(out, "Up ") {
		t.Errorf("ps:\n%s", out)
	}
	// The monitor holds the host port: a second -p 8080 fails cleanly and
	// leaves nothing.
	out, err := p.b("run", "-d", "--name", "web2", "-p", "8080:80", "--rootfs", p.rootfs, "httpd", "-f", "-p", "80")
	if exitCode(err) != 126 || !strings.Contains(out, "address already in use") {
		t.Errorf("second -p 8080: %v %s", err, out)
	}
	p.mustB(t, "rm", "web2")
	pid, _ := strconv.Atoi(p.inspect(t, "web", "{{.State.Pid}}"))
	mon, _ := strconv.Atoi(p.inspect(t, "web", "{{.State.ConmonPid}}"))
	if pid == 0 || mon == 0 {
		t.Fatalf("pid %d monitor %d", pid, mon)
	}
	// httpd as PID 1 ignores SIGTERM: SIGKILL after 1 s, with Podman's
	// warning on stderr.
	if out, errOut, err := p.b3("stop", "-t", "1", "web"); err != nil || out != "web\n" || !strings.Contains(errOut, "StopSignal SIGTERM failed to stop container web in 1 seconds, resorting to SIGKILL") {
		t.Errorf("stop: %v %q %q", err, out, errOut)
	}
	if st := p.inspect(t, "web", "{{.State.Status}} {{.State.ExitCode}}"); st != "exited 137" {
		t.Errorf("after stop: %q", st)
	}
	if _, err := httpGet(p.outside, "198.18.0.1:8080"); err == nil {
		t.Error("page still served after stop")
	}
	// Start again: same port, new network setup.
	p.mustB(t, "start", "web")
	if got, err := httpGet(p.outside, "198.18.0.1:8080"); err != nil || got != "hello from berth\n" {
		t.Fatalf("page after restart: %q %v", got, err)
	}
	pid2, _ := strconv.Atoi(p.inspect(t, "web", "{{.State.Pid}}"))
	mon2, _ := strconv.Atoi(p.inspect(t, "web", "{{.State.ConmonPid}}"))
	if out, err := p.b("rm", "web"); exitCode(err) != 2 || !strings.Contains(out, "cannot remove container") {
		t.Errorf("rm running: %v %s", err, out)
	}
	p.mustB(t, "rm", "-f", "web")
	p.assertClean(t, pid, mon, pid2, mon2)
	if out, err := p.b("rm", "web"); exitCode(err) != 1 || !strings.Contains(out, "no container with name or ID \"web\" found") {
		t.Errorf("rm missing: %v %s", err, out)
	}
}

// TestPrivilegedRunExitCodesLogsExec: foreground runs pass stdout, stderr
// and the exit code through; --rm removes; logs and exec work.
func TestPrivilegedRunExitCodesLogsExec(t *testing.T) {
	p := newETopo(t)
	stdout, stderr, err := p.b3("run", "--rm", "--rootfs", p.rootfs, "sh", "-c", "echo out; echo err >&2; exit 3")
	if exitCode(err) != 3 || stdout != "out\n" || stderr != "err\n" {
		t.Errorf("foreground run: %v %q %q", err, stdout, stderr)
	}
	if out, err := p.b("run", "--rm", "--rootfs", p.rootfs, "nosuchcmd"); exitCode(err) != 127 || !strings.Contains(out, "executable file not found") {
		t.Errorf("missing command: %v %s", err, out)
	}
	// --network none: lo only, no resolv.conf (the empty file is the mount
	// point an earlier run left in the shared rootfs), hosts names the
	// container on 127.0.0.1.
	if out, err := p.b("run", "--rm", "--network", "none", "--hostname", "box", "--rootfs", p.rootfs, "sh", "-c", "hostname; cat /etc/hosts; wc -c < /etc/resolv.conf; ip -o link | wc -l"); err != nil || !strings.HasPrefix(out, "box\n") || !strings.Contains(out, "127.0.0.1\tbox ") || !strings.HasSuffix(out, "\n0\n1\n") {
		t.Errorf("--network none: %v\n%s", err, out)
	}
	// -t: runc's console socket, output through the terminal (CRLF);
	// -i: stdin reaches the container.
	if out, err := p.b("run", "--rm", "-t", "--rootfs", p.rootfs, "sh", "-c", "tty; echo x"); err != nil || out != "/dev/pts/0\r\nx\r\n" {
		t.Errorf("run -t: %v %q", err, out)
	}
	cmd := exec.Command("nsenter", "--net="+p.host.Path(), "--", p.bin, "--network-config-dir", p.cfg, "--network-run-dir", p.run, "--root", p.root, "--runroot", p.runRoot,
		"run", "--rm", "-i", "--rootfs", p.rootfs, "sh", "-c", "cat; echo done")
	cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+p.conf)
	cmd.Stdin = strings.NewReader("from stdin\n")
	if out, err := cmd.CombinedOutput(); err != nil || string(out) != "from stdin\ndone\n" {
		t.Errorf("run -i: %v %q", err, out)
	}
	p.mustB(t, "run", "-d", "--name", "sleeper", "-e", "GREETING=hi", "--rootfs", p.rootfs, "sh", "-c", "echo started; echo problem >&2; exec sleep 1000")
	time.Sleep(300 * time.Millisecond)
	// stdout and stderr reach the log through two pipes, so their relative
	// order is not fixed (as with conmon): both lines, nothing else.
	if out := p.mustB(t, "logs", "sleeper"); out != "started\nproblem\n" && out != "problem\nstarted\n" {
		t.Errorf("logs: %q", out)
	}
	if out, err := p.b("exec", "-e", "X=1", "-w", "/www", "sleeper", "sh", "-c", "echo $GREETING$X; pwd; exit 5"); exitCode(err) != 5 || out != "hi1\n/www\n" {
		t.Errorf("exec: %v %q", err, out)
	}
	if out, err := p.b("exec", "sleeper", "nosuch"); exitCode(err) != 127 {
		t.Errorf("exec missing: %v %s", err, out)
	}
	if out, err := p.b("exec", "sleeper", "/www/index.html"); exitCode(err) != 126 {
		t.Errorf("exec not executable: %v %s", err, out)
	}
	if out, err := p.b("exec", "nosuch", "true"); exitCode(err) != 125 || !strings.Contains(out, "no such container") {
		t.Errorf("exec in missing container: %v %s", err, out)
	}
	pid, _ := strconv.Atoi(p.inspect(t, "sleeper", "{{.State.Pid}}"))
	if out, err := p.b("kill", "-s", "BOGUS", "sleeper"); err == nil || !strings.Contains(out, "invalid signal") {
		t.Errorf("kill -s BOGUS: %v %s", err, out)
	}
	p.mustB(t, "kill", "sleeper")
	deadline := time.Now().Add(5 * time.Second)
	for p.inspect(t, "sleeper", "{{.State.Status}}") == "running" && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if st := p.inspect(t, "sleeper", "{{.State.Status}} {{.State.ExitCode}}"); st != "exited 137" {
		t.Errorf("after kill: %q", st)
	}
	if out := p.mustB(t, "ps", "-a", "--format", "{{.Names}} {{.Status}}"); !strings.HasPrefix(out, "sleeper Exited (137)") {
		t.Errorf("ps -a: %q", out)
	}
	p.mustB(t, "rm", "sleeper")
	p.assertClean(t, pid)
}

// TestPrivilegedRunDNS: two containers on a network with DNS find each
// other by name; resolv.conf and hosts are Podman's.
func TestPrivilegedRunDNS(t *testing.T) {
	p := newETopo(t)
	p.mustB(t, "network", "create", "--subnet", "198.19.40.0/24", "dnsnet")
	p.mustB(t, "run", "-d", "--name", "srv", "--network", "dnsnet", "--network-alias", "www", "--rootfs", p.rootfs, "httpd", "-f", "-p", "80", "-h", "/www")
	out, err := p.b("run", "--rm", "--network", "dnsnet", "--add-host", "gw:host-gateway", "--rootfs", p.rootfs, "sh", "-c",
		"cat /etc/resolv.conf; cat /etc/hosts; wget -qO- http://srv/; wget -qO- http://www.dns.podman/")
	if err != nil {
		t.Fatalf("client: %v\n%s", err, out)
	}
	for _, want := range []string{"search dns.podman\nnameserver 198.19.40.1\n", "198.19.40.1\tgw\n", "198.19.40.1\thost.containers.internal\n", "hello from berth\nhello from berth\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("client output lacks %q:\n%s", want, out)
		}
	}
}

// TestPrivilegedMonitorKilled: with its monitor killed by SIGKILL, the
// container still runs and ps/inspect say so; when it dies, they say that;
// rm cleans everything up.
func TestPrivilegedMonitorKilled(t *testing.T) {
	p := newETopo(t)
	p.mustB(t, "run", "-d", "--name", "web", "-p", "8080:80", "--rootfs", p.rootfs, "httpd", "-f", "-p", "80", "-h", "/www")
	pid, _ := strconv.Atoi(p.inspect(t, "web", "{{.State.Pid}}"))
	mon, _ := strconv.Atoi(p.inspect(t, "web", "{{.State.ConmonPid}}"))
	proc, err := os.FindProcess(mon)
	if err != nil {
		t.Fatal(err)
	}
	if err := proc.Kill(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if st := p.inspect(t, "web", "{{.State.Status}}"); st != "running" {
		t.Errorf("after the monitor died: %q", st)
	}
	if got, err := httpGet(p.outside, "198.18.0.1:8080"); err != nil || got != "hello from berth\n" {
		t.Errorf("page with the monitor gone: %q %v", got, err)
	}
	// The container dies too: the state says exited.
	if err := exec.Command("kill", "-9", strconv.Itoa(pid)).Run(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.inspect(t, "web", "{{.State.Status}}") == "running" && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	// {{.State}} is the human status, as in Podman's templates.
	if out := p.mustB(t, "ps", "-a", "--format", "{{.Names}} {{.State}}"); !strings.HasPrefix(out, "web Exited (") {
		t.Errorf("ps after the container died: %q", out)
	}
	p.mustB(t, "rm", "web")
	p.assertClean(t, pid, mon)
}

// TestPrivilegedEngineNetworkCommands: network connect, disconnect and
// reload act on engine containers (running and created); network rm -f
// and system reset remove containers.
func TestPrivilegedEngineNetworkCommands(t *testing.T) {
	p := newETopo(t)
	p.mustB(t, "network", "create", "--subnet", "198.19.50.0/24", "--disable-dns", "n1")
	p.mustB(t, "network", "create", "--subnet", "198.19.51.0/24", "--disable-dns", "n2")
	p.mustB(t, "run", "-d", "--name", "web", "--network", "n1", "--rootfs", p.rootfs, "httpd", "-f", "-p", "80", "-h", "/www")
	p.mustB(t, "network", "connect", "--ip", "198.19.51.9", "n2", "web")
	if out := p.mustB(t, "exec", "web", "ip", "-o", "-4", "addr", "show", "eth1"); !strings.Contains(out, "198.19.51.9/24") {
		t.Errorf("eth1 after connect: %s", out)
	}
	if got := p.inspect(t, "web", "{{.NetworkSettings.Networks.n1.IPAddress}} {{.NetworkSettings.Networks.n2.IPAddress}}"); got != "198.19.50.2 198.19.51.9" {
		t.Errorf("inspect after connect: %q", got)
	}
	if out := p.mustB(t, "exec", "web", "cat", "/etc/hosts"); !strings.Contains(out, "198.19.51.9\t") || !strings.Contains(out, "198.19.50.2\t") {
		t.Errorf("hosts after connect:\n%s", out)
	}
	p.mustB(t, "network", "disconnect", "n1", "web")
	if out := p.mustB(t, "exec", "web", "cat", "/etc/hosts"); strings.Contains(out, "198.19.50.2\t") || !strings.Contains(out, "198.19.51.9\t") {
		t.Errorf("hosts after disconnect:\n%s", out)
	}
	if out, err := p.b("exec", "web", "ip", "link", "show", "eth0"); err == nil {
		t.Errorf("eth0 still there after disconnect: %s", out)
	}
	id := p.inspect(t, "web", "{{.Id}}")
	if out := p.mustB(t, "network", "reload", "web"); strings.TrimSpace(out) != id {
		t.Errorf("reload printed %q", out)
	}
	// A created container joins a connected network at start.
	p.mustB(t, "create", "--name", "later", "--network", "n1", "--rootfs", p.rootfs, "sleep", "1000")
	p.mustB(t, "network", "connect", "n2", "later")
	p.mustB(t, "start", "later")
	if out := p.mustB(t, "exec", "later", "ip", "-o", "-4", "addr"); !strings.Contains(out, "198.19.50.") || !strings.Contains(out, "198.19.51.") {
		t.Errorf("later's addresses: %s", out)
	}
	// n2 is used by both; rm refuses, rm -f removes the containers.
	if out, err := p.b("network", "rm", "n2"); exitCode(err) != 2 {
		t.Errorf("rm in use: %v %s", err, out)
	}
	p.mustB(t, "network", "rm", "-f", "n2")
	if out := p.mustB(t, "ps", "-a", "--format", "{{.Names}}"); out != "" {
		t.Errorf("containers after network rm -f: %q", out)
	}
	// system reset removes running and created containers and the
	// engine's directories.
	p.mustB(t, "run", "-d", "--name", "a", "-p", "8080:80", "--rootfs", p.rootfs, "httpd", "-f", "-p", "80", "-h", "/www")
	p.mustB(t, "create", "--name", "b", "--rootfs", p.rootfs, "true")
	pid, _ := strconv.Atoi(p.inspect(t, "a", "{{.State.Pid}}"))
	p.mustB(t, "system", "reset", "--force")
	if _, err := os.Stat(p.root); !os.IsNotExist(err) {
		t.Errorf("storage root after reset: %v", err)
	}
	p.assertClean(t, pid)
}

// TestPrivilegedPod: members of a pod share its namespace (localhost), the
// pod's -p reaches them from outside, its name resolves on its network,
// and pod rm -f leaves nothing.
func TestPrivilegedPod(t *testing.T) {
	if _, err := os.Stat("/usr/bin/catatonit"); err != nil {
		t.Skip("needs catatonit")
	}
	p := newETopo(t)
	p.mustB(t, "network", "create", "--subnet", "198.19.60.0/24", "pn")
	podID := strings.TrimSpace(p.mustB(t, "pod", "create", "--name", "mypod", "--network", "pn", "-p", "8080:80"))
	if out := p.mustB(t, "pod", "ps", "--format", "{{.Name}} {{.Status}} {{.NumberOfContainers}}"); out != "mypod Created 1\n" {
		t.Errorf("pod ps after create: %q", out)
	}
	p.mustB(t, "run", "-d", "--pod", "mypod", "--name", "web", "--rootfs", p.rootfs, "httpd", "-f", "-p", "80", "-h", "/www")
	out, err := p.b("run", "--rm", "--pod", "mypod", "--rootfs", p.rootfs, "sh", "-c", "wget -qO- http://127.0.0.1/; hostname")
	if err != nil || out != "hello from berth\nmypod\n" {
		t.Errorf("member over localhost: %v %q", err, out)
	}
	if out, err := p.b("run", "--rm", "--network", "pn", "--rootfs", p.rootfs, "wget", "-qO-", "http://mypod/"); err != nil || out != "hello from berth\n" {
		t.Errorf("pod name in DNS: %v %q", err, out)
	}
	if got, err := httpGet(p.outside, "198.18.0.1:8080"); err != nil || got != "hello from berth\n" {
		t.Errorf("pod's -p from outside: %q %v", got, err)
	}
	if out, err := p.b("run", "--pod", "mypod", "-p", "90:90", "--rootfs", p.rootfs, "true"); err == nil || !strings.Contains(out, "--publish cannot be used with --pod") {
		t.Errorf("-p on a member: %v %s", err, out)
	}
	infra := p.inspect(t, "web", "{{.HostConfig.NetworkMode}}")
	if out, err := p.b("rm", "-f", strings.TrimPrefix(infra, "container:")); exitCode(err) != 2 || !strings.Contains(out, "cannot be removed without removing the pod") {
		t.Errorf("rm of the infra container: %v %s", err, out)
	}
	if out := p.mustB(t, "pod", "inspect", "--format", "{{.State}} {{.NumContainers}}", "mypod"); out != "Running 2\n" {
		t.Errorf("pod inspect: %q", out)
	}
	if out, err := p.b("pod", "rm", "mypod"); exitCode(err) != 2 {
		t.Errorf("pod rm of a running pod: %v %s", err, out)
	}
	if out := p.mustB(t, "pod", "rm", "-f", "mypod"); strings.TrimSpace(out) != podID {
		t.Errorf("pod rm printed %q", out)
	}
	if out := p.mustB(t, "pod", "ps", "-q"); out != "" {
		t.Errorf("pods left: %q", out)
	}
	p.assertClean(t)
}

// TestPrivilegedRunImage is the README's first command: the banner image
// from the image store, run with -p 8080:80 and fetched from outside; its
// root filesystem is mounted while it runs and gone after rm.
func TestPrivilegedRunImage(t *testing.T) {
	p := newETopo(t)
	s, err := image.Open(filepath.Join(p.root, "images"))
	if err != nil {
		t.Fatal(err)
	}
	banner := imagetest.BannerImage(t, s)
	p.mustB(t, "run", "-d", "--name", "webserver", "-p", "8080:80", "banner")
	if got, err := httpGet(p.outside, "198.18.0.1:8080"); err != nil || got != "Hello from berth\n" {
		t.Fatalf("page from outside: %q %v", got, err)
	}
	if got := p.inspect(t, "webserver", "{{.ImageName}} {{.Config.Cmd}} {{.Path}}"); got != "banner [httpd -f -v -p 80 -h /www] httpd" {
		t.Errorf("inspect: %q", got)
	}
	// -P publishes the image's EXPOSE 80.
	p.mustB(t, "run", "-d", "--name", "pub", "-P", "banner")
	if out := p.mustB(t, "port", "pub", "80"); !strings.HasPrefix(out, "0.0.0.0:") {
		t.Errorf("port pub 80: %q", out)
	}
	if out, err := p.b("run", "--rm", "banner", "sh", "-c", "echo changed > /www/x; cat /www/index.html"); err != nil || out != "Hello from berth\n" {
		t.Errorf("run a command in the image: %v %q", err, out)
	}
	if cs, _ := s.Containers(banner.ID); len(cs) != 2 {
		t.Errorf("store containers while running: %v", cs)
	}
	// A created container holds its image too.
	p.mustB(t, "create", "--name", "idle", "banner")
	if out, err := p.b("rmi", "banner"); exitCode(err) != 2 {
		t.Errorf("rmi of an image in use: %v %s", err, out)
	}
	p.mustB(t, "rm", "-f", "webserver", "pub", "idle")
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), filepath.Join(p.root, "images")) {
		t.Error("root filesystem still mounted after rm")
	}
	if ents, _ := os.ReadDir(filepath.Join(p.root, "images", "containers")); len(ents) != 0 {
		t.Errorf("container layers left: %v", ents)
	}
	p.assertClean(t)
}

// TestPrivilegedConnectPublished: a container with a published port can be
// connected to a second network (the port stays on its first network, as
// Podman's traffic goes), disconnecting the second network keeps the
// port, disconnecting the first takes it away.
func TestPrivilegedConnectPublished(t *testing.T) {
	p := newETopo(t)
	p.mustB(t, "network", "create", "--subnet", "198.19.150.0/24", "pn1")
	p.mustB(t, "network", "create", "--subnet", "198.19.151.0/24", "pn2")
	p.mustB(t, "run", "-d", "--name", "web", "--network", "pn1", "-p", "8080:80", "--rootfs", p.rootfs, "httpd", "-f", "-p", "80", "-h", "/www")
	p.mustB(t, "network", "connect", "pn2", "web")
	if ips := p.inspect(t, "web", `{{(index .NetworkSettings.Networks "pn1").IPAddress}} {{(index .NetworkSettings.Networks "pn2").IPAddress}}`); !strings.HasPrefix(ips, "198.19.150.") || !strings.Contains(ips, " 198.19.151.") {
		t.Errorf("addresses after connect: %q", ips)
	}
	if got, err := httpGet(p.outside, "198.18.0.1:8080"); err != nil || got != "hello from berth\n" {
		t.Fatalf("page after connect: %q %v", got, err)
	}
	p.mustB(t, "network", "disconnect", "pn2", "web")
	if got, err := httpGet(p.outside, "198.18.0.1:8080"); err != nil || got != "hello from berth\n" {
		t.Fatalf("page after disconnecting the second network: %q %v", got, err)
	}
	p.mustB(t, "network", "disconnect", "pn1", "web")
	// (the monitor still holds the host port: a connection may open, but
	// nothing answers)
	if got, err := httpGetOnce(p.outside, "198.18.0.1:8080", 2*time.Second); err == nil && got != "" {
		t.Errorf("port still forwarded after disconnecting its network: %q", got)
	}
	p.mustB(t, "rm", "-f", "web")
}

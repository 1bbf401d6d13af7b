package slirp4netns

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/netns"
	"github.com/berthnet/berth/internal/nettest"
	"github.com/berthnet/berth/internal/usernet"
)

// The kernel tests run the front-end as a child process (this test binary
// re-executed) inside a "host" namespace, as Podman runs slirp4netns.
const (
	childEnv  = "BUSR_SLIRP_CHILD"
	resolvEnv = "BUSR_SLIRP_RESOLV"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		o, err := parse(os.Args[1:], os.Stderr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		os.Exit(runParsed(ctx, o, Env{Stdout: os.Stdout, Stderr: os.Stderr, LogLevel: slog.LevelDebug}, func(c *usernet.Config) {
			if r := os.Getenv(resolvEnv); r != "" {
				c.ResolvConf = r
			}
		}))
	}
	os.Exit(m.Run())
}

// topo is the test topology: the stack's host side in host, which reaches
// peer over a veth (198.18.0.1 - 198.18.0.2, fd42:198:18::1 - ::2); the
// TAP in ctr.
type topo struct {
	host, peer, ctr *nettest.NS
	dir             string
}

func newTopo(t *testing.T) *topo {
	t.Helper()
	nettest.Privileged(t)
	tp := &topo{
		host: nettest.NewNS(t, nettest.RandName("busrh")),
		peer: nettest.NewNS(t, nettest.RandName("busrp")),
		ctr:  nettest.NewNS(t, nettest.RandName("busrc")),
		dir:  t.TempDir(),
	}
	nettest.Connect(t, tp.host, "busrv0", netip.MustParsePrefix("198.18.0.1/24"), tp.peer, "busrv1", netip.MustParsePrefix("198.18.0.2/24"))
	// IPv6 on the veth, without DAD so the addresses work at once.
	for _, x := range []struct {
		ns   *nettest.NS
		dev  string
		addr string
	}{{tp.host, "busrv0", "fd42:198:18::1/64"}, {tp.peer, "busrv1", "fd42:198:18::2/64"}} {
		if out, err := nettest.Run(x.ns, 5*time.Second, "ip", "addr", "add", x.addr, "dev", x.dev, "nodad"); err != nil {
			t.Fatalf("ip addr add %s: %v %s", x.addr, err, out)
		}
	}
	// Podman turns DAD off in the container namespace before slirp4netns
	// starts; do the same.
	if err := tp.ctr.Do(func() error {
		return os.WriteFile("/proc/sys/net/ipv6/conf/default/accept_dad", []byte("0"), 0o644)
	}); err != nil {
		t.Fatal(err)
	}
	return tp
}

type child struct {
	cmd   *exec.Cmd
	exitW *os.File
	api   string
	log   *nettest.LogBuffer
	done  chan error
}

// start runs the front-end in tp.host with Podman's command line plus
// extra flags, waits for the ready fd and returns the running child.
func (tp *topo) start(t *testing.T, extra ...string) *child {
	t.Helper()
	return tp.startIn(t, tp.ctr.Path(), extra...)
}

// startIn is start with the TAP in the namespace at ctrPath.
func (tp *topo) startIn(t *testing.T, ctrPath string, extra ...string) *child {
	t.Helper()
	resolv := filepath.Join(tp.dir, "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 198.18.0.2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	api := filepath.Join(tp.dir, nettest.RandName("busr")+".net")
	args := append([]string{"--mtu=65520", "--enable-sandbox", "--enable-seccomp", "--enable-ipv6",
		"-c", "-e", "3", "-r", "4", "--api-socket", api}, extra...)
	args = append(args, "--netns-type=path", ctrPath, "tap0")
	return tp.launch(t, []string{"nsenter", "--net=" + tp.host.Path(), "--", os.Args[0]}, args, api, resolv)
}

// launch runs the front-end as cmdline + args, with the exit fd as fd 3
// and the ready fd as fd 4, and waits until it is ready.
func (tp *topo) launch(t *testing.T, cmdline, args []string, api, resolv string) *child {
	t.Helper()
	exitR, exitW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(cmdline[0], append(cmdline[1:], args...)...)
	cmd.Env = append(os.Environ(), childEnv+"=1", resolvEnv+"="+resolv)
	cmd.ExtraFiles = []*os.File{exitR, readyW}
	c := &child{cmd: cmd, exitW: exitW, api: api, log: &nettest.LogBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = c.log, c.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exitR.Close()
	readyW.Close()
	go func() { c.done <- cmd.Wait() }()
	t.Cleanup(func() {
		exitW.Close()
		select {
		case <-c.done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-c.done
		}
		if t.Failed() {
			t.Logf("slirp4netns log:\n%s", c.log.String())
		}
	})
	buf := make([]byte, 8)
	_ = readyR.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := readyR.Read(buf)
	readyR.Close()
	if err != nil || string(buf[:n]) != "1" {
		t.Fatalf("ready fd: read %q, %v; log:\n%s", buf[:n], err, c.log.String())
	}
	return c
}

// call sends one API request as Podman does (write, shut down the write
// side, read the answer).
func (c *child) call(t *testing.T, req string) string {
	t.Helper()
	conn, err := net.Dial("unix", c.api)
	if err != nil {
		t.Fatalf("dial api: %v", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(req + "\n")); err != nil {
		t.Fatal(err)
	}
	_ = conn.(*net.UnixConn).CloseWrite()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := bufio.NewReader(conn).ReadString(0)
	if err != nil && b == "" {
		t.Fatalf("read api: %v", err)
	}
	return b
}

func TestPrivilegedSlirp4netns(t *testing.T) {
	tp := newTopo(t)
	peerHTTP := nettest.Listen(t, tp.peer, "tcp", ":8080")
	peerSeen := nettest.ServeBanner(peerHTTP, "hello from peer\n")
	startDNSServer(t, tp)
	c := tp.start(t, "--disable-host-loopback")

	t.Run("configure", func(t *testing.T) {
		out, err := nettest.Run(tp.ctr, 5*time.Second, "ip", "-4", "addr", "show", "tap0")
		if err != nil || !strings.Contains(out, "10.0.2.100/24") || !strings.Contains(out, "mtu 65520") {
			t.Fatalf("tap0 not configured: %v\n%s", err, out)
		}
		out, _ = nettest.Run(tp.ctr, 5*time.Second, "ip", "route", "show", "default")
		if !strings.Contains(out, "default via 10.0.2.2 dev tap0") {
			t.Fatalf("no default route via 10.0.2.2: %q", out)
		}
	})

	t.Run("outbound TCP", func(t *testing.T) {
		got, err := nettest.Fetch(tp.ctr, "tcp", "198.18.0.2:8080")
		if err != nil || got != "hello from peer\n" {
			t.Fatalf("fetch from container: %q, %v", got, err)
		}
		if src := <-peerSeen; !strings.HasPrefix(src, "198.18.0.1:") {
			t.Errorf("peer saw the connection from %s, want the host's address 198.18.0.1", src)
		}
	})

	t.Run("outbound TCP IPv6", func(t *testing.T) {
		// The guest autoconfigures fd00::/64 from the stack's router
		// advertisements.
		var got string
		var err error
		for i := 0; i < 50; i++ {
			if got, err = nettest.FetchWithin(tp.ctr, "tcp", "[fd42:198:18::2]:8080", time.Second); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if got != "hello from peer\n" {
			out, _ := nettest.Run(tp.ctr, 5*time.Second, "ip", "-6", "addr")
			t.Fatalf("fetch over IPv6: %q, %v\n%s", got, err, out)
		}
		<-peerSeen
	})

	t.Run("DNS forwarder", func(t *testing.T) {
		for _, server := range []string{"10.0.2.3:53"} {
			for _, proto := range []string{"udp", "tcp"} {
				conn, err := nettest.Dial(tp.ctr, proto, server, 3*time.Second)
				if err != nil {
					t.Fatalf("dial %s %s: %v", proto, server, err)
				}
				q := new(mdns.Msg)
				q.SetQuestion("busr.test.", mdns.TypeA)
				dc := &mdns.Conn{Conn: conn}
				_ = dc.SetDeadline(time.Now().Add(5 * time.Second))
				if err := dc.WriteMsg(q); err != nil {
					t.Fatal(err)
				}
				r, err := dc.ReadMsg()
				conn.Close()
				if err != nil {
					t.Fatalf("%s query to %s: %v", proto, server, err)
				}
				if len(r.Answer) != 1 || r.Answer[0].(*mdns.A).A.String() != "198.18.0.99" || r.Id != q.Id {
					t.Fatalf("%s query to %s: answer %v", proto, server, r.Answer)
				}
			}
		}
	})

	t.Run("ICMP echo", func(t *testing.T) {
		for _, dst := range []string{"198.18.0.2", "10.0.2.2"} {
			if err := ping(tp.ctr, dst); err != nil {
				t.Errorf("ping %s from the container: %v", dst, err)
			}
		}
		// Nobody answers for an address that does not exist.
		if err := ping(tp.ctr, "198.18.0.77"); err == nil {
			t.Errorf("ping 198.18.0.77 got an answer; nothing lives there")
		}
	})

	t.Run("host loopback disabled", func(t *testing.T) {
		l := nettest.Listen(t, tp.host, "tcp", "127.0.0.1:9090")
		nettest.ServeBanner(l, "host loopback\n")
		if got, err := nettest.FetchWithin(tp.ctr, "tcp", "10.0.2.2:9090", 2*time.Second); err == nil {
			t.Fatalf("reached the host's loopback through 10.0.2.2 with --disable-host-loopback: %q", got)
		}
	})

	t.Run("port forward", func(t *testing.T) {
		l := nettest.Listen(t, tp.ctr, "tcp", ":80")
		seen := nettest.ServeBanner(l, "hello from container\n")
		resp := c.call(t, `{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_addr":"0.0.0.0","host_port":8080,"guest_port":80}}`)
		if resp != `{"return":{"id":1}}` {
			t.Fatalf("add_hostfwd: %s", resp)
		}
		got, err := nettest.Fetch(tp.peer, "tcp", "198.18.0.1:8080")
		if err != nil || got != "hello from container\n" {
			t.Fatalf("fetch through the forward from peer: %q, %v", got, err)
		}
		if src := <-seen; !strings.HasPrefix(src, "198.18.0.2:") {
			t.Errorf("container saw the forwarded connection from %s, want the client 198.18.0.2", src)
		}
		got, err = nettest.Fetch(tp.host, "tcp", "127.0.0.1:8080")
		if err != nil || got != "hello from container\n" {
			t.Fatalf("fetch through the forward from the host's loopback: %q, %v", got, err)
		}
		if src := <-seen; !strings.HasPrefix(src, "10.0.2.2:") {
			t.Errorf("container saw a host-loopback client as %s, want the gateway 10.0.2.2", src)
		}
		assertKernelPath(t, tp.ctr.Path())
		want := `{"entries":[{"id":1,"proto":"tcp","host_addr":"0.0.0.0","host_port":8080,"guest_addr":"10.0.2.100","guest_port":80}]}`
		if resp := c.call(t, `{"execute":"list_hostfwd"}`); resp != want {
			t.Errorf("list_hostfwd:\n got %s\nwant %s", resp, want)
		}
		if resp := c.call(t, `{"execute":"remove_hostfwd","arguments":{"id":1}}`); resp != `{"return":{}}` {
			t.Fatalf("remove_hostfwd: %s", resp)
		}
		if got, err := nettest.FetchWithin(tp.peer, "tcp", "198.18.0.1:8080", 2*time.Second); err == nil {
			t.Fatalf("forward still answers after remove_hostfwd: %q", got)
		}
		if resp := c.call(t, `{"execute":"list_hostfwd"}`); resp != `{"entries":[]}` {
			t.Errorf("list_hostfwd after remove: %s", resp)
		}
	})

	t.Run("UDP port forward", func(t *testing.T) {
		pc := nettest.ListenPacket(t, tp.ctr, "udp", ":5353")
		go func() {
			buf := make([]byte, 512)
			for {
				n, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				_, _ = pc.WriteTo([]byte("echo "+string(buf[:n])+" from "+from.String()), from)
			}
		}()
		resp := c.call(t, `{"execute":"add_hostfwd","arguments":{"proto":"udp","host_port":5353,"guest_port":5353}}`)
		if resp != `{"return":{"id":2}}` {
			t.Fatalf("add_hostfwd udp: %s", resp)
		}
		conn, err := nettest.Dial(tp.peer, "udp", "198.18.0.1:5353", time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
		_, _ = conn.Write([]byte("ping"))
		buf := make([]byte, 512)
		n, err := conn.Read(buf)
		if err != nil || !strings.HasPrefix(string(buf[:n]), "echo ping from 198.18.0.2:") {
			t.Fatalf("udp through the forward: %q, %v", buf[:n], err)
		}
	})

	t.Run("API errors", func(t *testing.T) {
		for req, want := range apiErrorCases {
			if got := c.call(t, req); got != want {
				t.Errorf("%s:\n got %s\nwant %s", req, got, want)
			}
		}
		// The port of a running forward is taken.
		c.call(t, `{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_port":8081,"guest_port":80}}`)
		if got := c.call(t, `{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_port":8081,"guest_port":80}}`); got != `{"error":{"desc":"bad request: add_hostfwd: slirp_add_hostfwd failed"}}` {
			t.Errorf("second forward on a used port: %s", got)
		}
	})

	t.Run("exit fd", func(t *testing.T) {
		c.exitW.Close()
		select {
		case err := <-c.done:
			c.done <- err
			if err != nil {
				t.Fatalf("slirp4netns exited with %v after its exit fd closed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("slirp4netns still runs 5s after its exit fd closed")
		}
		if links := nettest.Links(t, tp.ctr); strings.Contains(strings.Join(links, " "), "tap0") {
			t.Errorf("tap0 left in the container namespace: %v", links)
		}
	})
}

// TestPrivilegedHostLoopback checks that the gateway address reaches the
// host's loopback by default (the counterpart of --disable-host-loopback).
func TestPrivilegedHostLoopback(t *testing.T) {
	tp := newTopo(t)
	l := nettest.Listen(t, tp.host, "tcp", "127.0.0.1:9090")
	nettest.ServeBanner(l, "host loopback\n")
	tp.start(t)
	got, err := nettest.Fetch(tp.ctr, "tcp", "10.0.2.2:9090")
	if err != nil || got != "host loopback\n" {
		t.Fatalf("fetch 10.0.2.2:9090 (host 127.0.0.1:9090): %q, %v", got, err)
	}
}

// TestPrivilegedUsernsPath opens the TAP in a network namespace owned by
// another user namespace (--userns-path), as slirp4netns does for a
// rootless container started by someone else.
func TestPrivilegedUsernsPath(t *testing.T) {
	tp := newTopo(t)
	peerHTTP := nettest.Listen(t, tp.peer, "tcp", ":8080")
	nettest.ServeBanner(peerHTTP, "hello from peer\n")
	holder := exec.Command("unshare", "--user", "--map-root-user", "--net", "sleep", "120")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = holder.Process.Kill()
		_ = holder.Wait()
	})
	pid := holder.Process.Pid
	userns := fmt.Sprintf("/proc/%d/ns/user", pid)
	for i := 0; i < 100; i++ {
		// Wait until unshare has moved into its namespaces.
		a, _ := os.Readlink(userns)
		b, _ := os.Readlink("/proc/self/ns/user")
		if a != b {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	ns, err := netns.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	tp.startIn(t, ns.Path(), "--userns-path="+userns)
	ctr := &nettest.NS{NetNS: ns, Name: "userns-owned"}
	got, err := nettest.Fetch(ctr, "tcp", "198.18.0.2:8080")
	if err != nil || got != "hello from peer\n" {
		out, _ := nettest.Run(ctr, 5*time.Second, "ip", "addr")
		t.Fatalf("fetch from the user-namespace-owned netns: %q, %v\n%s", got, err, out)
	}
}

// TestPrivilegedRootless runs the front-end as an unprivileged user, as
// rootless Podman does: the "container" is a user+network namespace that
// user created, the front-end runs in the host namespace and joins the
// container's user namespace through its PID (as slirp4netns does). The
// host's /dev/net/tun is 0600 here, so the front-end gets a usable node
// bind-mounted in a mount namespace of its own (the host's stays as it is).
func TestPrivilegedRootless(t *testing.T) {
	tp := newTopo(t)
	peerHTTP := nettest.Listen(t, tp.peer, "tcp", ":8080")
	nettest.ServeBanner(peerHTTP, "hello from peer\n")
	const uid = "64987" // no such user: nothing on the machine runs as it
	// Everything the user needs lives in a directory it can use.
	dir, err := os.MkdirTemp("", "busr-rootless-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	self := filepath.Join(dir, "slirp4netns.test")
	if out, err := exec.Command("cp", os.Args[0], self).CombinedOutput(); err != nil {
		t.Fatalf("copy test binary: %v %s", err, out)
	}
	node := filepath.Join(dir, "tun")
	if err := unix.Mknod(node, unix.S_IFCHR|0o666, int(unix.Mkdev(10, 200))); err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(node, 0o666)

	holder := exec.Command("setpriv", "--reuid="+uid, "--regid="+uid, "--clear-groups", "--",
		"unshare", "--user", "--map-root-user", "--net", "sleep", "120")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = holder.Process.Kill()
		_ = holder.Wait()
	})
	pid := strconv.Itoa(holder.Process.Pid)
	for i := 0; i < 100; i++ {
		a, _ := os.Readlink("/proc/" + pid + "/ns/net")
		b, _ := os.Readlink("/proc/self/ns/net")
		if a != b {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	api := filepath.Join(dir, "api.sock")
	cmdline := []string{"unshare", "--mount", "--propagation", "private", "--",
		"sh", "-c", `mount --bind "$0" /dev/net/tun && exec "$@"`, node,
		"nsenter", "--net=" + tp.host.Path(), "--",
		"setpriv", "--reuid=" + uid, "--regid=" + uid, "--clear-groups", "--", self}
	c := tp.launch(t, cmdline, []string{"--configure", "--mtu=65520", "--disable-host-loopback",
		"-e", "3", "-r", "4", "--api-socket", api, pid, "tap0"}, api, "")
	if out, err := exec.Command("stat", "-c", "%u", "/proc/"+strconv.Itoa(c.cmd.Process.Pid)).Output(); err != nil {
		t.Fatal(err)
	} else if strings.TrimSpace(string(out)) != uid {
		t.Fatalf("front-end runs as uid %s, want %s", out, uid)
	}

	ns, err := netns.Open("/proc/" + pid + "/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	ctr := &nettest.NS{NetNS: ns, Name: "rootless-container"}
	got, err := nettest.Fetch(ctr, "tcp", "198.18.0.2:8080")
	if err != nil || got != "hello from peer\n" {
		t.Fatalf("fetch from the rootless container: %q, %v", got, err)
	}
	l := nettest.Listen(t, ctr, "tcp", ":80")
	seen := nettest.ServeBanner(l, "hello from rootless container\n")
	if resp := c.call(t, `{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_addr":"0.0.0.0","host_port":8080,"guest_addr":"","guest_port":80}}`); resp != `{"return":{"id":1}}` {
		t.Fatalf("add_hostfwd: %s", resp)
	}
	got, err = nettest.Fetch(tp.peer, "tcp", "198.18.0.1:8080")
	if err != nil || got != "hello from rootless container\n" {
		t.Fatalf("fetch through the rootless forward: %q, %v", got, err)
	}
	if src := <-seen; !strings.HasPrefix(src, "198.18.0.2:") {
		t.Errorf("container saw the client as %s, want 198.18.0.2", src)
	}
	// Joined to the container's user namespace, the front-end took the
	// kernel path.
	assertKernelPath(t, "/proc/"+pid+"/ns/net")
}

// startDNSServer serves busr.test. A 198.18.0.99 on 198.18.0.2:53 (UDP and
// TCP) in the peer namespace.
func startDNSServer(t *testing.T, tp *topo) {
	t.Helper()
	h := mdns.HandlerFunc(func(w mdns.ResponseWriter, q *mdns.Msg) {
		r := new(mdns.Msg)
		r.SetReply(q)
		if q.Question[0].Name == "busr.test." && q.Question[0].Qtype == mdns.TypeA {
			rr, _ := mdns.NewRR("busr.test. 60 IN A 198.18.0.99")
			r.Answer = append(r.Answer, rr)
		} else {
			r.Rcode = mdns.RcodeNameError
		}
		_ = w.WriteMsg(r)
	})
	pc := nettest.ListenPacket(t, tp.peer, "udp", "198.18.0.2:53")
	ln := nettest.Listen(t, tp.peer, "tcp", "198.18.0.2:53")
	for _, srv := range []*mdns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		go func() { _ = srv.ActivateAndServe() }()
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
}

// ping sends one echo request from ns to dst and waits for its reply.
func ping(ns *nettest.NS, dst string) error { return nettest.Ping(ns, dst, 2*time.Second) }

// assertKernelPath checks that the forward was carried by kernel sockets:
// the guest namespace has the kernel path's fwmark rule and local table.
func assertKernelPath(t *testing.T, nsPath string) {
	t.Helper()
	out, err := exec.Command("nsenter", "--net="+nsPath, "ip", "rule").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "fwmark 0x62727468 lookup 25204") {
		t.Errorf("no kernel-path rule in the guest namespace (forward went through the user-mode stack?): %v\n%s", err, out)
	}
	out, err = exec.Command("nsenter", "--net="+nsPath, "ip", "route", "show", "table", "25204").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "local default dev lo") {
		t.Errorf("no local table 25204: %v\n%s", err, out)
	}
}

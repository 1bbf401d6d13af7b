package pasta_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/netns"
	"github.com/berthnet/berth/internal/nettest"
)

// The side-by-side topology. R is the outside world: the router and the
// servers. H is the host pasta runs in, joined to R by a veth named eth0 on
// both ends. N is the target namespace pasta configures.
const (
	rGateway  = "198.18.0.1" // R's end of the veth, H's default gateway
	hAddr     = "198.18.0.2" // H's address, copied into N
	rServer   = "198.18.1.1" // R's server address, behind the gateway
	rGateway6 = "fd00:198:18::1"
	hAddr6    = "fd00:198:18::2"
	dnsName   = "side.test."
	dnsAnswer = "198.18.1.53"
	dnsFwd    = "169.254.1.1" // Podman's --dns-forward address
	guestAddr = "169.254.1.2" // Podman 5.3+'s --map-guest-addr address
	ifName    = "eth0"
)

// impl is one pasta implementation under test.
type impl struct {
	name string
	bin  string
	// extra holds options only this implementation gets (those Debian's
	// pasta does not know).
	extra []string
}

// side is one fresh topology with one pasta in it.
type side struct {
	r, h, n *nettest.NS
	dir     string
	resolv  string
	// userns, when set, is the user namespace pasta runs in and that owns
	// N (the rootless variants).
	userns string
	// tun, when set, is a /dev/net/tun node anyone may open, bind-mounted
	// over pasta's /dev/net/tun when it runs as an unprivileged user.
	tun string
	// shared is a directory the user pasta runs as can use (pid files).
	shared string
}

// newSide builds R and H, the resolver in R, and N (owned by a fresh user
// namespace when rootless; that namespace is created by uid when uid is
// set, else by root).
func newSide(t *testing.T, rootless bool, uid string) *side {
	t.Helper()
	s := &side{
		r:   nettest.NewNS(t, nettest.RandName("sider")),
		h:   nettest.NewNS(t, nettest.RandName("sideh")),
		dir: t.TempDir(),
	}
	s.shared = s.dir
	if uid != "" {
		s.shared = sharedDir(t)
		s.tun = filepath.Join(s.shared, "tun")
		if err := unix.Mknod(s.tun, unix.S_IFCHR|0o666, int(unix.Mkdev(10, 200))); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(s.tun, 0o666); err != nil {
			t.Fatal(err)
		}
	}
	nettest.Connect(t, s.r, ifName, netip.MustParsePrefix(rGateway+"/24"), s.h, ifName, netip.MustParsePrefix(hAddr+"/24"))
	run(t, s.r, "ip", "addr", "add", rGateway6+"/64", "dev", ifName, "nodad")
	run(t, s.r, "ip", "addr", "add", rServer+"/24", "dev", "lo")
	run(t, s.h, "ip", "addr", "add", hAddr6+"/64", "dev", ifName, "nodad")
	run(t, s.h, "ip", "route", "add", "default", "via", rGateway)
	run(t, s.h, "ip", "-6", "route", "add", "default", "via", rGateway6)
	// pasta answers N's pings with ping sockets in H; Podman hosts allow
	// them (Debian's default range "1 0" allows nobody).
	if err := s.h.Do(func() error {
		return os.WriteFile("/proc/sys/net/ipv4/ping_group_range", []byte("0 2147483647"), 0o644)
	}); err != nil {
		t.Fatal(err)
	}
	s.resolv = filepath.Join(s.dir, "resolv.conf")
	if err := os.WriteFile(s.resolv, []byte("nameserver "+rServer+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	serveDNS(t, s.r)
	if rootless {
		s.n, s.userns = usernsNS(t, s, uid)
	} else {
		s.n = nettest.NewNS(t, nettest.RandName("siden"))
	}
	return s
}

// sharedDir is a fresh directory every user may use, removed at the end.
func sharedDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "side-pasta-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	return dir
}

// usernsNS starts a holder process in a new user and network namespace
// (root in it is uid outside, or root when uid is "": as in Podman's
// rootless user namespace, the user is root there), pins the network
// namespace in s.shared and returns it with the user namespace's path.
func usernsNS(t *testing.T, s *side, uid string) (*nettest.NS, string) {
	t.Helper()
	var prefix []string
	if uid != "" {
		prefix = []string{"setpriv", "--reuid=" + uid, "--regid=" + uid, "--clear-groups", "--"}
	}
	args := append(prefix, "unshare", "--user", "--map-root-user", "--net", "sleep", "600")
	holder := exec.Command(args[0], args[1:]...)
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = holder.Process.Kill()
		_ = holder.Wait()
	})
	proc := "/proc/" + strconv.Itoa(holder.Process.Pid)
	self, _ := os.Readlink("/proc/self/ns/net")
	for i := 0; ; i++ {
		n, _ := os.Readlink(proc + "/ns/net")
		if n != "" && n != self {
			break
		}
		if i == 200 {
			t.Fatal("holder did not enter its namespaces")
		}
		time.Sleep(10 * time.Millisecond)
	}
	path := filepath.Join(s.shared, nettest.RandName("siden"))
	if err := os.WriteFile(path, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(proc+"/ns/net", path, "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("pin the holder's namespace: %v", err)
	}
	t.Cleanup(func() {
		if err := netns.Unpin(path); err != nil {
			t.Error(err)
		}
	})
	ns, err := netns.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	return &nettest.NS{NetNS: ns, Name: "userns-owned"}, proc + "/ns/user"
}

func run(t *testing.T, ns *nettest.NS, name string, args ...string) string {
	t.Helper()
	out, err := nettest.Run(ns, 5*time.Second, name, args...)
	if err != nil {
		t.Fatalf("%s %v in %s: %v\n%s", name, args, ns.Name, err, out)
	}
	return out
}

// result is how one pasta invocation ended.
type result struct {
	code int    // exit code of the command
	out  string // its combined output
	pid  int    // the daemon's PID from the pid file, 0 if none
	// heldOutput is set when the command's output pipe stayed open after
	// the command itself exited (the daemon kept it).
	heldOutput bool
}

// start runs pasta as Podman does: the command in H (and in the user
// namespace for the rootless variant), with H's resolv.conf pointing at
// R's resolver, waiting for the command to exit. A daemon it leaves is
// killed in t.Cleanup.
func (s *side) start(t *testing.T, im impl, args ...string) result {
	t.Helper()
	return s.startNetns(t, im, s.n.Path(), args...)
}

// startNetns is start with --netns nsPath.
func (s *side) startNetns(t *testing.T, im impl, nsPath string, args ...string) result {
	t.Helper()
	pidFile := filepath.Join(s.shared, nettest.RandName("pasta")+".pid")
	args = append(append(append([]string{}, args...), im.extra...), "--pid", pidFile, "--netns", nsPath)
	cmdline := []string{"unshare", "--mount", "--propagation", "private", "--",
		"sh", "-c", `mount --bind "$0" /etc/resolv.conf && { [ -z "$1" ] || mount --bind "$1" /dev/net/tun; } && shift && exec "$@"`,
		s.resolv, s.tun, "nsenter"}
	if s.userns != "" {
		cmdline = append(cmdline, "--user="+s.userns)
	}
	cmdline = append(cmdline, "--net="+s.h.Path(), "--", im.bin)
	cmd := exec.Command(cmdline[0], append(cmdline[1:], args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// Podman reads the output until EOF; a daemon that keeps the pipe
	// would hang it. Give up on the pipe soon after the command exits.
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		err = <-done
		t.Errorf("%s did not return within 30s: %v", im.name, err)
	}
	res := result{out: out.String(), heldOutput: errors.Is(err, exec.ErrWaitDelay)}
	var ee *exec.ExitError
	switch {
	case err == nil, res.heldOutput:
		res.code = cmd.ProcessState.ExitCode()
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	default:
		t.Fatalf("run %s: %v", im.name, err)
	}
	if b, err := os.ReadFile(pidFile); err == nil {
		res.pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	if res.pid > 0 {
		pid := res.pid
		t.Cleanup(func() { stopPID(t, pid) })
	}
	return res
}

// alive reports whether pid runs (and is not a zombie).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// procUID is the real uid pid runs as.
func procUID(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[0] == "Uid:" {
			return f[1]
		}
	}
	return ""
}

// waitExit waits up to d for pid to end.
func waitExit(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !alive(pid) {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return !alive(pid)
}

// stopPID ends the daemon with that PID: SIGTERM, then SIGKILL.
func stopPID(t *testing.T, pid int) {
	if !alive(pid) {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	if waitExit(pid, 3*time.Second) {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	if !waitExit(pid, 3*time.Second) {
		t.Errorf("pasta daemon %d survives SIGKILL", pid)
	}
}

// firstLine is the first line of a pasta message, without the syslog
// complaints Debian's pasta prints when there is no syslog socket.
func firstLine(out string) string {
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !(strings.HasPrefix(l, "Failed to send ") && strings.HasSuffix(l, " to syslog")) {
			return l
		}
	}
	return ""
}

// serveDNS answers side.test. A 198.18.1.53 on rServer:53 (UDP and TCP)
// in ns.
func serveDNS(t *testing.T, ns *nettest.NS) {
	t.Helper()
	h := mdns.HandlerFunc(func(w mdns.ResponseWriter, q *mdns.Msg) {
		r := new(mdns.Msg)
		r.SetReply(q)
		if len(q.Question) == 1 && q.Question[0].Name == dnsName && q.Question[0].Qtype == mdns.TypeA {
			rr, _ := mdns.NewRR(dnsName + " 60 IN A " + dnsAnswer)
			r.Answer = append(r.Answer, rr)
		} else {
			r.Rcode = mdns.RcodeNameError
		}
		_ = w.WriteMsg(r)
	})
	pc := nettest.ListenPacket(t, ns, "udp", rServer+":53")
	ln := nettest.Listen(t, ns, "tcp", rServer+":53")
	for _, srv := range []*mdns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		go func() { _ = srv.ActivateAndServe() }()
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
}

// query asks server (over proto) for side.test. A from inside ns.
func query(ns *nettest.NS, proto, server string) (string, error) {
	conn, err := nettest.Dial(ns, proto, server, 3*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	q := new(mdns.Msg)
	q.SetQuestion(dnsName, mdns.TypeA)
	dc := &mdns.Conn{Conn: conn}
	_ = dc.SetDeadline(time.Now().Add(3 * time.Second))
	if err := dc.WriteMsg(q); err != nil {
		return "", err
	}
	r, err := dc.ReadMsg()
	if err != nil {
		return "", err
	}
	if r.Id != q.Id || len(r.Answer) != 1 {
		return "", fmt.Errorf("answer %v (id %d, want %d)", r.Answer, r.Id, q.Id)
	}
	a, ok := r.Answer[0].(*mdns.A)
	if !ok {
		return "", fmt.Errorf("answer %v", r.Answer[0])
	}
	return a.A.String(), nil
}

// peers maps each request's token to the client address the server saw.
var peers sync.Map

// serve answers TCP connections to addr in ns: it reads one line (the
// request's token), notes the client's address for it, and answers
// banner. The client speaks first: Debian's pasta does not pass data a
// server in the target namespace sends before the client has sent any on
// a forwarded connection (a "banner first" server's client gets nothing).
func serve(t *testing.T, ns *nettest.NS, addr, banner string) {
	t.Helper()
	l := nettest.Listen(t, ns, "tcp", addr)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				line, err := bufio.NewReader(c).ReadString('\n')
				if err != nil {
					return
				}
				host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
				peers.Store(strings.TrimSpace(line), host)
				_, _ = c.Write([]byte(banner))
			}()
		}
	}()
}

// servePorts serves each TCP port in ns (all addresses) with the banner
// "name:port".
func servePorts(t *testing.T, ns *nettest.NS, name string, ports ...int) {
	t.Helper()
	for _, p := range ports {
		serve(t, ns, ":"+strconv.Itoa(p), fmt.Sprintf("%s:%d", name, p))
	}
}

// fetch connects from ns, bound to local (if set), to addr, sends a
// fresh token and returns the server's answer and the client address the
// server saw.
func fetch(ns *nettest.NS, local, addr string, timeout time.Duration) (got, peer string, err error) {
	var c net.Conn
	err = ns.Do(func() error {
		d := net.Dialer{Timeout: timeout}
		if local != "" {
			d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
		}
		var err error
		c, err = d.Dial("tcp", addr)
		return err
	})
	if err != nil {
		return "", "", err
	}
	defer c.Close()
	token := nettest.RandName("req")
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write([]byte(token + "\n")); err != nil {
		return "", "", err
	}
	var b bytes.Buffer
	_, _ = b.ReadFrom(c)
	if b.Len() == 0 {
		return "", "", fmt.Errorf("no answer from %s", addr)
	}
	if p, ok := peers.Load(token); ok {
		peer = p.(string)
	}
	return b.String(), peer, nil
}

// udpEcho answers each datagram to addr:port in ns (addr "" for all
// addresses) with "echo <data> from <peer>". An unbound server would
// answer from the address its route picks, not the one it was asked on.
func udpEcho(t *testing.T, ns *nettest.NS, addr string, port int) {
	t.Helper()
	pc := nettest.ListenPacket(t, ns, "udp", net.JoinHostPort(addr, strconv.Itoa(port)))
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
}

// udpAsk sends msg from ns, bound to local (if set), to addr and returns
// the answer.
func udpAsk(ns *nettest.NS, local, addr, msg string) (string, error) {
	var conn net.Conn
	err := ns.Do(func() error {
		d := net.Dialer{}
		if local != "" {
			d.LocalAddr = &net.UDPAddr{IP: net.ParseIP(local)}
		}
		var err error
		conn, err = d.Dial("udp", addr)
		return err
	})
	if err != nil {
		return "", err
	}
	defer conn.Close()
	buf := make([]byte, 512)
	for try := 0; try < 3; try++ {
		_ = conn.SetDeadline(time.Now().Add(time.Second))
		if _, err := conn.Write([]byte(msg)); err != nil {
			return "", err
		}
		n, err := conn.Read(buf)
		if err == nil {
			return string(buf[:n]), nil
		}
	}
	return "", fmt.Errorf("no answer from %s", addr)
}

// ping sends one echo request from ns to dst and waits for its reply.
func ping(ns *nettest.NS, dst string) error { return nettest.Ping(ns, dst, 3*time.Second) }

// essentials is what `ip -j addr` and `ip -j route` show in ns, reduced
// to what pasta configures: non-loopback links (name, MTU, up), global
// addresses and routes (without the kernel's link-local and multicast
// ones). Sorted, one fact a line.
func essentials(t *testing.T, ns *nettest.NS) []string {
	t.Helper()
	var links []struct {
		IfName   string   `json:"ifname"`
		MTU      int      `json:"mtu"`
		Flags    []string `json:"flags"`
		AddrInfo []struct {
			Family    string `json:"family"`
			Local     string `json:"local"`
			PrefixLen int    `json:"prefixlen"`
			Scope     string `json:"scope"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal([]byte(run(t, ns, "ip", "-j", "addr", "show")), &links); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range links {
		if l.IfName == "lo" {
			continue
		}
		up := "down"
		for _, f := range l.Flags {
			if f == "UP" {
				up = "up"
			}
		}
		out = append(out, fmt.Sprintf("link %s mtu %d %s", l.IfName, l.MTU, up))
		for _, a := range l.AddrInfo {
			if a.Scope == "global" {
				out = append(out, fmt.Sprintf("addr %s %s/%d", l.IfName, a.Local, a.PrefixLen))
			}
		}
	}
	for _, fam := range []string{"-4", "-6"} {
		var routes []struct {
			Dst     string `json:"dst"`
			Gateway string `json:"gateway"`
			Dev     string `json:"dev"`
		}
		if err := json.Unmarshal([]byte(run(t, ns, "ip", "-j", fam, "route", "show")), &routes); err != nil {
			t.Fatal(err)
		}
		for _, r := range routes {
			if strings.HasPrefix(r.Dst, "fe80:") || strings.HasPrefix(r.Dst, "ff00:") {
				continue
			}
			s := "route" + fam + " " + r.Dst
			if r.Gateway != "" {
				s += " via " + r.Gateway
			}
			out = append(out, s+" dev "+r.Dev)
		}
	}
	sort.Strings(out)
	return out
}

// missing returns the lines of want not in got.
func missing(got, want []string) []string {
	have := map[string]bool{}
	for _, g := range got {
		have[g] = true
	}
	var m []string
	for _, w := range want {
		if !have[w] {
			m = append(m, w)
		}
	}
	return m
}

// berthPasta builds cmd/pasta into dir; it returns "" when the command
// does not exist in this tree yet.
func berthPasta(t *testing.T, dir string) string {
	t.Helper()
	if _, err := os.Stat("../../../cmd/pasta"); err != nil {
		return ""
	}
	bin := filepath.Join(dir, "pasta")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/berthnet/berth/cmd/pasta").CombinedOutput(); err != nil {
		t.Fatalf("build cmd/pasta: %v\n%s", err, out)
	}
	return bin
}

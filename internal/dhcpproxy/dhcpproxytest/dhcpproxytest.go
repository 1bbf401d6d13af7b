// Package dhcpproxytest holds helpers for tests of DHCP leases: a "LAN"
// namespace behind a host's macvlan parent with dnsmasq as its DHCP server
// (run only inside that namespace), and a DHCP proxy served in-process on a
// socket in the test's temp directory. Everything is removed in t.Cleanup,
// also on failure; dnsmasq is stopped by its PID.
package dhcpproxytest

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berthnet/berth/internal/dhcpproxy"
	"github.com/berthnet/berth/internal/nettest"
)

// LAN addresses (198.18.0.0/15 only).
var (
	LANSubnet  = netip.MustParsePrefix("198.18.1.0/24")
	LANGateway = netip.MustParseAddr("198.18.1.1")
	LANDNS     = netip.MustParseAddr("198.18.1.53")
)

// LANDomain is the domain the LAN's DHCP server hands out.
const LANDomain = "lan.test"

// LANOptions configures NewLAN.
type LANOptions struct {
	// Host is the namespace that gets the parent link; nil creates one.
	Host *nettest.NS
	// Parent names the host end of the veth (default "lanparent").
	Parent string
	// First and Last bound the DHCP range (default .100 to .199).
	First, Last string
	// LeaseTime is dnsmasq's lease time (default "2m", its minimum).
	LeaseTime string
	// T1 and T2, when set, are sent as options 58 and 59 (seconds).
	T1, T2 int
	// NoServer creates the LAN without starting dnsmasq.
	NoServer bool
	// Extra are further dnsmasq arguments.
	Extra []string
}

// LAN is a namespace joined by a veth to a host namespace, whose host end
// is the parent for macvlan links; dnsmasq serves DHCP on the LAN side.
type LAN struct {
	Host   *nettest.NS
	NS     *nettest.NS
	Parent string
	// Leases is dnsmasq's lease file; Log its log.
	Leases, Log string
	args        []string

	// mu guards cmd.
	mu  sync.Mutex
	cmd *exec.Cmd
}

// NewLAN builds the LAN and starts dnsmasq (unless opts.NoServer).
func NewLAN(t testing.TB, opts LANOptions) *LAN {
	t.Helper()
	nettest.Privileged(t)
	if _, err := exec.LookPath("dnsmasq"); err != nil {
		t.Skip("dnsmasq not installed (Debian package dnsmasq-base)")
	}
	if opts.Host == nil {
		opts.Host = nettest.NewNS(t, "host")
	}
	if opts.Parent == "" {
		opts.Parent = "lanparent"
	}
	if opts.First == "" {
		opts.First, opts.Last = "198.18.1.100", "198.18.1.199"
	}
	if opts.LeaseTime == "" {
		opts.LeaseTime = "2m"
	}
	lan := &LAN{Host: opts.Host, NS: nettest.NewNS(t, nettest.RandName("lan")), Parent: opts.Parent}
	nettest.Connect(t, lan.Host, lan.Parent, netip.Prefix{}, lan.NS, "eth0", netip.PrefixFrom(LANGateway, LANSubnet.Bits()))
	dir := t.TempDir()
	lan.Leases = filepath.Join(dir, "dnsmasq.leases")
	lan.Log = filepath.Join(dir, "dnsmasq.log")
	lan.args = []string{"--net=" + lan.NS.Path(), "--", "dnsmasq", "-k", "-C", "/dev/null", "--port=0",
		"--interface=eth0", "--bind-interfaces", "--no-ping", "--log-dhcp", "--log-facility=" + lan.Log,
		"--dhcp-range=" + opts.First + "," + opts.Last + ",255.255.255.0," + opts.LeaseTime,
		"--dhcp-option=option:router," + LANGateway.String(),
		"--dhcp-option=option:dns-server," + LANDNS.String(),
		"--dhcp-option=option:domain-name," + LANDomain,
		"--dhcp-leasefile=" + lan.Leases, "--pid-file=", "--user=root", "--group=root"}
	if opts.T1 > 0 {
		lan.args = append(lan.args, "--dhcp-option=option:T1,"+strconv.Itoa(opts.T1))
	}
	if opts.T2 > 0 {
		lan.args = append(lan.args, "--dhcp-option=option:T2,"+strconv.Itoa(opts.T2))
	}
	lan.args = append(lan.args, opts.Extra...)
	t.Cleanup(lan.Stop)
	if !opts.NoServer {
		lan.Start(t)
	}
	return lan
}

// Start starts dnsmasq in the LAN namespace and waits until it serves.
func (l *LAN) Start(t testing.TB) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cmd != nil {
		return
	}
	cmd := exec.Command("nsenter", l.args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := os.OpenFile(l.Log+".stderr", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dnsmasq: %v", err)
	}
	l.cmd = cmd
	// dnsmasq logs "DHCP, IP range ..." once its DHCP socket is bound.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if b, _ := os.ReadFile(l.Log); strings.Contains(string(b), "DHCP, IP range") {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	b, _ := os.ReadFile(l.Log + ".stderr")
	t.Fatalf("dnsmasq did not start: %s", b)
}

// Stop stops dnsmasq (by its PID) and waits for it.
func (l *LAN) Stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cmd == nil {
		return
	}
	_ = l.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = l.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		_ = l.cmd.Process.Kill()
		<-done
	}
	l.cmd = nil
}

// Lease is one line of dnsmasq's lease file.
type Lease struct {
	Expiry   int64
	MAC      string
	IP       netip.Addr
	Hostname string
	ClientID string
}

// ServerLeases reads dnsmasq's lease file.
func (l *LAN) ServerLeases() []Lease {
	f, err := os.Open(l.Leases)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []Lease
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 5 || strings.HasPrefix(fs[0], "duid") {
			continue
		}
		exp, _ := strconv.ParseInt(fs[0], 10, 64)
		ip, _ := netip.ParseAddr(fs[2])
		out = append(out, Lease{Expiry: exp, MAC: fs[1], IP: ip, Hostname: fs[3], ClientID: fs[4]})
	}
	return out
}

// ServerLease returns dnsmasq's lease for ip.
func (l *LAN) ServerLease(ip netip.Addr) (Lease, bool) {
	for _, x := range l.ServerLeases() {
		if x.IP == ip {
			return x, true
		}
	}
	return Lease{}, false
}

// WaitFor polls cond every 50 ms until it holds or timeout passes.
func WaitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Proxy is a DHCP proxy served in-process.
type Proxy struct {
	Socket string
	Dir    string
	cfg    dhcpproxy.Config

	// mu guards stop.
	mu   sync.Mutex
	stop func()
}

// StartProxy serves a proxy on <temp dir>/nv-proxy.sock (cfg.Dir defaults
// to the same directory); it stops in t.Cleanup.
func StartProxy(t testing.TB, cfg dhcpproxy.Config) *Proxy {
	t.Helper()
	dir := t.TempDir()
	if cfg.Dir == "" {
		cfg.Dir = dir
	}
	if cfg.Logger == nil {
		cfg.Logger = nettestLogger(t)
	}
	p := &Proxy{Socket: filepath.Join(dir, dhcpproxy.SocketName), Dir: cfg.Dir, cfg: cfg}
	p.Start(t)
	t.Cleanup(p.Stop)
	return p
}

// Start serves the proxy again (after Stop): a restart.
func (p *Proxy) Start(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stop != nil {
		return
	}
	srv, err := dhcpproxy.New(p.cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := dhcpproxy.Listen(filepath.Dir(p.Socket))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	p.stop = func() {
		cancel()
		if err := <-done; err != nil {
			fmt.Fprintf(os.Stderr, "dhcp proxy: %v\n", err)
		}
		ln.Close()
	}
}

// Stop stops the proxy without releasing its leases (as a killed or
// restarted proxy would).
func (p *Proxy) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stop != nil {
		p.stop()
		p.stop = nil
	}
}

// LeaseFile returns the proxy's lease cache.
func (p *Proxy) LeaseFile() string { return filepath.Join(p.Dir, dhcpproxy.LeaseFile) }

// tWriter writes log lines to t.Log until the test's cleanups are done.
type tWriter struct {
	t testing.TB
	// mu guards done.
	mu   *sync.Mutex
	done *bool
}

func (w tWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !*w.done {
		w.t.Log(strings.TrimRight(string(b), "\n"))
	}
	return len(b), nil
}

func nettestLogger(t testing.TB) *slog.Logger {
	w := tWriter{t: t, mu: &sync.Mutex{}, done: new(bool)}
	t.Cleanup(func() { w.mu.Lock(); *w.done = true; w.mu.Unlock() })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

package overlay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vishvananda/netlink"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/berthnet/berth/berthnet"
	"github.com/berthnet/berth/internal/ipam"
	"github.com/berthnet/berth/internal/nettest"
	"github.com/berthnet/berth/internal/overlay/agent"
	"github.com/berthnet/berth/internal/overlay/lease"
	"github.com/berthnet/berth/internal/vxlan"
)

const (
	boNet    = "bo-ovl"
	boRange  = "198.19.0.0/16"
	boVNI    = 78
	boTTL    = 3 * time.Second
	boVXLAN  = "bovx"
	boBridge = "bobr"
)

// boHost is one namespace "host": an etcd member, an agent, a container.
type boHost struct {
	k        int
	ns       *nettest.NS
	ctr      *nettest.NS
	ip       netip.Addr
	stateDir string
	agent    *exec.Cmd
	ctrIP    netip.Addr
	result   []byte
}

type boCluster struct {
	t     *testing.T
	self  string
	dir   string
	hosts []*boHost
	cli   *clientv3.Client
	logs  []string
}

// proc starts a command inside a host namespace and stops it (by PID) when
// the test ends.
func (c *boCluster) proc(h *boHost, logName string, env []string, name string, args ...string) *exec.Cmd {
	c.t.Helper()
	logPath := filepath.Join(c.dir, logName)
	f, err := os.Create(logPath)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command("nsenter", append([]string{"--net=" + h.ns.Path(), "--", name}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start %s: %v", name, err)
	}
	f.Close()
	c.logs = append(c.logs, logPath)
	c.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd
}

func (c *boCluster) endpoints() string {
	var eps []string
	for _, h := range c.hosts {
		eps = append(eps, fmt.Sprintf("http://%s:2379", h.ip))
	}
	return strings.Join(eps, ",")
}

func (c *boCluster) agentArgs(h *boHost, extra ...string) []string {
	return append([]string{"agent", "--network", boNet, "--etcd-endpoints", c.endpoints(), "--range", boRange,
		"--vni", fmt.Sprint(boVNI), "--iface", "boeth", "--lease-ttl", boTTL.String(), "--resync", "5s",
		"--state-dir", h.stateDir, "--vxlan", boVXLAN, "--bridge", boBridge, "--hostname", fmt.Sprintf("boh%d", h.k),
		"--log-level", "debug"}, extra...)
}

func (c *boCluster) startAgent(h *boHost) {
	c.t.Helper()
	h.agent = c.proc(h, fmt.Sprintf("agent-h%d-%d.log", h.k, time.Now().UnixNano()), []string{"BO_OVERLAY_EXEC=1"}, c.self, c.agentArgs(h)...)
}

// waitState waits until the agent of h has published a subnet.
func (c *boCluster) waitState(h *boHost) agent.HostState {
	c.t.Helper()
	var (
		st  agent.HostState
		err error
	)
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if st, err = agent.ReadHostState(h.stateDir, boNet); err == nil && agent.Running(h.stateDir, boNet) {
			return st
		}
	}
	c.dumpLogs()
	c.t.Fatalf("agent on host %d published no subnet: %v", h.k, err)
	return st
}

func (c *boCluster) dumpLogs() {
	for _, p := range c.logs {
		b, _ := os.ReadFile(p)
		if len(b) > 4000 {
			b = b[len(b)-4000:]
		}
		c.t.Logf("--- %s:\n%s", filepath.Base(p), b)
	}
}

// cni runs the plugin in host h's namespace, as a runtime would.
func (c *boCluster) cni(h *boHost, verb, ctrID string, netnsPath string, conf map[string]any) ([]byte, error) {
	c.t.Helper()
	b, _ := json.Marshal(conf)
	cmd := exec.Command("nsenter", "--net="+h.ns.Path(), "--", c.self)
	cmd.Env = append(os.Environ(), "BO_OVERLAY_EXEC=1", "CNI_COMMAND="+verb, "CNI_CONTAINERID="+ctrID,
		"CNI_NETNS="+netnsPath, "CNI_IFNAME=eth0", "CNI_PATH="+filepath.Dir(c.self))
	cmd.Stdin = bytes.NewReader(b)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.Bytes(), fmt.Errorf("%s %s: %w: %s%s", verb, ctrID, err, out.Bytes(), errb.Bytes())
	}
	return out.Bytes(), nil
}

func (c *boCluster) conf(h *boHost) map[string]any {
	return map[string]any{"cniVersion": "1.1.0", "name": boNet, "type": "berth-overlay", "stateDir": h.stateDir}
}

// routesOn lists the overlay routes (destination → via) on host h's VXLAN
// device, and reports whether every route came with its neighbour and FDB
// entry. The three lists are separate netlink dumps, so a snapshot taken
// while the agent programs a host can be caught in between; callers poll.
func routesOn(t *testing.T, h *boHost) (map[netip.Prefix]bool, string) {
	t.Helper()
	d, err := vxlan.Open(h.ns.NetNS, boVXLAN)
	if err != nil {
		t.Fatalf("host %d: %v", h.k, err)
	}
	defer d.Close()
	st, err := d.Programmed()
	if err != nil {
		t.Fatal(err)
	}
	out := map[netip.Prefix]bool{}
	for _, r := range st.Routes {
		out[r.Dst] = true
	}
	// Every route must come with its neighbour and FDB entry.
	if len(st.Neighs) != len(st.Routes) || len(st.FDB) != len(st.Routes) {
		return out, st.String()
	}
	return out, ""
}

// waitRoutes waits until host h routes exactly the subnets in want, each
// with its neighbour and FDB entry.
func (c *boCluster) waitRoutes(h *boHost, want []netip.Prefix, within time.Duration) time.Duration {
	c.t.Helper()
	start := time.Now()
	var got map[netip.Prefix]bool
	var inconsistent string
	for time.Since(start) < within {
		got, inconsistent = routesOn(c.t, h)
		ok := len(got) == len(want) && inconsistent == ""
		for _, w := range want {
			ok = ok && got[w]
		}
		if ok {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.dumpLogs()
	if inconsistent != "" {
		c.t.Fatalf("host %d: inconsistent forwarding state after %s:\n%s", h.k, within, inconsistent)
	}
	c.t.Fatalf("host %d routes %v after %s, want %v", h.k, got, within, want)
	return 0
}

func vxlanRx(t *testing.T, h *boHost) uint64 {
	t.Helper()
	l, err := nettest.Handle(t, h.ns.NetNS).LinkByName(boVXLAN)
	if err != nil {
		t.Fatal(err)
	}
	return l.Attrs().Statistics.RxPackets
}

// TestPrivilegedOverlayThreeHosts runs three namespace hosts on a private
// underlay with a three-member etcd cluster (Debian's etcd-server), an
// agent and a container on each: containers reach each other over VXLAN,
// a dead host's routes are withdrawn when its lease expires, a claim of a
// taken subnet is refused, a restarted agent takes its subnet back, and a
// revoked lease is reclaimed.
func TestPrivilegedOverlayThreeHosts(t *testing.T) {
	nettest.Privileged(t)
	etcdBin, err := exec.LookPath("etcd")
	if err != nil {
		t.Skip("etcd is not installed (Debian: apt-get install etcd-server); the overlay test runs a 3-member etcd cluster")
	}
	if _, err := exec.LookPath("nsenter"); err != nil {
		t.Skip("nsenter is not installed (util-linux)")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	c := &boCluster{t: t, self: self, dir: t.TempDir()}
	t.Cleanup(func() {
		if t.Failed() {
			c.dumpLogs()
		}
	})

	// Underlay: one switch namespace with a bridge, three hosts on it.
	sw := nettest.NewNS(t, "bou")
	hsw := nettest.Handle(t, sw.NetNS)
	attrs := netlink.NewLinkAttrs()
	attrs.Name = "boubr"
	if err := hsw.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil {
		t.Fatal(err)
	}
	br, _ := hsw.LinkByName("boubr")
	if err := hsw.LinkSetUp(br); err != nil {
		t.Fatal(err)
	}
	for k := 1; k <= 3; k++ {
		h := &boHost{k: k, ip: netip.AddrFrom4([4]byte{198, 18, 0, byte(k)}), stateDir: filepath.Join(c.dir, fmt.Sprintf("state-h%d", k))}
		h.ns = nettest.NewNS(t, fmt.Sprintf("boh%d", k))
		h.ctr = nettest.NewNS(t, fmt.Sprintf("boc%d", k))
		nettest.Connect(t, h.ns, "boeth", netip.PrefixFrom(h.ip, 24), sw, fmt.Sprintf("bou%d", k), netip.Prefix{})
		port, err := hsw.LinkByName(fmt.Sprintf("bou%d", k))
		if err != nil {
			t.Fatal(err)
		}
		if err := hsw.LinkSetMaster(port, br); err != nil {
			t.Fatal(err)
		}
		c.hosts = append(c.hosts, h)
	}

	// etcd: one member per host, listening on its underlay address only.
	var cluster []string
	for _, h := range c.hosts {
		cluster = append(cluster, fmt.Sprintf("bo-n%d=http://%s:2380", h.k, h.ip))
	}
	for _, h := range c.hosts {
		c.proc(h, fmt.Sprintf("etcd-h%d.log", h.k), nil, etcdBin,
			"--name", fmt.Sprintf("bo-n%d", h.k), "--data-dir", t.TempDir(),
			"--listen-peer-urls", fmt.Sprintf("http://%s:2380", h.ip), "--initial-advertise-peer-urls", fmt.Sprintf("http://%s:2380", h.ip),
			"--listen-client-urls", fmt.Sprintf("http://%s:2379", h.ip), "--advertise-client-urls", fmt.Sprintf("http://%s:2379", h.ip),
			"--initial-cluster", strings.Join(cluster, ","), "--initial-cluster-state", "new", "--initial-cluster-token", "bo-overlay-test")
	}
	// The test's own client dials from inside host 1's namespace.
	h1 := c.hosts[0]
	c.cli, err = clientv3.New(clientv3.Config{
		Endpoints:   strings.Split(c.endpoints(), ","),
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			var conn net.Conn
			err := h1.ns.Do(func() error {
				var d net.Dialer
				var err error
				conn, err = d.DialContext(ctx, "tcp", addr)
				return err
			})
			return conn, err
		})},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.cli.Close() })
	ready := false
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err = c.cli.Put(ctx, "/bo-health", "ok")
		cancel()
		if err == nil {
			ready = true
			break
		}
	}
	if !ready {
		c.dumpLogs()
		t.Fatalf("etcd cluster not ready: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	st, err := c.cli.Status(ctx, strings.Split(c.endpoints(), ",")[0])
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("etcd %s cluster up after %s", st.Version, time.Since(began).Round(time.Millisecond))

	// Agents and one container per host.
	for _, h := range c.hosts {
		c.startAgent(h)
	}
	subnets := map[int]netip.Prefix{}
	seen := map[netip.Prefix]bool{}
	for _, h := range c.hosts {
		hs := c.waitState(h)
		if seen[hs.Subnet] {
			t.Fatalf("two hosts hold subnet %s", hs.Subnet)
		}
		seen[hs.Subnet] = true
		subnets[h.k] = hs.Subnet
		if hs.MTU != 1450 {
			t.Errorf("host %d: overlay MTU %d, want 1450 (1500 underlay less 50)", h.k, hs.MTU)
		}
	}
	t.Logf("subnets: %v", subnets)
	others := func(k int, dead ...int) []netip.Prefix {
		var out []netip.Prefix
	next:
		for j := 1; j <= 3; j++ {
			for _, d := range dead {
				if j == d {
					continue next
				}
			}
			if j != k {
				out = append(out, subnets[j])
			}
		}
		return out
	}
	for _, h := range c.hosts {
		c.waitRoutes(h, others(h.k), 10*time.Second)
	}
	for _, h := range c.hosts {
		addStart := time.Now()
		out, err := c.cni(h, "ADD", fmt.Sprintf("boctr%d", h.k), h.ctr.Path(), c.conf(h))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("host %d: ADD (nsenter + plugin) took %s", h.k, time.Since(addStart).Round(100*time.Microsecond))
		res, err := current.NewResult(out)
		if err != nil {
			t.Fatalf("decode ADD result %s: %v", out, err)
		}
		r := res.(*current.Result)
		if len(r.IPs) != 1 || r.CNIVersion != "1.1.0" {
			t.Fatalf("ADD result: %s", out)
		}
		h.ctrIP, _ = netip.AddrFromSlice(r.IPs[0].Address.IP.To4())
		h.result = out
		if !subnets[h.k].Contains(h.ctrIP) || h.ctrIP == lease.Gateway(subnets[h.k]) {
			t.Fatalf("host %d container got %s, not a container address of its subnet %s", h.k, h.ctrIP, subnets[h.k])
		}
	}

	// Containers on different hosts reach each other, over VXLAN.
	for _, h := range c.hosts {
		l := nettest.Listen(t, h.ctr, "tcp", net.JoinHostPort(h.ctrIP.String(), "8080"))
		nettest.ServeBanner(l, fmt.Sprintf("boc%d", h.k))
	}
	for _, a := range c.hosts {
		for _, b := range c.hosts {
			if a == b {
				continue
			}
			rx := vxlanRx(t, b)
			got, err := nettest.Fetch(a.ctr, "tcp", net.JoinHostPort(b.ctrIP.String(), "8080"))
			if err != nil || got != fmt.Sprintf("boc%d", b.k) {
				t.Fatalf("container %d -> container %d (%s): %q, %v", a.k, b.k, b.ctrIP, got, err)
			}
			if after := vxlanRx(t, b); after <= rx {
				t.Errorf("container %d -> %d: host %d's VXLAN device received nothing (%d -> %d packets)", a.k, b.k, b.k, rx, after)
			}
		}
	}

	t.Run("verbs", func(t *testing.T) {
		// CHECK with the ADD result as prevResult, STATUS while the agent runs.
		conf := c.conf(h1)
		var prev map[string]any
		_ = json.Unmarshal(h1.result, &prev)
		conf["prevResult"] = prev
		if _, err := c.cni(h1, "CHECK", "boctr1", h1.ctr.Path(), conf); err != nil {
			t.Error(err)
		}
		if _, err := c.cni(h1, "STATUS", "", "", c.conf(h1)); err != nil {
			t.Error(err)
		}
		// An attachment the runtime forgot: GC with the valid list reclaims
		// its address and veth, and keeps the valid one.
		extra := nettest.NewNS(t, "boc1x")
		if _, err := c.cni(h1, "ADD", "boctr1x", extra.Path(), c.conf(h1)); err != nil {
			t.Fatal(err)
		}
		// A host veth left on the bridge by a crash, and a link that is
		// not the plugin's: GC removes the first only.
		hh := nettest.Handle(t, h1.ns.NetNS)
		bridge, err := hh.LinkByName(boBridge)
		if err != nil {
			t.Fatal(err)
		}
		for name, peer := range map[string]string{"veth0123456789a": "bostrayp", "bokeep": "bokeepp"} {
			attrs := netlink.NewLinkAttrs()
			attrs.Name = name
			attrs.MasterIndex = bridge.Attrs().Index
			if err := hh.LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: peer}); err != nil {
				t.Fatal(err)
			}
		}
		gc := c.conf(h1)
		gc["cni.dev/valid-attachments"] = []map[string]string{{"containerID": "boctr1", "ifname": "eth0"}}
		if _, err := c.cni(h1, "GC", "", "", gc); err != nil {
			t.Fatal(err)
		}
		alloc, _ := ipam.New(agent.IPAMPath(h1.stateDir, boNet))
		leases, err := alloc.Dump()
		if err != nil || len(leases) != 1 || leases[0].ContainerID != "boctr1/eth0" {
			t.Errorf("after GC: leases %+v, %v; want only boctr1/eth0", leases, err)
		}
		if _, err := nettest.Handle(t, h1.ns.NetNS).LinkByName(berthnet.HostVethName("boctr1x", "eth0", boNet)); err == nil {
			t.Error("GC left the forgotten attachment's veth")
		}
		if _, err := hh.LinkByName("veth0123456789a"); err == nil {
			t.Error("GC left a stray host veth on the bridge")
		}
		if _, err := hh.LinkByName("bokeep"); err != nil {
			t.Errorf("GC removed a link that is not the plugin's: %v", err)
		}
		if _, err := hh.LinkByName(berthnet.HostVethName("boctr1", "eth0", boNet)); err != nil {
			t.Errorf("GC removed the valid attachment's veth: %v", err)
		}
		if l := nettest.Links(t, extra); len(l) != 1 {
			t.Errorf("GC left links in the forgotten container: %v", l)
		}
		// DEL of something never added, twice: fine.
		for range 2 {
			if _, err := c.cni(h1, "DEL", "bonever", "", c.conf(h1)); err != nil {
				t.Error(err)
			}
		}
	})

	t.Run("host death withdraws its routes", func(t *testing.T) {
		h3 := c.hosts[2]
		if err := h3.agent.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = h3.agent.Wait()
		took := c.waitRoutes(c.hosts[0], others(1, 3), boTTL+10*time.Second)
		c.waitRoutes(c.hosts[1], others(2, 3), 5*time.Second)
		t.Logf("routes to host 3's %s withdrawn %s after its agent was killed (lease TTL %s)", subnets[3], took.Round(time.Millisecond), boTTL)
		if _, err := nettest.FetchWithin(c.hosts[0].ctr, "tcp", net.JoinHostPort(h3.ctrIP.String(), "8080"), time.Second); err == nil {
			t.Error("container 1 still reaches container 3 after host 3's routes were withdrawn")
		}
		// The plugin on host 3 reports the agent gone (CNI code 50).
		out, err := c.cni(h3, "STATUS", "", "", c.conf(h3))
		var e types.Error
		if err == nil || json.Unmarshal(out, &e) != nil || e.Code != types.ErrPluginNotAvailable {
			t.Errorf("STATUS without agent: %s, %v; want code 50", out, err)
		}
	})

	t.Run("second claim of a taken subnet is refused", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		reg, err := agent.NewRegistry(c.cli, "/berth/overlay/"+boNet)
		if err != nil {
			t.Fatal(err)
		}
		key := lease.Key(reg.Prefix(), subnets[1])
		before, err := c.cli.Get(ctx, key)
		if err != nil || len(before.Kvs) != 1 {
			t.Fatalf("host 1's lease: %v %v", before, err)
		}
		g, err := c.cli.Grant(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		defer c.cli.Revoke(context.Background(), g.ID)
		cfg := lease.Config{Network: netip.MustParsePrefix(boRange), SubnetLen: 24, VNI: boVNI, Port: 4789}
		intruder := lease.Lease{PublicIP: netip.MustParseAddr("198.18.0.99"), BackendData: lease.BackendData{VNI: boVNI, VtepMAC: "0a:4e:c6:12:00:63"}}
		if _, _, err := reg.Claim(ctx, cfg, intruder, subnets[1], g.ID); !errors.Is(err, lease.ErrTaken) {
			t.Fatalf("claim of host 1's subnet = %v, want ErrTaken", err)
		}
		after, err := c.cli.Get(ctx, key)
		if err != nil || len(after.Kvs) != 1 || after.Kvs[0].ModRevision != before.Kvs[0].ModRevision {
			t.Fatalf("host 1's lease changed by a refused claim: %v", after.Kvs)
		}
		// A host with another idea of the network is refused.
		other := cfg
		other.VNI = boVNI + 1
		if err := reg.EnsureConfig(ctx, other); !errors.Is(err, agent.ErrConfigMismatch) {
			t.Errorf("EnsureConfig with VNI %d = %v, want agent.ErrConfigMismatch", other.VNI, err)
		}
		if err := reg.EnsureConfig(ctx, cfg); err != nil {
			t.Errorf("EnsureConfig with the agents' configuration: %v", err)
		}
		// An agent started on host 3 asking for host 1's subnet stops with
		// an error (host 3's own agent is dead, so its lock is free).
		h3 := c.hosts[2]
		bad := *h3
		bad.stateDir = filepath.Join(c.dir, "state-h3-intruder")
		cmd := c.proc(&bad, "agent-intruder.log", []string{"BO_OVERLAY_EXEC=1"}, c.self, c.agentArgs(&bad, "--subnet", subnets[1].String(), "--public-ip", "198.18.0.3")...)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			log, _ := os.ReadFile(c.logs[len(c.logs)-1])
			if err == nil || !strings.Contains(string(log), "leased by another host") {
				t.Errorf("intruding agent: %v, log:\n%s", err, log)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("intruding agent did not give up")
		}
	})

	t.Run("concurrent claims: first writer wins", func(t *testing.T) {
		// Twelve hosts claim at once in a small range (a /20 split in /24s:
		// 15 usable): each gets its own subnet. Then eight claim one subnet
		// at once: exactly one wins.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		reg, err := agent.NewRegistry(c.cli, "/bo-race")
		if err != nil {
			t.Fatal(err)
		}
		defer c.cli.Delete(context.Background(), "/bo-race", clientv3.WithPrefix())
		g, err := c.cli.Grant(ctx, 30)
		if err != nil {
			t.Fatal(err)
		}
		defer c.cli.Revoke(context.Background(), g.ID)
		cfg := lease.Config{Network: netip.MustParsePrefix("198.19.240.0/20"), SubnetLen: 24, VNI: 9, Port: 4789}
		me := func(i int) lease.Lease {
			return lease.Lease{PublicIP: netip.AddrFrom4([4]byte{198, 18, 1, byte(i)}), BackendData: lease.BackendData{VNI: 9, VtepMAC: fmt.Sprintf("0a:09:c6:12:01:%02x", i)}}
		}
		type res struct {
			s   netip.Prefix
			err error
		}
		run := func(n int, want netip.Prefix, off int) []res {
			out := make([]res, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					l, _, err := reg.Claim(ctx, cfg, me(off+i), want, g.ID)
					out[i] = res{l.Subnet, err}
				}()
			}
			wg.Wait()
			return out
		}
		got := map[netip.Prefix]int{}
		for i, r := range run(12, netip.Prefix{}, 1) {
			if r.err != nil {
				t.Fatalf("claimer %d: %v", i, r.err)
			}
			got[r.s]++
		}
		if len(got) != 12 {
			t.Fatalf("12 concurrent claims got %d distinct subnets: %v", len(got), got)
		}
		leases, _, _, err := reg.List(ctx)
		if err != nil || len(leases) != 12 {
			t.Fatalf("list after claims: %d leases, %v", len(leases), err)
		}
		want := netip.MustParsePrefix("198.19.254.0/24")
		cfg.Network = netip.MustParsePrefix("198.19.254.0/23")
		wins, taken := 0, 0
		for _, r := range run(8, want, 100) {
			switch {
			case r.err == nil:
				wins++
			case errors.Is(r.err, lease.ErrTaken):
				taken++
			default:
				t.Errorf("claim: %v", r.err)
			}
		}
		if wins != 1 || taken != 7 {
			t.Fatalf("8 claims of one subnet: %d won, %d refused; want 1 and 7", wins, taken)
		}
	})

	t.Run("restarted agent takes its subnet back", func(t *testing.T) {
		h3 := c.hosts[2]
		c.startAgent(h3)
		if hs := c.waitState(h3); hs.Subnet != subnets[3] {
			t.Fatalf("restarted agent claimed %s, want its old %s", hs.Subnet, subnets[3])
		}
		c.waitRoutes(c.hosts[0], others(1), 10*time.Second)
		c.waitRoutes(h3, others(3), 10*time.Second)
		got, err := nettest.Fetch(c.hosts[0].ctr, "tcp", net.JoinHostPort(h3.ctrIP.String(), "8080"))
		if err != nil || got != "boc3" {
			t.Fatalf("container 1 -> 3 after restart: %q, %v", got, err)
		}
		// Killed and restarted at once, without its state file: the key
		// still carries host 3's address, so the new agent takes it over
		// under a new etcd lease before the old one expires.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		key := lease.Key("/berth/overlay/"+boNet, subnets[3])
		before, err := c.cli.Get(ctx, key)
		if err != nil || len(before.Kvs) != 1 {
			t.Fatalf("host 3's lease: %v", err)
		}
		_ = h3.agent.Process.Kill()
		_ = h3.agent.Wait()
		if err := os.Remove(agent.StatePath(h3.stateDir, boNet)); err != nil {
			t.Fatal(err)
		}
		c.startAgent(h3)
		if hs := c.waitState(h3); hs.Subnet != subnets[3] {
			t.Fatalf("agent restarted without state claimed %s, want %s", hs.Subnet, subnets[3])
		}
		after, err := c.cli.Get(ctx, key)
		if err != nil || len(after.Kvs) != 1 || after.Kvs[0].Lease == before.Kvs[0].Lease || after.Kvs[0].CreateRevision != before.Kvs[0].CreateRevision {
			t.Fatalf("takeover: key %v before, %v after; want the same key under a new lease", before.Kvs, after.Kvs)
		}
	})

	t.Run("revoked lease is reclaimed", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		key := lease.Key("/berth/overlay/"+boNet, subnets[2])
		cur, err := c.cli.Get(ctx, key)
		if err != nil || len(cur.Kvs) != 1 {
			t.Fatalf("host 2's lease: %v", err)
		}
		wch := c.cli.Watch(ctx, key, clientv3.WithRev(cur.Header.Revision+1))
		old := clientv3.LeaseID(cur.Kvs[0].Lease)
		if _, err := c.cli.Revoke(ctx, old); err != nil {
			t.Fatal(err)
		}
		var events []string
		for len(events) < 2 {
			select {
			case wr := <-wch:
				for _, ev := range wr.Events {
					events = append(events, fmt.Sprintf("%s lease=%x", ev.Type, ev.Kv.Lease))
				}
			case <-ctx.Done():
				t.Fatalf("host 2 did not reclaim its subnet: events %v", events)
			}
		}
		if !strings.HasPrefix(events[0], "DELETE") || !strings.HasPrefix(events[1], "PUT") || strings.HasSuffix(events[1], fmt.Sprintf("=%x", int64(old))) {
			t.Fatalf("events after revoke: %v; want DELETE then PUT under a new lease", events)
		}
		c.waitRoutes(c.hosts[0], others(1), 10*time.Second)
		got, err := nettest.Fetch(c.hosts[0].ctr, "tcp", net.JoinHostPort(c.hosts[1].ctrIP.String(), "8080"))
		if err != nil || got != "boc2" {
			t.Fatalf("container 1 -> 2 after the revoke: %q, %v", got, err)
		}
	})

	// DEL removes the attachments: no veth, no address left.
	for _, h := range c.hosts {
		delStart := time.Now()
		if _, err := c.cni(h, "DEL", fmt.Sprintf("boctr%d", h.k), h.ctr.Path(), c.conf(h)); err != nil {
			t.Error(err)
		}
		t.Logf("host %d: DEL (nsenter + plugin) took %s", h.k, time.Since(delStart).Round(100*time.Microsecond))
		if l := nettest.Links(t, h.ctr); len(l) != 1 {
			t.Errorf("host %d container still has links %v after DEL", h.k, l)
		}
		alloc, _ := ipam.New(agent.IPAMPath(h.stateDir, boNet))
		if leases, _ := alloc.Dump(); len(leases) != 0 {
			t.Errorf("host %d: addresses left after DEL: %+v", h.k, leases)
		}
	}
	// SIGTERM stops an agent cleanly (exit 0) and, without
	// --release-on-exit, leaves its lease to expire.
	if err := h1.agent.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- h1.agent.Wait() }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("agent 1 after SIGINT: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("agent 1 did not stop on SIGINT")
	}
	t.Logf("whole test: %s", time.Since(began).Round(time.Millisecond))
}

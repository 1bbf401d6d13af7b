package cni_test

import (
	"context"
	"errors"
	"fmt"
	"net"
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

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/google/nftables"
	"github.com/miekg/dns"
	"github.com/vishvananda/netlink"

	"github.com/berthnet/berth/internal/compat/cni"
	"github.com/berthnet/berth/internal/dhcpproxy"
	"github.com/berthnet/berth/internal/dhcpproxy/dhcpproxytest"
	"github.com/berthnet/berth/internal/ipam"
	"github.com/berthnet/berth/internal/link"
	"github.com/berthnet/berth/internal/netns"
	"github.com/berthnet/berth/internal/nettest"
)

// referenceDir holds Debian's reference plugins (containernetworking-plugins).
const referenceDir = "/usr/lib/cni"

var (
	buildOnce sync.Once
	pluginDir string
	buildErr  error
)

// plugins builds bin/berth-cni once per test binary and links it under
// every plugin name; it returns the directory.
func plugins(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "bc-plugins-")
		if err != nil {
			buildErr = err
			return
		}
		pluginDir = dir
		bin := filepath.Join(dir, "berth-cni")
		out, err := exec.Command("go", "build", "-o", bin, "github.com/berthnet/berth/cmd/berth-cni").CombinedOutput()
		if err != nil {
			buildErr = errors.New(string(out))
			return
		}
		for name, pkg := range map[string]string{"aardvark-dns": "cmd/aardvark-dns", cni.DHCPBinary: "cmd/berth-cni-dhcp"} {
			if out, err := exec.Command("go", "build", "-o", filepath.Join(dir, name), "github.com/berthnet/berth/"+pkg).CombinedOutput(); err != nil {
				buildErr = errors.New(string(out))
				return
			}
		}
		for _, p := range cni.Plugins {
			if err := os.Link(bin, filepath.Join(dir, p)); err != nil {
				buildErr = err
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatalf("build berth-cni: %v", buildErr)
	}
	return pluginDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if pluginDir != "" {
		os.RemoveAll(pluginDir)
	}
	os.Exit(code)
}

// rig is a "host" namespace (where the plugins run, with bridge and
// firewall), an "outside" namespace linked to it by a veth
// (198.19.200.1 host, .2 outside), and libcni with a private cache.
type rig struct {
	t        *testing.T
	host     *nettest.NS
	outside  *nettest.NS
	cni      *libcni.CNIConfig
	state    string
	cacheDir string
}

func newRig(t *testing.T) *rig {
	nettest.Privileged(t)
	dir := plugins(t)
	r := &rig{t: t, state: t.TempDir(), cacheDir: t.TempDir()}
	r.host = nettest.NewNS(t, nettest.RandName("bch"))
	r.outside = nettest.NewNS(t, nettest.RandName("bco"))
	nettest.Connect(t, r.host, "bc-ho", netip.MustParsePrefix("198.19.200.1/24"), r.outside, "bc-oh", netip.MustParsePrefix("198.19.200.2/24"))
	r.cni = libcni.NewCNIConfigWithCacheDir([]string{dir, referenceDir}, r.cacheDir, nil)
	return r
}

// container makes a namespace for one container; it is removed with the
// test unless gone() removes it first.
type container struct {
	id   string
	path string
	ns   *netns.NetNS
}

func (r *rig) container(id string) *container {
	r.t.Helper()
	p := filepath.Join(r.t.TempDir(), nettest.RandName("bcc"))
	ns, err := netns.NewPinned(p)
	if err != nil {
		r.t.Fatal(err)
	}
	c := &container{id: id, path: p, ns: ns}
	r.t.Cleanup(func() { c.gone() })
	return c
}

// gone removes the container's namespace (a container that died).
func (c *container) gone() {
	if c.ns != nil {
		c.ns.Close()
		_ = netns.Unpin(c.path)
		c.ns = nil
	}
}

func (c *container) nettestNS() *nettest.NS { return &nettest.NS{NetNS: c.ns, Name: c.id} }

func (r *rig) rt(c *container, ports ...map[string]any) *libcni.RuntimeConf {
	rt := &libcni.RuntimeConf{ContainerID: c.id, NetNS: c.path, IfName: "eth0"}
	if len(ports) > 0 {
		rt.CapabilityArgs = map[string]any{"portMappings": ports}
	}
	return rt
}

// in runs fn in the host namespace, so the plugins libcni starts run there.
func (r *rig) in(fn func() error) error { return r.host.Do(fn) }

func (r *rig) add(list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) (*current.Result, error) {
	var res types.Result
	err := r.in(func() (err error) {
		res, err = r.cni.AddNetworkList(context.Background(), list, rt)
		return err
	})
	if err != nil {
		return nil, err
	}
	return current.NewResultFromResult(res)
}

func (r *rig) del(list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) error {
	return r.in(func() error { return r.cni.DelNetworkList(context.Background(), list, rt) })
}

func (r *rig) check(list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) error {
	return r.in(func() error { return r.cni.CheckNetworkList(context.Background(), list, rt) })
}

func (r *rig) conflist(s string) *libcni.NetworkConfigList {
	r.t.Helper()
	s = strings.ReplaceAll(s, "STATE", r.state)
	l, err := libcni.ConfListFromBytes([]byte(s))
	if err != nil {
		r.t.Fatalf("conflist: %v\n%s", err, s)
	}
	return l
}

// berthChain is berth-bridge (berth-ipam) + berth-portmap.
const berthChain = `{
  "cniVersion": "1.1.0", "name": "bcnet",
  "plugins": [
    {"type": "berth-bridge", "bridge": "bc-br0", "stateDir": "STATE", "isGateway": true, "ipMasq": true,
     "ipam": {"type": "berth-ipam", "dataDir": "STATE",
              "ranges": [[{"subnet": "198.18.10.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "berth-portmap", "stateDir": "STATE", "capabilities": {"portMappings": true}}
  ]}`

// berthBridgeOnly is berth-bridge alone, publishing ports itself through
// the portMappings capability (one process per ADD and DEL).
const berthBridgeOnly = `{
  "cniVersion": "1.1.0", "name": "bcnet",
  "plugins": [
    {"type": "berth-bridge", "bridge": "bc-br0", "stateDir": "STATE", "isGateway": true, "ipMasq": true,
     "capabilities": {"portMappings": true},
     "ipam": {"type": "berth-ipam", "dataDir": "STATE",
              "ranges": [[{"subnet": "198.18.10.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}}
  ]}`

var port8080 = map[string]any{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}

func (r *rig) hasLink(ns *nettest.NS, name string) bool {
	h, err := link.NewHandle(ns.NetNS)
	if err != nil {
		r.t.Fatal(err)
	}
	defer h.Close()
	_, err = h.ByName(name)
	return err == nil
}

// berthTable reports whether berth's nftables table exists in the host.
func (r *rig) berthTable() bool {
	c, err := nftables.New(nftables.WithNetNSFd(r.host.Fd()))
	if err != nil {
		r.t.Fatal(err)
	}
	_, err = c.ListTableOfFamily("berth", nftables.TableFamilyINet)
	return err == nil
}

func (r *rig) leases() []ipam.Lease {
	a, err := ipam.New(filepath.Join(r.state, "ipam.db"))
	if err != nil {
		r.t.Fatal(err)
	}
	ls, err := a.Dump()
	if err != nil {
		r.t.Fatal(err)
	}
	return ls
}

// serve runs a banner server on port 80 in the container.
func serve(t *testing.T, c *container, banner string) {
	l := nettest.Listen(t, c.nettestNS(), "tcp", ":80")
	nettest.ServeBanner(l, banner)
}

func TestPrivilegedBerthChainVerbs(t *testing.T) {
	for _, tc := range []struct{ name, conf string }{{"bridge+portmap", berthChain}, {"bridge alone", berthBridgeOnly}} {
		t.Run(tc.name, func(t *testing.T) { testChainVerbs(t, tc.conf) })
	}
}

// retiredLinks lists the links DEL retired (package reaper) that are still
// in the namespace.
func (r *rig) retiredLinks(ns *nettest.NS) []string {
	h := nettest.Handle(r.t, ns.NetNS)
	ls, err := h.LinkList()
	if err != nil {
		r.t.Fatal(err)
	}
	var out []string
	for _, l := range ls {
		if strings.HasPrefix(l.Attrs().Name, "brtgone") {
			out = append(out, l.Attrs().Name)
		}
	}
	return out
}

// waitNoRetired fails unless the retired links of the namespaces are gone
// within a few seconds: the reaper DEL started deletes them.
func (r *rig) waitNoRetired(nss ...*nettest.NS) {
	r.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var left []string
		for _, ns := range nss {
			left = append(left, r.retiredLinks(ns)...)
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("retired links still there after 5 s: %v", left)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func testChainVerbs(t *testing.T, conf string) {
	r := newRig(t)
	list := r.conflist(conf)
	c := r.container("bc-ctr1")
	rt := r.rt(c, port8080)

	res, err := r.add(list, rt)
	if err != nil {
		t.Fatalf("ADD: %v", err)
	}
	if len(res.Interfaces) != 3 || res.Interfaces[0].Name != "bc-br0" || res.Interfaces[2].Name != "eth0" || res.Interfaces[2].Sandbox != c.path {
		t.Fatalf("interfaces: %v", res.Interfaces)
	}
	if len(res.IPs) != 1 || res.IPs[0].Address.String() != "198.18.10.2/24" || res.IPs[0].Gateway.String() != "198.18.10.1" || *res.IPs[0].Interface != 2 {
		t.Fatalf("ips: %v", res.IPs)
	}
	if res.Interfaces[1].Mac == "" || res.Interfaces[2].Mac == "" {
		t.Errorf("interface MACs missing: %v", res.Interfaces)
	}
	if err := r.check(list, rt); err != nil {
		t.Fatalf("CHECK: %v", err)
	}
	if err := r.in(func() error { return r.cni.GetStatusNetworkList(context.Background(), list) }); err != nil {
		t.Fatalf("STATUS: %v", err)
	}

	serve(t, c, "hello-bc")
	if got, err := nettest.Fetch(r.outside, "tcp", "198.19.200.1:8080"); err != nil || got != "hello-bc" {
		t.Fatalf("published port from outside: %q, %v", got, err)
	}
	if got, err := nettest.Fetch(r.host, "tcp", "127.0.0.1:8080"); err != nil || got != "hello-bc" {
		t.Fatalf("published port through 127.0.0.1: %q, %v", got, err)
	}
	if got, err := nettest.Fetch(c.nettestNS(), "tcp", "198.19.200.1:8080"); err != nil || got != "hello-bc" {
		t.Fatalf("hairpin to own published port: %q, %v", got, err)
	}
	// Egress is masqueraded: the outside sees the host's address.
	ol := nettest.Listen(t, r.outside, "tcp", "198.19.200.2:9000")
	peers := nettest.ServeBanner(ol, "x")
	if _, err := nettest.Fetch(c.nettestNS(), "tcp", "198.19.200.2:9000"); err != nil {
		t.Fatalf("egress: %v", err)
	}
	if p := <-peers; !strings.HasPrefix(p, "198.19.200.1:") {
		t.Errorf("egress source %s, want the host's 198.19.200.1 (masquerade)", p)
	}

	// A broken attachment fails CHECK.
	ch := nettest.Handle(t, c.ns)
	eth0, _ := ch.ByName("eth0")
	addrs, _ := ch.AddrList(eth0, 0)
	for _, a := range addrs {
		_ = ch.AddrDel(eth0, &a)
	}
	if err := r.check(list, rt); err == nil {
		t.Error("CHECK passed with the container's address removed")
	} else if !strings.Contains(err.Error(), "198.18.10.2") {
		t.Errorf("CHECK error does not name the missing address: %v", err)
	}

	if err := r.del(list, rt); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	// DEL frees the names at once (the links are down, renamed and off
	// the bridge); a reaper deletes them within moments.
	if r.hasLink(c.nettestNS(), "eth0") || r.hasLink(r.host, res.Interfaces[1].Name) {
		t.Error("links left after DEL")
	}
	r.waitNoRetired(c.nettestNS(), r.host)
	if ls := r.leases(); len(ls) != 0 {
		t.Errorf("addresses left after DEL: %v", ls)
	}
	if err := r.del(list, rt); err != nil {
		t.Fatalf("second DEL: %v", err)
	}
	if _, err := nettest.FetchWithin(r.outside, "tcp", "198.19.200.1:8080", 300*time.Millisecond); err == nil {
		t.Error("published port still answers after DEL")
	}
	// As with the reference bridge, the bridge stays for the next
	// container; GC with no valid attachment removes it and its rules.
	if !r.hasLink(r.host, "bc-br0") {
		t.Error("bridge removed by DEL")
	}
	r.gcAll(list)
	if r.hasLink(r.host, "bc-br0") || r.berthTable() {
		t.Error("bridge or nftables table left after GC")
	}
}

func (r *rig) gcAll(list *libcni.NetworkConfigList) {
	r.t.Helper()
	if err := r.in(func() error { return r.cni.GCNetworkList(context.Background(), list, &libcni.GCArgs{}) }); err != nil {
		r.t.Fatalf("GC: %v", err)
	}
}

func TestPrivilegedDelAfterNetnsGone(t *testing.T) {
	r := newRig(t)
	list := r.conflist(berthChain)
	c := r.container("bc-ctr2")
	rt := r.rt(c, port8080)
	res, err := r.add(list, rt)
	if err != nil {
		t.Fatalf("ADD: %v", err)
	}
	veth := res.Interfaces[1].Name
	c.gone()
	// The kernel destroys the namespace (and the veth with it)
	// asynchronously; DEL must succeed whether or not that happened yet.
	if err := r.del(list, rt); err != nil {
		t.Fatalf("DEL after the namespace vanished: %v", err)
	}
	if r.hasLink(r.host, veth) {
		t.Errorf("host veth %s left", veth)
	}
	r.waitNoRetired(r.host)
	if _, err := nettest.FetchWithin(r.outside, "tcp", "198.19.200.1:8080", 300*time.Millisecond); err == nil {
		t.Error("published port left")
	}
	if ls := r.leases(); len(ls) != 0 {
		t.Errorf("addresses left: %v", ls)
	}
	if err := r.del(list, rt); err != nil {
		t.Fatalf("second DEL: %v", err)
	}
	r.gcAll(list)
	if r.berthTable() || r.hasLink(r.host, "bc-br0") {
		t.Error("residue after GC")
	}
}

func TestPrivilegedGCAfterCrash(t *testing.T) {
	r := newRig(t)
	list := r.conflist(berthChain)
	a, b := r.container("bc-ctra"), r.container("bc-ctrb")
	ra, rb := r.rt(a, port8080), r.rt(b, map[string]any{"hostPort": 8081, "containerPort": 80, "protocol": "tcp"})
	resA, err := r.add(list, ra)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.add(list, rb); err != nil {
		t.Fatal(err)
	}
	vethA := resA.Interfaces[1].Name
	// A plugin killed after creating a veth and before recording it left
	// one on the bridge; a link of someone else's stays.
	hh := nettest.Handle(t, r.host.NetNS)
	br, _ := hh.ByName("bc-br0")
	for i, name := range []string{"veth0123456789a", "bc-foreign", "brtgone7ffffff"} {
		attrs := netlink.NewLinkAttrs()
		attrs.Name, attrs.MasterIndex = name, br.Attrs().Index
		if err := hh.LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: fmt.Sprintf("bc-peer%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	// The runtime crashed: it lost its cache entry for A, and A's
	// namespace is gone. Only B is known to be valid.
	lost, _ := filepath.Glob(filepath.Join(r.cacheDir, "results", "*"+a.id+"*"))
	if len(lost) == 0 {
		t.Fatal("no libcni cache entry for A")
	}
	for _, f := range lost {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	a.gone()
	gc := &libcni.GCArgs{ValidAttachments: []types.GCAttachment{{ContainerID: b.id, IfName: "eth0"}}}
	if err := r.in(func() error { return r.cni.GCNetworkList(context.Background(), list, gc) }); err != nil {
		t.Fatalf("GC: %v", err)
	}
	if r.hasLink(r.host, vethA) {
		t.Errorf("GC left A's host veth %s", vethA)
	}
	if r.hasLink(r.host, "veth0123456789a") {
		t.Error("GC left the stray veth")
	}
	if r.hasLink(r.host, "brtgone7ffffff") {
		t.Error("GC left a retired link whose reaper did not run")
	}
	if !r.hasLink(r.host, "bc-foreign") {
		t.Error("GC removed a link berth did not make")
	}
	if l, err := hh.ByName("bc-foreign"); err == nil {
		_ = hh.Delete(l)
	}
	ls := r.leases()
	if len(ls) != 1 || ls[0].ContainerID != b.id+"/eth0" {
		t.Errorf("leases after GC: %v (want only B's)", ls)
	}
	serve(t, b, "b")
	if got, err := nettest.Fetch(r.outside, "tcp", "198.19.200.1:8081"); err != nil || got != "b" {
		t.Errorf("B's port after GC: %q, %v", got, err)
	}
	if _, err := nettest.FetchWithin(r.outside, "tcp", "198.19.200.1:8080", 300*time.Millisecond); err == nil {
		t.Error("A's published port survived GC")
	}
	if err := r.check(list, r.rt(b, map[string]any{"hostPort": 8081, "containerPort": 80, "protocol": "tcp"})); err != nil {
		t.Errorf("CHECK of B after GC: %v", err)
	}
	// GC with nothing valid reclaims everything: zero residue.
	if err := r.in(func() error { return r.cni.GCNetworkList(context.Background(), list, &libcni.GCArgs{}) }); err != nil {
		t.Fatalf("GC all: %v", err)
	}
	if r.hasLink(r.host, "bc-br0") || r.berthTable() || len(r.leases()) != 0 {
		t.Errorf("residue after GC of everything: bridge %v table %v leases %v", r.hasLink(r.host, "bc-br0"), r.berthTable(), r.leases())
	}
}

func needReference(t *testing.T, names ...string) {
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(referenceDir, n)); err != nil {
			t.Skipf("reference plugin %s not installed (apt-get install containernetworking-plugins)", n)
		}
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("the reference plugins need iptables")
	}
}

// The reference bridge and host-local, then berth-portmap.
func TestPrivilegedChainReferenceBridgeBerthPortmap(t *testing.T) {
	r := newRig(t)
	needReference(t, "bridge", "host-local")
	list := r.conflist(`{
  "cniVersion": "1.0.0", "name": "bcref",
  "plugins": [
    {"type": "bridge", "bridge": "bc-rbr0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "STATE/hl", "ranges": [[{"subnet": "198.18.20.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "berth-portmap", "stateDir": "STATE", "capabilities": {"portMappings": true}}
  ]}`)
	c := r.container("bc-ctr3")
	rt := r.rt(c, port8080)
	res, err := r.add(list, rt)
	if err != nil {
		t.Fatalf("ADD: %v", err)
	}
	if len(res.IPs) != 1 || !strings.HasPrefix(res.IPs[0].Address.String(), "198.18.20.") {
		t.Fatalf("result: %v", res)
	}
	serve(t, c, "ref")
	if got, err := nettest.Fetch(r.outside, "tcp", "198.19.200.1:8080"); err != nil || got != "ref" {
		t.Fatalf("berth-portmap on the reference bridge: %q, %v", got, err)
	}
	if got, err := nettest.Fetch(r.host, "tcp", "127.0.0.1:8080"); err != nil || got != "ref" {
		t.Fatalf("through 127.0.0.1: %q, %v", got, err)
	}
	// A berth network coming and going on the same host leaves berth's
	// table, and so these forwards, alone.
	berth := r.conflist(berthChain)
	other := r.container("bc-ctr3b")
	if _, err := r.add(berth, r.rt(other, map[string]any{"hostPort": 8082, "containerPort": 80, "protocol": "tcp"})); err != nil {
		t.Fatal(err)
	}
	if err := r.del(berth, r.rt(other)); err != nil {
		t.Fatal(err)
	}
	if got, err := nettest.Fetch(r.outside, "tcp", "198.19.200.1:8080"); err != nil || got != "ref" {
		t.Fatalf("after a berth network came and went: %q, %v", got, err)
	}
	// 1.0.0 list: CHECK runs (the reference bridge checks itself too).
	if err := r.check(list, rt); err != nil {
		t.Fatalf("CHECK: %v", err)
	}
	if err := r.del(list, rt); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	r.gcAll(berth) // the berth network's kept bridge
	if !r.berthTable() {
		t.Error("DEL removed berth-portmap's per-subnet rules (they stay until GC, like the reference portmap's chains)")
	}
	// The reference plugins 1.1.1 stop at spec 1.0.0, so GC reaches
	// berth-portmap through a 1.1.0 list of its own.
	r.gcAll(r.conflist(`{"cniVersion": "1.1.0", "name": "bcref",
	  "plugins": [{"type": "berth-portmap", "stateDir": "STATE", "capabilities": {"portMappings": true}}]}`))
	if r.berthTable() {
		t.Error("berth-portmap left its table after GC")
	}
	if _, err := nettest.FetchWithin(r.outside, "tcp", "198.19.200.1:8080", 300*time.Millisecond); err == nil {
		t.Error("port still published after DEL")
	}
}

// berth-bridge with the reference host-local, then the reference firewall
// and tuning plugins after it.
func TestPrivilegedChainBerthBridgeReferenceMeta(t *testing.T) {
	r := newRig(t)
	needReference(t, "host-local", "firewall", "tuning")
	list := r.conflist(`{
  "cniVersion": "1.0.0", "name": "bcmix",
  "plugins": [
    {"type": "berth-bridge", "bridge": "bc-br1", "stateDir": "STATE",
     "ipam": {"type": "host-local", "dataDir": "STATE/hl", "ranges": [[{"subnet": "198.18.30.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "firewall", "backend": "iptables"},
    {"type": "tuning", "sysctl": {"net.ipv4.conf.eth0.arp_filter": "1"}}
  ]}`)
	c := r.container("bc-ctr4")
	rt := r.rt(c)
	res, err := r.add(list, rt)
	if err != nil {
		t.Fatalf("ADD: %v", err)
	}
	if len(res.Interfaces) != 3 || len(res.IPs) != 1 {
		t.Fatalf("result: %+v", res)
	}
	out, err := nettest.Run(c.nettestNS(), 5*time.Second, "cat", "/proc/sys/net/ipv4/conf/eth0/arp_filter")
	if err != nil || strings.TrimSpace(out) != "1" {
		t.Errorf("tuning's sysctl in the container: %q %v", out, err)
	}
	if out, err := nettest.Run(r.host, 5*time.Second, "iptables", "-S", "CNI-FORWARD"); err != nil || !strings.Contains(out, "198.18.30.") {
		t.Errorf("firewall plugin's rules (from berth-bridge's result): %s %v", out, err)
	}
	serve(t, c, "mix")
	if got, err := nettest.Fetch(r.host, "tcp", res.IPs[0].Address.IP.String()+":80"); err != nil || got != "mix" {
		t.Errorf("host to container: %q %v", got, err)
	}
	if err := r.check(list, rt); err != nil {
		t.Fatalf("CHECK: %v", err)
	}
	if err := r.del(list, rt); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	if r.hasLink(r.host, res.Interfaces[1].Name) {
		t.Error("host veth left after DEL")
	}
	ents, _ := os.ReadDir(filepath.Join(r.state, "hl", "bcmix"))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "198.") {
			t.Errorf("host-local still holds %s (berth-bridge must delegate DEL)", e.Name())
		}
	}
}

// The chain's STATUS is 50 once the address range is full.
func TestPrivilegedIPAMStatusFull(t *testing.T) {
	r := newRig(t)
	list := r.conflist(`{
  "cniVersion": "1.1.0", "name": "bcsmall",
  "plugins": [
    {"type": "berth-bridge", "bridge": "bc-br2", "stateDir": "STATE",
     "ipam": {"type": "berth-ipam", "dataDir": "STATE", "ranges": [[{"subnet": "198.18.40.0/30"}]]}}
  ]}`)
	c := r.container("bc-ctr5")
	if _, err := r.add(list, r.rt(c)); err != nil {
		t.Fatal(err)
	}
	err := r.in(func() error { return r.cni.GetStatusNetworkList(context.Background(), list) })
	var e *types.Error
	if !errors.As(err, &e) || e.Code != types.ErrPluginNotAvailable {
		t.Fatalf("STATUS with a full range: %v, want code 50", err)
	}
	d := r.container("bc-ctr6")
	_, err = r.add(list, r.rt(d))
	if !errors.As(err, &e) || e.Code != cni.ErrAddressInUse {
		t.Fatalf("ADD into a full range: %v, want code %d", err, cni.ErrAddressInUse)
	}
	if r.hasLink(d.nettestNS(), "eth0") {
		t.Error("failed ADD left eth0")
	}
	if err := r.del(list, r.rt(d)); err != nil {
		t.Fatalf("DEL after failed ADD: %v", err)
	}
	if err := r.del(list, r.rt(c)); err != nil {
		t.Fatal(err)
	}
	r.gcAll(list)
	if r.berthTable() || r.hasLink(r.host, "bc-br2") || len(r.leases()) != 0 {
		t.Error("residue after GC")
	}
}

func TestPrivilegedMacvlan(t *testing.T) {
	r := newRig(t)
	// The host's link to the outside namespace is the macvlan parent
	// (this kernel has no dummy links).
	list := r.conflist(`{
  "cniVersion": "1.1.0", "name": "bcmv",
  "plugins": [
    {"type": "berth-macvlan", "master": "bc-ho", "mode": "bridge", "stateDir": "STATE",
     "ipam": {"type": "berth-ipam", "dataDir": "STATE", "ranges": [[{"subnet": "198.18.70.0/24", "gateway": "198.18.70.254"}]], "routes": [{"dst": "0.0.0.0/0"}]}}
  ]}`)
	a, b := r.container("bc-mva"), r.container("bc-mvb")
	resA, err := r.add(list, r.rt(a))
	if err != nil {
		t.Fatalf("ADD: %v", err)
	}
	if len(resA.Interfaces) != 1 || resA.Interfaces[0].Sandbox != a.path || resA.IPs[0].Address.String() != "198.18.70.1/24" {
		t.Fatalf("result: %+v %v", resA.Interfaces, resA.IPs)
	}
	resB, err := r.add(list, r.rt(b))
	if err != nil {
		t.Fatalf("ADD: %v", err)
	}
	serve(t, a, "mv")
	if got, err := nettest.Fetch(b.nettestNS(), "tcp", "198.18.70.1:80"); err != nil || got != "mv" {
		t.Fatalf("container to container over macvlan: %q %v (b is %v)", got, err, resB.IPs)
	}
	if err := r.check(list, r.rt(a)); err != nil {
		t.Fatalf("CHECK: %v", err)
	}
	if err := r.in(func() error { return r.cni.GetStatusNetworkList(context.Background(), list) }); err != nil {
		t.Fatalf("STATUS: %v", err)
	}
	if err := r.del(list, r.rt(a)); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	if r.hasLink(a.nettestNS(), "eth0") {
		t.Error("macvlan left after DEL")
	}
	b.gone()
	r.gcAll(list)
	if ls := r.leases(); len(ls) != 0 {
		t.Errorf("leases after GC: %v", ls)
	}
	// A missing master is invalid configuration, and STATUS says so.
	bad := r.conflist(`{"cniVersion": "1.1.0", "name": "bcmv2", "plugins": [{"type": "berth-macvlan", "master": "bc-nolink", "stateDir": "STATE",
	  "ipam": {"type": "berth-ipam", "dataDir": "STATE", "ranges": [[{"subnet": "198.18.71.0/24"}]]}}]}`)
	err = r.in(func() error { return r.cni.GetStatusNetworkList(context.Background(), bad) })
	var e *types.Error
	if !errors.As(err, &e) || e.Code != types.ErrPluginNotAvailable {
		t.Errorf("STATUS with a missing master: %v", err)
	}
	c := r.container("bc-mvc")
	if _, err := r.add(bad, r.rt(c)); !errors.As(err, &e) || e.Code != types.ErrInvalidNetworkConfig || !strings.Contains(e.Msg, "master") {
		t.Errorf("ADD with a missing master: %v", err)
	}
}

func TestPrivilegedDNS(t *testing.T) {
	r := newRig(t)
	list := r.conflist(`{
  "cniVersion": "1.1.0", "name": "bcdns",
  "plugins": [
    {"type": "berth-bridge", "bridge": "bc-br3", "stateDir": "STATE",
     "ipam": {"type": "berth-ipam", "dataDir": "STATE", "ranges": [[{"subnet": "198.18.80.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "berth-dns", "stateDir": "STATE", "capabilities": {"aliases": true}}
  ]}`)
	t.Cleanup(func() {
		// The server exits with its last network; make sure of it.
		if b, err := os.ReadFile(filepath.Join(r.state, "aardvark-dns", "aardvark.pid")); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
				if p, err := os.FindProcess(pid); err == nil && p.Signal(syscall.Signal(0)) == nil {
					if link, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid)); link != "" {
						_ = p.Kill()
					}
				}
			}
		}
	})
	web, db := r.container("bc-web1"), r.container("bc-db1")
	rtWeb := r.rt(web)
	rtWeb.CapabilityArgs = map[string]any{"aliases": []string{"web", "www"}}
	resWeb, err := r.add(list, rtWeb)
	if err != nil {
		t.Fatalf("ADD: %v", err)
	}
	if len(resWeb.DNS.Nameservers) != 1 || resWeb.DNS.Nameservers[0] != "198.18.80.1" || resWeb.DNS.Search[0] != "dns.podman" {
		t.Fatalf("result dns: %+v", resWeb.DNS)
	}
	rtDB := &libcni.RuntimeConf{ContainerID: db.id, NetNS: db.path, IfName: "eth0", Args: [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAME", "db"}}}
	if _, err := r.add(list, rtDB); err != nil {
		t.Fatalf("ADD: %v", err)
	}
	lookup := func(name string) (string, error) {
		var out string
		err := db.ns.Do(func() error {
			m := new(dns.Msg)
			m.SetQuestion(dns.Fqdn(name), dns.TypeA)
			c := &dns.Client{Timeout: 2 * time.Second}
			in, _, err := c.Exchange(m, "198.18.80.1:53")
			if err != nil {
				return err
			}
			for _, a := range in.Answer {
				if rr, ok := a.(*dns.A); ok {
					out = rr.A.String()
				}
			}
			return nil
		})
		return out, err
	}
	for _, n := range []string{"web", "www.dns.podman", "db"} {
		got, err := lookup(n)
		want := resWeb.IPs[0].Address.IP.String()
		if n == "db" {
			want = "198.18.80.3"
		}
		if err != nil || got != want {
			t.Errorf("resolve %s from db: %q %v, want %s", n, got, err, want)
		}
	}
	if err := r.check(list, rtWeb); err != nil {
		t.Fatalf("CHECK: %v", err)
	}
	if err := r.del(list, rtWeb); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	// The server reloads on SIGHUP, asynchronously.
	deadline := time.Now().Add(2 * time.Second)
	for {
		got, _ := lookup("web")
		if got == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("web still resolves after DEL: %s", got)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The runtime lost db (crash): GC drops its name too.
	db.gone()
	r.gcAll(list)
	if _, err := os.Stat(filepath.Join(r.state, "aardvark-dns", "bcdns")); !os.IsNotExist(err) {
		t.Errorf("DNS entries left after GC: %v", err)
	}
}

// Older configurations get results in their own version.
func TestPrivilegedOlderSpecVersions(t *testing.T) {
	r := newRig(t)
	for i, v := range []string{"0.3.1", "0.4.0", "1.0.0"} {
		list := r.conflist(strings.ReplaceAll(strings.Replace(berthChain, `"1.1.0"`, `"`+v+`"`, 1), "bc-br0", "bc-brv"))
		c := r.container(fmt.Sprintf("bc-v%d", i))
		var raw types.Result
		err := r.in(func() (err error) {
			raw, err = r.cni.AddNetworkList(context.Background(), list, r.rt(c, port8080))
			return err
		})
		if err != nil {
			t.Fatalf("%s ADD: %v", v, err)
		}
		if raw.Version() != v {
			t.Errorf("%s: result version %s", v, raw.Version())
		}
		if v != "0.3.1" {
			if err := r.check(list, r.rt(c, port8080)); err != nil {
				t.Errorf("%s CHECK: %v", v, err)
			}
		}
		if err := r.del(list, r.rt(c, port8080)); err != nil {
			t.Fatalf("%s DEL: %v", v, err)
		}
	}
}

// berth-macvlan with berth-ipam in mode dhcp: the address comes from the
// LAN's DHCP server (dnsmasq) through berth's DHCP proxy; berth-cni hands
// the call to berth-cni-dhcp.
func TestPrivilegedMacvlanDHCP(t *testing.T) {
	r := newRig(t)
	proxy := dhcpproxytest.StartProxy(t, dhcpproxy.Config{})
	lan := dhcpproxytest.NewLAN(t, dhcpproxytest.LANOptions{Host: r.host})
	list := r.conflist(strings.ReplaceAll(`{
  "cniVersion": "1.1.0", "name": "bcdhcp",
  "plugins": [
    {"type": "berth-macvlan", "master": "lanparent", "stateDir": "STATE",
     "ipam": {"type": "berth-ipam", "mode": "dhcp", "daemonSocketPath": "SOCK"}}
  ]}`, "SOCK", proxy.Socket))
	c := r.container("bc-dh1")
	res, err := r.add(list, r.rt(c))
	if err != nil {
		t.Fatalf("ADD: %v", err)
	}
	if len(res.IPs) != 1 || !dhcpproxytest.LANSubnet.Contains(netip.MustParseAddr(res.IPs[0].Address.IP.String())) ||
		res.IPs[0].Gateway.String() != dhcpproxytest.LANGateway.String() || *res.IPs[0].Interface != 0 {
		t.Fatalf("result ips: %v", res.IPs)
	}
	if len(res.DNS.Nameservers) != 1 || res.DNS.Nameservers[0] != dhcpproxytest.LANDNS.String() || res.DNS.Domain != dhcpproxytest.LANDomain {
		t.Errorf("result dns: %+v", res.DNS)
	}
	addr := res.IPs[0].Address.IP.String()
	serve(t, c, "dhcp")
	if got, err := nettest.Fetch(lan.NS, "tcp4", addr+":80"); err != nil || got != "dhcp" {
		t.Fatalf("LAN to the leased address: %q %v", got, err)
	}
	if err := r.check(list, r.rt(c)); err != nil {
		t.Fatalf("CHECK: %v", err)
	}
	if err := r.del(list, r.rt(c)); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	if !dhcpproxytest.WaitFor(3*time.Second, func() bool { _, ok := lan.ServerLease(netip.MustParseAddr(addr)); return !ok }) {
		t.Errorf("dnsmasq still has the lease after DEL: %+v", lan.ServerLeases())
	}
	if r.hasLink(c.nettestNS(), "eth0") {
		t.Error("eth0 left after DEL")
	}
	// Standalone, berth-ipam does not lease: its caller would configure
	// the address a second time.
	_, err = run(t, "berth-ipam", "ADD", `{"cniVersion":"1.0.0","name":"bc","type":"macvlan","ipam":{"type":"berth-ipam","mode":"dhcp"}}`)
	if err == nil {
		t.Error("berth-ipam in mode dhcp under another plugin succeeded")
	}
}

// Runtimes run ADD and DEL of different containers in parallel: every
// container gets its own address and port, and nothing is left after.
func TestPrivilegedConcurrent(t *testing.T) {
	r := newRig(t)
	list := r.conflist(berthChain)
	const n = 12
	ctrs := make([]*container, n)
	for i := range ctrs {
		ctrs[i] = r.container(fmt.Sprintf("bc-par%d", i))
	}
	rt := func(i int) *libcni.RuntimeConf {
		return r.rt(ctrs[i], map[string]any{"hostPort": 9000 + i, "containerPort": 80, "protocol": "tcp"})
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	addrs := make([]string, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			res, err := r.add(list, rt(i))
			if err == nil {
				addrs[i] = res.IPs[0].Address.IP.String()
			}
			errs[i] = err
		}(i)
	}
	wg.Wait()
	seen := map[string]bool{}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("ADD %d: %v", i, err)
		}
		if seen[addrs[i]] {
			t.Fatalf("address %s given twice", addrs[i])
		}
		seen[addrs[i]] = true
	}
	for i := 0; i < n; i += 5 {
		serve(t, ctrs[i], fmt.Sprint(i))
		if got, err := nettest.Fetch(r.outside, "tcp", fmt.Sprintf("198.19.200.1:%d", 9000+i)); err != nil || got != fmt.Sprint(i) {
			t.Errorf("port %d: %q %v", 9000+i, got, err)
		}
	}
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = r.del(list, rt(i))
		}(i)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("DEL %d: %v", i, err)
		}
	}
	if ls := r.leases(); len(ls) != 0 {
		t.Errorf("leases left: %v", ls)
	}
	r.gcAll(list)
	if links := nettest.Links(t, r.host); len(links) != 2 || r.berthTable() {
		t.Errorf("residue: links %v, table %v", links, r.berthTable())
	}
}

// Dual stack: one address per family, published ports over IPv6 too.
func TestPrivilegedDualStack(t *testing.T) {
	r := newRig(t)
	for _, x := range []struct {
		ns   *nettest.NS
		name string
		addr string
	}{{r.host, "bc-ho", "fd00:bc:200::1/64"}, {r.outside, "bc-oh", "fd00:bc:200::2/64"}} {
		h := nettest.Handle(t, x.ns.NetNS)
		l, err := h.ByName(x.name)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.AddAddr(l, netip.MustParsePrefix(x.addr)); err != nil {
			t.Fatal(err)
		}
	}
	list := r.conflist(`{
  "cniVersion": "1.1.0", "name": "bcds",
  "plugins": [
    {"type": "berth-bridge", "bridge": "bc-br6", "stateDir": "STATE",
     "ipam": {"type": "berth-ipam", "dataDir": "STATE",
              "ranges": [[{"subnet": "198.18.90.0/24"}], [{"subnet": "fd00:bc:90::/64"}]],
              "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]}},
    {"type": "berth-portmap", "stateDir": "STATE", "capabilities": {"portMappings": true}}
  ]}`)
	c := r.container("bc-ds1")
	rt := r.rt(c, port8080)
	res, err := r.add(list, rt)
	if err != nil {
		t.Fatalf("ADD: %v", err)
	}
	if len(res.IPs) != 2 || res.IPs[1].Address.String() != "fd00:bc:90::2/64" || res.IPs[1].Gateway.String() != "fd00:bc:90::1" {
		t.Fatalf("ips: %v", res.IPs)
	}
	serve(t, c, "six")
	if got, err := nettest.Fetch(r.outside, "tcp", "[fd00:bc:200::1]:8080"); err != nil || got != "six" {
		t.Errorf("published port over IPv6: %q %v", got, err)
	}
	if got, err := nettest.Fetch(r.host, "tcp", "[fd00:bc:90::2]:80"); err != nil || got != "six" {
		t.Errorf("host to container over IPv6: %q %v", got, err)
	}
	if err := r.check(list, rt); err != nil {
		t.Errorf("CHECK: %v", err)
	}
	if err := r.del(list, rt); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	r.gcAll(list)
	if r.berthTable() || len(r.leases()) != 0 {
		t.Error("residue")
	}
}

// berth-bridge's result feeds the reference portmap (iptables) too.
func TestPrivilegedChainBerthBridgeReferencePortmap(t *testing.T) {
	r := newRig(t)
	needReference(t, "portmap")
	list := r.conflist(`{
  "cniVersion": "1.0.0", "name": "bcrpm",
  "plugins": [
    {"type": "berth-bridge", "bridge": "bc-br7", "stateDir": "STATE",
     "ipam": {"type": "berth-ipam", "dataDir": "STATE", "ranges": [[{"subnet": "198.18.95.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}
  ]}`)
	c := r.container("bc-rpm1")
	rt := r.rt(c, port8080)
	if _, err := r.add(list, rt); err != nil {
		t.Fatalf("ADD: %v", err)
	}
	serve(t, c, "refpm")
	if got, err := nettest.Fetch(r.outside, "tcp", "198.19.200.1:8080"); err != nil || got != "refpm" {
		t.Errorf("reference portmap after berth-bridge: %q %v", got, err)
	}
	// (No CHECK: the reference portmap 1.1.1 fails its own CHECK, looking
	// for an IPv6 chain it never made.)
	if err := r.del(list, rt); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	if _, err := nettest.FetchWithin(r.outside, "tcp", "198.19.200.1:8080", 300*time.Millisecond); err == nil {
		t.Error("port still published after DEL")
	}
}

// TestPrivilegedLoopback: berth-cni answers as "loopback" (containerd's CRI
// runs it for every pod): ADD sets lo up and reports it, CHECK passes,
// DEL sets it down, DEL of a vanished namespace succeeds.
func TestPrivilegedLoopback(t *testing.T) {
	r := newRig(t)
	list := r.conflist(`{"cniVersion":"1.0.0","name":"bc-lo","plugins":[{"type":"loopback"}]}`)
	c := r.container("bc-lo1")
	rt := &libcni.RuntimeConf{ContainerID: c.id, NetNS: c.path, IfName: "lo"}
	loUp := func() bool {
		h, err := link.NewHandle(c.ns)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		lo, err := h.ByName("lo")
		if err != nil {
			t.Fatal(err)
		}
		return lo.Attrs().Flags&net.FlagUp != 0
	}
	if loUp() {
		t.Fatal("lo is up in a fresh namespace")
	}
	res, err := r.add(list, rt)
	if err != nil {
		t.Fatalf("ADD: %v", err)
	}
	if len(res.Interfaces) != 1 || res.Interfaces[0].Name != "lo" || len(res.IPs) != 2 || res.IPs[0].Address.String() != "127.0.0.1/8" {
		t.Errorf("result: %+v", res)
	}
	if !loUp() {
		t.Error("lo is down after ADD")
	}
	if err := r.check(list, rt); err != nil {
		t.Errorf("CHECK: %v", err)
	}
	if err := r.del(list, rt); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	if loUp() {
		t.Error("lo is up after DEL")
	}
	c.gone()
	if err := r.del(list, rt); err != nil {
		t.Errorf("DEL after the namespace vanished: %v", err)
	}
}

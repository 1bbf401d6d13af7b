package core_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/berthnet/berth/internal/core"
	"github.com/berthnet/berth/internal/nettest"
)

// buildAardvark builds berth's DNS server for the test.
func buildAardvark(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "aardvark-dns")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/berthnet/berth/cmd/aardvark-dns").CombinedOutput(); err != nil {
		t.Fatalf("build aardvark-dns: %v\n%s", err, out)
	}
	return bin
}

// dnsTopo is a topology whose manager starts berth's DNS server (killed
// when the test ends); mod, when given, changes the manager's
// configuration further.
func dnsTopo(t *testing.T, mod ...func(*core.Config)) *topo {
	t.Helper()
	nettest.Privileged(t)
	bin := buildAardvark(t)
	tp := newTopo(t, nil, func(c *core.Config) {
		c.AardvarkBinary = bin
		for _, f := range mod {
			f(c)
		}
	})
	t.Cleanup(func() {
		if b, err := os.ReadFile(filepath.Join(tp.cfgDir, "aardvark-dns", "aardvark.pid")); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	return tp
}

// lookupA asks server for name's A record from inside ns.
func lookupA(ns *nettest.NS, name, server string) (*mdns.Msg, error) {
	var r *mdns.Msg
	err := ns.Do(func() error {
		m := new(mdns.Msg)
		m.SetQuestion(mdns.Fqdn(name), mdns.TypeA)
		var err error
		r, _, err = (&mdns.Client{Timeout: 2 * time.Second}).Exchange(m, server)
		return err
	})
	return r, err
}

// A container's name resolves the moment its setup returns, and is gone
// the moment its teardown returns: setup and teardown wait until the DNS
// server has loaded the change (a SIGHUP alone left the name unresolvable
// for a moment: 2 of 300 lookups failed).
func TestPrivilegedNameResolvesWhenSetupReturns(t *testing.T) {
	tp := dnsTopo(t)
	n := bridgeNet("dnsready", "bdnsr0", "198.19.62.0/23", "198.19.62.1")
	n.DNSEnabled = true
	asker, _ := tp.container(t, opts("a0", "asker", n, "198.19.62.2"))
	lookup := func(name string) (*mdns.Msg, error) { return lookupA(asker, name, "198.19.62.1:53") }
	const N = 300
	var failures []string
	for i := 0; i < N; i++ {
		name := fmt.Sprintf("ready%d", i)
		ip := fmt.Sprintf("198.19.%d.%d", 62+(i+3)/256, (i+3)%256)
		o := opts(fmt.Sprintf("r%d", i), name, n, ip)
		ns := nettest.NewNS(t, nettest.RandName("ctr"))
		if _, err := tp.m.Setup(context.Background(), ns.Path(), o); err != nil {
			t.Fatalf("setup %d: %v", i, err)
		}
		if r, err := lookup(name); err != nil || len(r.Answer) != 1 || r.Answer[0].(*mdns.A).A.String() != ip {
			failures = append(failures, fmt.Sprintf("%s after setup: %v %v", name, r, err))
		}
		if err := tp.m.Teardown(context.Background(), ns.Path(), o); err != nil {
			t.Fatalf("teardown %d: %v", i, err)
		}
		if r, err := lookup(name + ".dns.podman"); err != nil || r.Rcode != mdns.RcodeNameError {
			failures = append(failures, fmt.Sprintf("%s after teardown: %v %v", name, r, err))
		}
	}
	if len(failures) != 0 {
		t.Errorf("%d of %d lookups right after setup or teardown were wrong; first: %s", len(failures), 2*N, failures[0])
	}
}

// With the iptables driver, containers keep name resolution when the
// host's INPUT policy is DROP: NETAVARK_INPUT, which INPUT jumps to first,
// accepts DNS queries from the network's subnet (netavark 2.x's rule).
func TestPrivilegedDNSWithInputPolicyDrop(t *testing.T) {
	nettest.Privileged(t)
	bin := buildAardvark(t)
	tp := newTopo(t, iptDriver, func(c *core.Config) { c.AardvarkBinary = bin })
	t.Cleanup(func() {
		if b, err := os.ReadFile(filepath.Join(tp.cfgDir, "aardvark-dns", "aardvark.pid")); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	for _, args := range [][]string{{"-P", "INPUT", "DROP"}, {"-A", "INPUT", "-m", "state", "--state", "RELATED,ESTABLISHED", "-j", "ACCEPT"}} {
		if out, err := nettest.Run(tp.host, 5*time.Second, "iptables", args...); err != nil {
			t.Fatalf("iptables %v: %v %s", args, err, out)
		}
	}
	n := bridgeNet("dnsdrop", "bdnsd0", "198.19.64.0/24", "198.19.64.1")
	n.DNSEnabled = true
	asker, _ := tp.container(t, opts("d0", "asker", n, "198.19.64.2"))
	var r *mdns.Msg
	err := asker.Do(func() error {
		m := new(mdns.Msg)
		m.SetQuestion("asker.", mdns.TypeA)
		var err error
		r, _, err = (&mdns.Client{Timeout: 2 * time.Second}).Exchange(m, "198.19.64.1:53")
		return err
	})
	if err != nil || len(r.Answer) != 1 || r.Answer[0].(*mdns.A).A.String() != "198.19.64.2" {
		rules, _ := nettest.Run(tp.host, 5*time.Second, "iptables", "-S", "INPUT")
		t.Fatalf("lookup with INPUT policy DROP: %v %v\n%s", r, err, rules)
	}
}

// A container only on an internal network resolves the names of that
// network and gets NXDOMAIN for any other name (aardvark-dns 2.0's answer,
// never forwarded: SERVFAIL before, with the upstream unreachable); its
// entries live in the network's "%int" file, which its teardown removes.
func TestPrivilegedInternalNetworkNXDOMAIN(t *testing.T) {
	tp := dnsTopo(t)
	n := bridgeNet("dnsint", "bdnsi0", "198.19.66.0/24", "198.19.66.1")
	n.DNSEnabled, n.Internal = true, true
	asker, _ := tp.container(t, opts("i0", "asker", n, "198.19.66.2"))
	ns := nettest.NewNS(t, nettest.RandName("ctr"))
	o := opts("i1", "peer", n, "198.19.66.3")
	if _, err := tp.m.Setup(context.Background(), ns.Path(), o); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(tp.cfgDir, "aardvark-dns", "dnsint%int")
	if b, err := os.ReadFile(file); err != nil || !strings.Contains(string(b), "i1 198.19.66.3") {
		t.Fatalf("internal network's DNS file %s: %v\n%s", file, err, b)
	}
	if r, err := lookupA(asker, "peer", "198.19.66.1:53"); err != nil || len(r.Answer) != 1 || r.Answer[0].(*mdns.A).A.String() != "198.19.66.3" {
		t.Fatalf("peer on the internal network: %v %v", r, err)
	}
	if r, err := lookupA(asker, "example.com", "198.19.66.1:53"); err != nil || r.Rcode != mdns.RcodeNameError {
		t.Fatalf("an outside name from an internal-only container: want NXDOMAIN, got %v %v", r, err)
	}
	if err := tp.m.Teardown(context.Background(), ns.Path(), o); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(file); strings.Contains(string(b), "i1 ") {
		t.Fatalf("teardown left the entry:\n%s", b)
	}
}

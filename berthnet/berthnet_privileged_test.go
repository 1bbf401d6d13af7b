package berthnet_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthnet/berth/berthnet"
	"github.com/berthnet/berth/internal/firewall"
	"github.com/berthnet/berth/internal/nettest"
)

// hostRig makes a "host" namespace and an "outside" one linked to it
// (198.19.<third>.1 and .2), and a Host working on the former.
func hostRig(t *testing.T, third int) (host, out *nettest.NS, h *berthnet.Host) {
	t.Helper()
	nettest.Privileged(t)
	host = nettest.NewNS(t, nettest.RandName("bch"))
	out = nettest.NewNS(t, nettest.RandName("bco"))
	nettest.Connect(t, host, "bc-ho", netip.MustParsePrefix(fmt.Sprintf("198.19.%d.1/24", third)), out, "bc-oh", netip.MustParsePrefix(fmt.Sprintf("198.19.%d.2/24", third)))
	h, err := berthnet.New(berthnet.Config{StateDir: t.TempDir(), HostNetns: host.Path()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return host, out, h
}

func TestPrivilegedAttachDetach(t *testing.T) {
	host, out, h := hostRig(t, 201)
	c1 := nettest.NewNS(t, nettest.RandName("bcc"))
	c2 := nettest.NewNS(t, nettest.RandName("bcc"))
	n, err := h.CreateNetwork(berthnet.Network{Name: "bcapi", Interface: "bc-api0",
		Subnets: []berthnet.Subnet{{Prefix: netip.MustParsePrefix("198.18.50.0/24"), Gateway: netip.MustParseAddr("198.18.50.1")}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a1, err := h.Attach(ctx, n, berthnet.AttachOptions{ContainerID: "bc1", Netns: c1.Path(), Ports: []berthnet.PortMapping{{HostPort: 8080, ContainerPort: 80}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(a1.Addresses) != 1 || a1.Addresses[0] != netip.MustParsePrefix("198.18.50.2/24") || len(a1.Gateways) != 1 {
		t.Fatalf("attachment: %+v", a1)
	}
	a2, err := h.Attach(ctx, n, berthnet.AttachOptions{ContainerID: "bc2", Netns: c2.Path(), Interface: "net1", Addresses: []netip.Addr{netip.MustParseAddr("198.18.50.9")}})
	if err != nil {
		t.Fatal(err)
	}
	if a2.Addresses[0] != netip.MustParsePrefix("198.18.50.9/24") {
		t.Fatalf("static address: %+v", a2)
	}
	_, err = h.Attach(ctx, n, berthnet.AttachOptions{ContainerID: "bc3", Netns: c2.Path(), Interface: "net2", Ports: []berthnet.PortMapping{{HostPort: 8080, ContainerPort: 81}}})
	if !errors.Is(err, berthnet.ErrInUse) {
		t.Fatalf("second publisher of 8080: %v, want ErrInUse", err)
	}
	if err := h.RemoveNetwork("bcapi"); !errors.Is(err, berthnet.ErrInUse) {
		t.Fatalf("remove a network in use: %v", err)
	}

	nettest.ServeBanner(nettest.Listen(t, c1, "tcp", ":80"), "c1")
	if got, err := nettest.Fetch(out, "tcp", "198.19.201.1:8080"); err != nil || got != "c1" {
		t.Fatalf("published port: %q %v", got, err)
	}
	if got, err := nettest.Fetch(c2, "tcp", "198.18.50.2:80"); err != nil || got != "c1" {
		t.Fatalf("container to container: %q %v", got, err)
	}
	if err := h.Check(ctx, "bc1", "eth0"); err != nil {
		t.Fatalf("Check: %v", err)
	}
	atts, err := h.Attachments()
	if err != nil || len(atts) != 2 || atts[0].ContainerID != "bc1" || atts[1].Interface != "net1" || len(atts[0].Ports) != 1 {
		t.Fatalf("Attachments: %+v %v", atts, err)
	}

	// Collect keeps bc2 only.
	gone, err := h.Collect(ctx, n, func(ctr, _ string) bool { return ctr == "bc2" })
	if err != nil || len(gone) != 1 || gone[0].ContainerID != "bc1" {
		t.Fatalf("Collect: %+v %v", gone, err)
	}
	if _, err := nettest.FetchWithin(out, "tcp", "198.19.201.1:8080", 300e6); err == nil {
		t.Error("port still published after Collect")
	}
	if err := h.Detach(ctx, "bc2", "net1"); err != nil {
		t.Fatal(err)
	}
	if err := h.Detach(ctx, "bc2", "net1"); err != nil {
		t.Fatalf("second Detach: %v", err)
	}
	if links := nettest.Links(t, host); len(links) != 2 {
		t.Errorf("host links left: %v (want lo and bc-ho)", links)
	}
	if err := h.RemoveNetwork("bcapi"); err != nil {
		t.Fatal(err)
	}
	if m, _ := filepath.Glob(filepath.Join(h.StateDir(), "networks", "*.json")); len(m) != 0 {
		t.Errorf("network files left: %v", m)
	}
}

// Podman's model: a whole container handed over as netavark's input, the
// way berth's netavark front-end and CLI use the API.
func TestPrivilegedSetupNetavark(t *testing.T) {
	host, out, h := hostRig(t, 202)
	c := nettest.NewNS(t, nettest.RandName("bcc"))
	var o berthnet.NetavarkOptions
	in := `{"container_id":"0123456789abcdef","container_name":"web",
	  "port_mappings":[{"host_ip":"","container_port":80,"host_port":8081,"range":1,"protocol":"tcp"}],
	  "networks":{"podnet":{"static_ips":["198.18.51.5"],"interface_name":"eth0"}},
	  "network_info":{"podnet":{"name":"podnet","id":"1f0e","driver":"bridge","network_interface":"bc-pod0",
	    "subnets":[{"subnet":"198.18.51.0/24","gateway":"198.18.51.1"}],"ipv6_enabled":false,"internal":false,
	    "dns_enabled":false,"ipam_options":{"driver":"host-local"}}}}`
	if err := json.Unmarshal([]byte(in), &o); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := h.SetupNetavark(ctx, c.Path(), &o)
	if err != nil {
		t.Fatal(err)
	}
	ifc, ok := st["podnet"].Interfaces["eth0"]
	if !ok || len(ifc.Subnets) != 1 || ifc.Subnets[0].IPNet != netip.MustParsePrefix("198.18.51.5/24") {
		t.Fatalf("status: %+v", st)
	}
	nettest.ServeBanner(nettest.Listen(t, c, "tcp", ":80"), "web")
	if got, err := nettest.Fetch(out, "tcp", "198.19.202.1:8081"); err != nil || got != "web" {
		t.Fatalf("published port: %q %v", got, err)
	}
	if err := h.TeardownNetavark(ctx, c.Path(), &o); err != nil {
		t.Fatal(err)
	}
	if _, err := nettest.FetchWithin(out, "tcp", "198.19.202.1:8081", 300*time.Millisecond); err == nil {
		t.Error("published port still answers after TeardownNetavark")
	}
	for _, l := range nettest.Links(t, host) {
		if l != "lo" && l != "bc-ho" {
			t.Errorf("link %s left in the host after teardown", l)
		}
	}
}

// checkingFirewall is a driver that programs nothing and answers Check's
// question from have.
type checkingFirewall struct{ have bool }

func (checkingFirewall) Name() string { return "checking" }
func (checkingFirewall) Setup([]firewall.NetworkRules, []firewall.PortForward) error {
	return nil
}
func (checkingFirewall) Teardown([]firewall.PortForward, []firewall.NetworkRules) error {
	return nil
}
func (checkingFirewall) Reset() error                             { return nil }
func (f checkingFirewall) HasNetwork(string) (bool, error)        { return f.have, nil }
func (checkingFirewall) HasForwards([]firewall.PortForward) error { return nil }

// Check asks any driver that can check (firewall.Checker) whether the
// network's rules exist, and the nftables driver finds them gone after the
// table is deleted.
func TestPrivilegedCheckFirewall(t *testing.T) {
	nettest.Privileged(t)
	host := nettest.NewNS(t, nettest.RandName("bch"))
	c := nettest.NewNS(t, nettest.RandName("bcc"))
	dir := t.TempDir()
	ctx := context.Background()
	net := berthnet.Network{Name: "bcchk", Interface: "bc-chk0",
		Subnets: []berthnet.Subnet{{Prefix: netip.MustParsePrefix("198.18.52.0/24"), Gateway: netip.MustParseAddr("198.18.52.1")}}}
	for _, tc := range []struct {
		fw      berthnet.FirewallDriver
		wantErr bool
	}{{checkingFirewall{have: true}, false}, {checkingFirewall{have: false}, true}} {
		h, err := berthnet.New(berthnet.Config{StateDir: dir, HostNetns: host.Path(), FirewallDriver: tc.fw})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.Attach(ctx, net, berthnet.AttachOptions{ContainerID: "chk", Netns: c.Path()}); err != nil {
			t.Fatal(err)
		}
		err = h.Check(ctx, "chk", "eth0")
		if (err != nil) != tc.wantErr || (err != nil && !strings.Contains(err.Error(), "firewall rules of network bcchk are missing")) {
			t.Errorf("Check with rules present=%v: %v", !tc.wantErr, err)
		}
		if err := h.Detach(ctx, "chk", "eth0"); err != nil {
			t.Fatal(err)
		}
		h.Close()
	}
	h, err := berthnet.New(berthnet.Config{StateDir: dir, HostNetns: host.Path()})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if _, err := h.Attach(ctx, net, berthnet.AttachOptions{ContainerID: "chk", Netns: c.Path()}); err != nil {
		t.Fatal(err)
	}
	if err := h.Check(ctx, "chk", "eth0"); err != nil {
		t.Fatalf("Check with nftables rules in place: %v", err)
	}
	if out, err := nettest.Run(host, 5*time.Second, "nft", "delete", "table", "inet", "berth"); err != nil {
		t.Fatalf("nft delete table: %v %s", err, out)
	}
	if err := h.Check(ctx, "chk", "eth0"); err == nil || !strings.Contains(err.Error(), "firewall rules of network bcchk are missing") {
		t.Errorf("Check after the table was deleted: %v", err)
	}
}

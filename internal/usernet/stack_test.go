package usernet

import (
	"context"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/ethernet"
	"gvisor.dev/gvisor/pkg/tcpip/link/pipe"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"

	"github.com/berthnet/berth/internal/nettest"
)

// These tests need no privileges: the guest is a second gVisor stack joined
// to the user-mode stack by an in-memory Ethernet pipe, and the "host" is
// this process's loopback, reached through the gateway address.

var guestMAC = tcpip.LinkAddress("\x02\x00\x00\x00\x01\x00")

type rig struct {
	st    *Stack
	guest *stack.Stack
}

func newRig(t *testing.T, cfg Config) *rig {
	t.Helper()
	a, b := pipe.New(guestMAC, tcpip.LinkAddress(DefaultMAC), 65520+header.EthernetMinimumSize)
	st, err := New(cfg, ethernet.New(b))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	g := stack.New(stack.Options{
		NetworkProtocols: []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol, ipv6.NewProtocolWithOptions(ipv6.Options{
			AutoGenLinkLocal: true,
			NDPConfigs: ipv6.NDPConfigurations{
				HandleRAs:              ipv6.HandlingRAsAlwaysEnabled,
				DiscoverDefaultRouters: true,
				DiscoverOnLinkPrefixes: true,
				AutoGenGlobalAddresses: true,
			},
		})},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4},
	})
	t.Cleanup(func() { g.Close() })
	if err := g.CreateNIC(1, ethernet.New(a)); err != nil {
		t.Fatal(err)
	}
	c := st.Config()
	if err := g.AddProtocolAddress(1, tcpip.ProtocolAddress{
		Protocol:          ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddressWithPrefix{Address: fromAddr(c.Guest()), PrefixLen: 24},
	}, stack.AddressProperties{}); err != nil {
		t.Fatal(err)
	}
	g.SetRouteTable([]tcpip.Route{
		{Destination: header.IPv4EmptySubnet, Gateway: fromAddr(c.Gateway()), NIC: 1},
	})
	return &rig{st: st, guest: g}
}

func full(a netip.AddrPort) tcpip.FullAddress {
	return tcpip.FullAddress{NIC: 1, Addr: fromAddr(a.Addr()), Port: a.Port()}
}

func TestGuestReachesHostLoopbackThroughGateway(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	nettest.ServeBanner(l, "host says hi\n")
	port := uint16(l.Addr().(*net.TCPAddr).Port)

	r := newRig(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := gonet.DialContextTCP(ctx, r.guest, full(netip.AddrPortFrom(netip.MustParseAddr("10.0.2.2"), port)), ipv4.ProtocolNumber)
	if err != nil {
		t.Fatalf("guest dial 10.0.2.2:%d: %v", port, err)
	}
	b, _ := io.ReadAll(c)
	c.Close()
	if string(b) != "host says hi\n" {
		t.Fatalf("got %q", b)
	}

	// With host loopback disabled the guest gets a reset.
	r2 := newRig(t, Config{DisableHostLoopback: true})
	_, err = gonet.DialContextTCP(ctx, r2.guest, full(netip.AddrPortFrom(netip.MustParseAddr("10.0.2.2"), port)), ipv4.ProtocolNumber)
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("dial with host loopback disabled: %v, want connection refused", err)
	}
}

func TestGuestUDPAndDNS(t *testing.T) {
	// A UDP echo server and a DNS server on the host's loopback.
	echo, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := echo.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = echo.WriteTo(append([]byte("echo:"), buf[:n]...), from)
		}
	}()
	dnsPC, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &mdns.Server{PacketConn: dnsPC, Handler: mdns.HandlerFunc(func(w mdns.ResponseWriter, q *mdns.Msg) {
		m := new(mdns.Msg)
		m.SetReply(q)
		if q.Question[0].Qtype != mdns.TypeA { // as dnsmasq without upstreams
			m.SetRcode(q, mdns.RcodeRefused)
			_ = w.WriteMsg(m)
			return
		}
		rr, _ := mdns.NewRR(q.Question[0].Name + " 60 IN A 192.0.2.7")
		m.Answer = []mdns.RR{rr}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	defer srv.Shutdown()
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 127.0.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	r := newRig(t, Config{ResolvConf: resolv, DNSPort: uint16(dnsPC.LocalAddr().(*net.UDPAddr).Port)})

	port := uint16(echo.LocalAddr().(*net.UDPAddr).Port)
	dst := full(netip.AddrPortFrom(netip.MustParseAddr("10.0.2.2"), port))
	uc, err := gonet.DialUDP(r.guest, nil, &dst, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	_ = uc.SetDeadline(time.Now().Add(3 * time.Second))
	_, _ = uc.Write([]byte("x"))
	buf := make([]byte, 100)
	n, err := uc.Read(buf)
	if err != nil || string(buf[:n]) != "echo:x" {
		t.Fatalf("udp echo through the gateway: %q, %v", buf[:n], err)
	}

	dnsAddr := full(netip.MustParseAddrPort("10.0.2.3:53"))
	dc, err := gonet.DialUDP(r.guest, nil, &dnsAddr, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	q := new(mdns.Msg)
	q.SetQuestion("example.test.", mdns.TypeA)
	conn := &mdns.Conn{Conn: dc}
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	if err := conn.WriteMsg(q); err != nil {
		t.Fatal(err)
	}
	resp, err := conn.ReadMsg()
	if err != nil || len(resp.Answer) != 1 || resp.Answer[0].(*mdns.A).A.String() != "192.0.2.7" || resp.Id != q.Id {
		t.Fatalf("dns through 10.0.2.3: %v, %v", resp, err)
	}
	// An upstream's refusal reaches the guest as it was, not as a
	// SERVFAIL of the stack's own.
	q.SetQuestion("example.test.", mdns.TypeAAAA)
	if err := conn.WriteMsg(q); err != nil {
		t.Fatal(err)
	}
	resp, err = conn.ReadMsg()
	if err != nil || resp.Rcode != mdns.RcodeRefused || resp.Id != q.Id {
		t.Fatalf("refused upstream through 10.0.2.3: %v, %v", resp, err)
	}
}

func freePort(t *testing.T) uint16 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port)
}

func TestPortForwardAddRemove(t *testing.T) {
	r := newRig(t, Config{})
	gl, err := gonet.ListenTCP(r.guest, full(netip.MustParseAddrPort("10.0.2.100:80")), ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer gl.Close()
	seen := nettest.ServeBanner(gl, "guest web\n")

	hp := freePort(t)
	f, err := r.st.AddForward(Forward{Proto: "tcp", HostAddr: netip.MustParseAddr("127.0.0.1"), HostPort: hp, GuestPort: 80})
	if err != nil {
		t.Fatal(err)
	}
	if f.ID != 1 || f.GuestAddr.String() != "10.0.2.100" {
		t.Fatalf("forward: %+v", f)
	}
	if _, err := r.st.AddForward(Forward{Proto: "tcp", HostAddr: netip.MustParseAddr("127.0.0.1"), HostPort: hp, GuestPort: 80}); err == nil {
		t.Fatal("a second forward on the same host port succeeded")
	}
	c, err := net.DialTimeout("tcp", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), hp).String(), 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	b, _ := io.ReadAll(c)
	c.Close()
	if string(b) != "guest web\n" {
		t.Fatalf("through the forward: %q", b)
	}
	if src := <-seen; !strings.HasPrefix(src, "10.0.2.2:") {
		t.Errorf("guest saw a host-loopback client as %s, want the gateway", src)
	}
	if got := r.st.Forwards(); len(got) != 1 || got[0].HostPort != hp {
		t.Fatalf("Forwards() = %+v", got)
	}
	if err := r.st.RemoveForward(1); err != nil {
		t.Fatal(err)
	}
	if err := r.st.RemoveForward(1); err == nil {
		t.Fatal("removing a removed forward succeeded")
	}
	if c, err := net.DialTimeout("tcp", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), hp).String(), time.Second); err == nil {
		c.Close()
		t.Fatal("host port still open after RemoveForward")
	}
	if _, err := r.st.AddForward(Forward{Proto: "sctp", HostPort: 1, GuestPort: 1}); err == nil {
		t.Fatal("sctp forward accepted")
	}
}

func TestRouterAdvertisement(t *testing.T) {
	r := newRig(t, Config{IPv6: true})
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, a := range r.guest.AllAddresses()[1] {
			if DefaultIPv6Prefix.Contains(toAddr(a.AddressWithPrefix.Address)) {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("guest got no fd00::/64 address from router advertisements: %v", r.guest.AllAddresses()[1])
}

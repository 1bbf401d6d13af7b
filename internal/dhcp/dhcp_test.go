package dhcp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/insomniacslk/dhcp/dhcpv4"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func ack(t *testing.T, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	base := []dhcpv4.Modifier{
		dhcpv4.WithMessageType(dhcpv4.MessageTypeAck),
		dhcpv4.WithYourIP(net.IPv4(198, 18, 1, 100)),
		dhcpv4.WithHwAddr(net.HardwareAddr{2, 0, 0, 0, 0, 1}),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(198, 18, 1, 1))),
		dhcpv4.WithOption(dhcpv4.OptSubnetMask(net.CIDRMask(24, 32))),
		dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(120 * time.Second)),
	}
	m, err := dhcpv4.New(append(base, mods...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestFromACK(t *testing.T) {
	m := ack(t,
		dhcpv4.WithRouter(net.IPv4(198, 18, 1, 1)),
		dhcpv4.WithDNS(net.IPv4(198, 18, 1, 53), net.IPv4(198, 18, 1, 54)),
		dhcpv4.WithOption(dhcpv4.OptDomainName("lan.example")),
		dhcpv4.WithOption(dhcpv4.OptHostName("web")),
		dhcpv4.WithOption(dhcpv4.OptNTPServers(net.IPv4(198, 18, 1, 123))),
		dhcpv4.WithOption(dhcpv4.OptBroadcastAddress(net.IPv4(198, 18, 1, 255))),
		dhcpv4.WithOption(dhcpv4.Option{Code: dhcpv4.OptionInterfaceMTU, Value: dhcpv4.Uint16(1400)}),
		dhcpv4.WithOption(dhcpv4.OptRenewTimeValue(30*time.Second)),
		dhcpv4.WithOption(dhcpv4.OptRebindingTimeValue(90*time.Second)),
	)
	l, err := FromACK(m, t0)
	if err != nil {
		t.Fatal(err)
	}
	want := &Lease{
		Addr:      netip.MustParsePrefix("198.18.1.100/24"),
		Gateways:  []netip.Addr{netip.MustParseAddr("198.18.1.1")},
		DNS:       []netip.Addr{netip.MustParseAddr("198.18.1.53"), netip.MustParseAddr("198.18.1.54")},
		Domain:    "lan.example",
		NTP:       []netip.Addr{netip.MustParseAddr("198.18.1.123")},
		Hostname:  "web",
		MTU:       1400,
		Broadcast: netip.MustParseAddr("198.18.1.255"),
		Server:    netip.MustParseAddr("198.18.1.1"),
		Duration:  120 * time.Second,
		T1:        30 * time.Second,
		T2:        90 * time.Second,
		Acquired:  t0,
		ACK:       m.ToBytes(),
	}
	if d := cmp.Diff(want, l, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); d != "" {
		t.Errorf("lease (-want +got):\n%s", d)
	}
	if gw := l.Gateway(); gw != netip.MustParseAddr("198.18.1.1") {
		t.Errorf("gateway %v", gw)
	}
	back, err := l.Message()
	if err != nil || !back.YourIPAddr.Equal(m.YourIPAddr) {
		t.Errorf("stored ACK: %v %v", back, err)
	}
}

func TestFromACKRejects(t *testing.T) {
	offer := ack(t, dhcpv4.WithMessageType(dhcpv4.MessageTypeOffer))
	if _, err := FromACK(offer, t0); err == nil || !strings.Contains(err.Error(), "not a DHCPACK") {
		t.Errorf("offer: %v", err)
	}
	noAddr := ack(t, dhcpv4.WithYourIP(net.IPv4zero))
	if _, err := FromACK(noAddr, t0); err == nil || !strings.Contains(err.Error(), "no address") {
		t.Errorf("no yiaddr: %v", err)
	}
	if _, err := FromACK(nil, t0); err == nil {
		t.Error("nil ACK accepted")
	}
}

func TestClasslessRoutesOverrideRouter(t *testing.T) {
	_, def, _ := net.ParseCIDR("0.0.0.0/0")
	_, lan2, _ := net.ParseCIDR("198.19.0.0/16")
	m := ack(t,
		dhcpv4.WithRouter(net.IPv4(198, 18, 1, 1)),
		dhcpv4.WithOption(dhcpv4.OptClasslessStaticRoute(
			&dhcpv4.Route{Dest: lan2, Router: net.IPv4(198, 18, 1, 2)},
			&dhcpv4.Route{Dest: def, Router: net.IPv4(198, 18, 1, 3)},
		)),
	)
	l, err := FromACK(m, t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Routes) != 2 || l.Routes[0].Dst != netip.MustParsePrefix("198.19.0.0/16") {
		t.Errorf("routes %+v", l.Routes)
	}
	if gw := l.Gateway(); gw != netip.MustParseAddr("198.18.1.3") {
		t.Errorf("option 121's default route wins over option 3: got %v", gw)
	}
}

func TestTimes(t *testing.T) {
	for _, tc := range []struct {
		name           string
		lease, t1, t2  time.Duration
		wantT1, wantT2 time.Duration
	}{
		{"defaults", 120 * time.Second, 0, 0, 60 * time.Second, 105 * time.Second},
		{"server's", 120 * time.Second, 10 * time.Second, 20 * time.Second, 10 * time.Second, 20 * time.Second},
		{"t2 past the end", 100 * time.Second, 10 * time.Second, 200 * time.Second, 10 * time.Second, 87500 * time.Millisecond},
		{"t1 after t2", 100 * time.Second, 80 * time.Second, 60 * time.Second, 60 * time.Second * 4 / 7, 60 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &Lease{Duration: tc.lease, T1: tc.t1, T2: tc.t2}
			l.fixTimes()
			if l.T1 != tc.wantT1 || l.T2 != tc.wantT2 {
				t.Errorf("T1 %v T2 %v, want %v %v", l.T1, l.T2, tc.wantT1, tc.wantT2)
			}
			if !(0 < l.T1 && l.T1 < l.T2 && l.T2 < l.Duration) {
				t.Errorf("order broken: %v %v %v", l.T1, l.T2, l.Duration)
			}
		})
	}
}

func TestPhaseAndRetry(t *testing.T) {
	l := &Lease{Duration: 120 * time.Second, T1: 60 * time.Second, T2: 105 * time.Second, Acquired: t0}
	var tm Timing
	for _, c := range []struct {
		at   time.Duration
		want Phase
	}{{0, Bound}, {59 * time.Second, Bound}, {60 * time.Second, Renewing}, {104 * time.Second, Renewing}, {105 * time.Second, Rebinding}, {119 * time.Second, Rebinding}, {120 * time.Second, Expired}} {
		if got := tm.Phase(l, t0.Add(c.at)); got != c.want {
			t.Errorf("at %v: %v, want %v", c.at, got, c.want)
		}
	}
	// Renewing at 60 s: half of the 45 s to T2, at least 10 s.
	if got := tm.Retry(l, t0.Add(60*time.Second), 10*time.Second); !got.Equal(t0.Add(82500 * time.Millisecond)) {
		t.Errorf("retry at %v", got.Sub(t0))
	}
	// The minimum never pushes a retry past the phase's end.
	if got := tm.Retry(l, t0.Add(100*time.Second), 60*time.Second); !got.Equal(t0.Add(105 * time.Second)) {
		t.Errorf("retry at %v, want T2", got.Sub(t0))
	}
	half := Timing{Scale: 0.5}
	if got := half.Phase(l, t0.Add(31*time.Second)); got != Renewing {
		t.Errorf("scaled phase %v", got)
	}
	inf := &Lease{Duration: Infinite, Acquired: t0}
	if tm.Phase(inf, t0.Add(1000*time.Hour)) != Bound {
		t.Error("an infinite lease expired")
	}
}

func TestIdentityModifiers(t *testing.T) {
	id := Identity{MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, ClientID: "abc", Hostname: "web"}
	m, err := dhcpv4.NewDiscovery(id.MAC, id.Modifiers()...)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.GetOneOption(dhcpv4.OptionClientIdentifier); string(got) != "\x00abc" {
		t.Errorf("client id %q", got)
	}
	if m.HostName() != "web" {
		t.Errorf("hostname %q", m.HostName())
	}
	for _, o := range []dhcpv4.OptionCode{dhcpv4.OptionRouter, dhcpv4.OptionDomainNameServer, dhcpv4.OptionDomainName, dhcpv4.OptionRenewTimeValue, dhcpv4.OptionClasslessStaticRoute} {
		if !m.IsOptionRequested(o) {
			t.Errorf("option %v not requested", o)
		}
	}
}

// jumpClock is a fake clock whose waits return at once and move time on.
type jumpClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *jumpClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *jumpClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d > 0 {
		c.now = c.now.Add(d)
	}
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

// script is a fake server: each call takes the next answer.
type script struct {
	clock   *jumpClock
	answers []string // "ack", "ack-new" (another address), "nak", "none"
	calls   []string
	stop    context.CancelFunc
}

func (s *script) next(kind string, l *Lease) (*Lease, error) {
	s.calls = append(s.calls, fmt.Sprintf("%s@%v", kind, s.clock.Now().Sub(t0)))
	if len(s.answers) == 0 {
		s.stop()
		return nil, context.Canceled
	}
	a := s.answers[0]
	s.answers = s.answers[1:]
	addr := netip.MustParsePrefix("198.18.1.100/24")
	if l != nil {
		addr = l.Addr
	}
	switch a {
	case "nak":
		return nil, ErrNAK
	case "none":
		return nil, ErrNoAnswer
	case "gone":
		return nil, ErrGone
	case "ack-new":
		addr = netip.MustParsePrefix("198.18.1.101/24")
	}
	return &Lease{Addr: addr, Duration: 120 * time.Second, T1: 60 * time.Second, T2: 105 * time.Second, Acquired: s.clock.Now()}, nil
}

func (s *script) Acquire(ctx context.Context, id Identity) (*Lease, error) {
	return s.next("acquire", nil)
}
func (s *script) Extend(ctx context.Context, id Identity, l *Lease, rebind bool) (*Lease, error) {
	k := "renew"
	if rebind {
		k = "rebind"
	}
	return s.next(k, l)
}
func (s *script) Release(id Identity, l *Lease) error { return errors.New("not used") }

type binds struct{ log []string }

func (b *binds) Bind(prev, next *Lease) error {
	p := "-"
	if prev != nil {
		p = prev.Addr.String()
	}
	b.log = append(b.log, "bind "+p+" -> "+next.Addr.String())
	return nil
}
func (b *binds) Unbind(l *Lease) error { b.log = append(b.log, "unbind "+l.Addr.String()); return nil }

func TestKeeper(t *testing.T) {
	for _, tc := range []struct {
		name      string
		answers   []string
		wantCalls []string
		wantBinds []string
		changes   int
	}{{
		name:      "renews at T1",
		answers:   []string{"ack", "ack"},
		wantCalls: []string{"renew@1m0s", "renew@2m0s", "renew@3m0s"},
		wantBinds: []string{"bind 198.18.1.100/24 -> 198.18.1.100/24", "bind 198.18.1.100/24 -> 198.18.1.100/24"},
		changes:   2,
	}, {
		// Unanswered renewals retry at half the time to T2 (at least 10 s),
		// then rebind at T2, then give the address up at the end and
		// start over.
		name:      "rebinds at T2, loses the lease at the end",
		answers:   []string{"none", "none", "none", "none", "none", "none", "ack"},
		wantCalls: []string{"renew@1m0s", "renew@1m22.5s", "renew@1m33.75s", "renew@1m43.75s", "rebind@1m45s", "rebind@1m55s", "acquire@2m0s", "renew@3m0s"},
		wantBinds: []string{"unbind 198.18.1.100/24", "bind - -> 198.18.1.100/24"},
		changes:   2,
	}, {
		name:      "NAK gives the address up",
		answers:   []string{"nak", "none", "ack"},
		wantCalls: []string{"renew@1m0s", "acquire@1m0s", "acquire@1m10s", "renew@2m10s"},
		wantBinds: []string{"unbind 198.18.1.100/24", "bind - -> 198.18.1.100/24"},
		changes:   2,
	}, {
		name:      "a new address replaces the old one",
		answers:   []string{"ack-new"},
		wantCalls: []string{"renew@1m0s", "renew@2m0s"},
		wantBinds: []string{"bind 198.18.1.100/24 -> 198.18.1.101/24"},
		changes:   1,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			clock := &jumpClock{now: t0}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s := &script{clock: clock, answers: tc.answers, stop: cancel}
			b := &binds{}
			changes := 0
			k := &Keeper{Ex: s, Binder: b, Clock: clock, MinRetry: 10 * time.Second, Changed: func(*Lease) { changes++ }}
			first := &Lease{Addr: netip.MustParsePrefix("198.18.1.100/24"), Duration: 120 * time.Second, T1: 60 * time.Second, T2: 105 * time.Second, Acquired: t0}
			if err := k.Run(ctx, first); !errors.Is(err, context.Canceled) {
				t.Fatalf("run: %v", err)
			}
			if d := cmp.Diff(tc.wantCalls, s.calls); d != "" {
				t.Errorf("calls (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tc.wantBinds, b.log); d != "" {
				t.Errorf("binds (-want +got):\n%s", d)
			}
			if changes != tc.changes {
				t.Errorf("%d changes, want %d", changes, tc.changes)
			}
		})
	}
}

func TestKeeperStopsWhenGone(t *testing.T) {
	clock := &jumpClock{now: t0}
	s := &script{clock: clock, answers: []string{"none", "gone"}, stop: func() {}}
	b := &binds{}
	k := &Keeper{Ex: s, Binder: b, Clock: clock, MinRetry: 10 * time.Second}
	first := &Lease{Addr: netip.MustParsePrefix("198.18.1.100/24"), Duration: 120 * time.Second, T1: 60 * time.Second, T2: 105 * time.Second, Acquired: t0}
	if err := k.Run(context.Background(), first); !errors.Is(err, ErrGone) {
		t.Fatalf("run: %v", err)
	}
	if len(b.log) != 0 {
		t.Errorf("binds %v", b.log)
	}
}

// The package stays free of kernel access: no netlink, no namespaces.
func TestPure(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, d := range strings.Fields(string(out)) {
		for _, k := range []string{"github.com/vishvananda/", "github.com/mdlayher/packet", "github.com/berthnet/berth/internal/netns", "github.com/berthnet/berth/internal/link"} {
			if strings.HasPrefix(d, k) {
				t.Errorf("internal/dhcp depends on %s", d)
			}
		}
	}
}

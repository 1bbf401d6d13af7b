package firewalld

import (
	"bytes"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/berthnet/berth/internal/firewall"
)

// recorder is an inner driver that records its calls.
type recorder struct{ calls []string }

func (r *recorder) Name() string { return "inner" }
func (r *recorder) Setup(nets []firewall.NetworkRules, ports []firewall.PortForward) error {
	r.calls = append(r.calls, "setup")
	return nil
}
func (r *recorder) Teardown(ports []firewall.PortForward, complete []firewall.NetworkRules) error {
	r.calls = append(r.calls, "teardown")
	return nil
}
func (r *recorder) Reset() error { r.calls = append(r.calls, "reset"); return nil }

// healer is an inner driver with firewall.Checker and firewall.Healer.
type healer struct{ recorder }

func (*healer) HasNetwork(string) (bool, error)          { return true, nil }
func (*healer) HasForwards([]firewall.PortForward) error { return nil }
func (*healer) Damage([]firewall.NetworkRules, []firewall.PortForward) ([]string, error) {
	return nil, nil
}
func (*healer) Unannounced() bool                                            { return true }
func (*healer) Repair([]firewall.NetworkRules, []firewall.PortForward) error { return nil }

// repairer heals but is no firewall.Checker (the iptables driver).
type repairer struct{ recorder }

func (*repairer) Damage([]firewall.NetworkRules, []firewall.PortForward) ([]string, error) {
	return nil, nil
}
func (*repairer) Repair([]firewall.NetworkRules, []firewall.PortForward) error { return nil }

// versioned is a healer that also numbers its changes.
type versioned struct{ healer }

func (*versioned) Mark() (firewall.Generation, error) {
	return firewall.Generation{NetNS: 1, ID: 7}, nil
}
func (*versioned) Followed() (firewall.Generation, bool) {
	return firewall.Generation{NetNS: 1, ID: 8}, true
}

func TestAlongsideKeepsFirewallVersioned(t *testing.T) {
	d := Alongside(&versioned{}, Options{API: newFake()})
	v, ok := d.(firewall.Versioned)
	if !ok {
		t.Fatal("lost firewall.Versioned")
	}
	if _, ok := d.(firewall.Healer); !ok {
		t.Error("lost firewall.Healer")
	}
	if g, ok := v.Followed(); !ok || g.ID != 8 {
		t.Errorf("Followed = %v, %v: not the inner driver's", g, ok)
	}
	if _, ok := Alongside(&healer{}, Options{API: newFake()}).(firewall.Versioned); ok {
		t.Error("an inner driver without generations became firewall.Versioned")
	}
}

func TestAlongsideTrustsTheSubnetsAndTakesBackOnlyItsOwn(t *testing.T) {
	f := newFake()
	f.permZones["trusted"] = []string{"10.99.0.0/16"}
	f.zones["trusted"] = []string{"10.99.0.0/16"}
	f.zones["public"] = []string{"10.98.0.0/16"}
	admin := firewall.NetworkRules{Name: "admin", Subnets: []netip.Prefix{netip.MustParsePrefix("10.99.0.0/16"), netip.MustParsePrefix("10.98.0.0/16")}}
	inner := &recorder{}
	d := Alongside(inner, Options{API: f})
	if err := d.Setup([]firewall.NetworkRules{netA, admin}, []firewall.PortForward{pfA}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"10.99.0.0/16", "10.89.3.0/24", "fd10:88:a::/64"}; !slices.Equal(f.zones["trusted"], want) {
		t.Errorf("trusted zone after setup: %q, want %q", f.zones["trusted"], want)
	}
	if err := d.Teardown([]firewall.PortForward{pfA}, []firewall.NetworkRules{netA, admin}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"10.99.0.0/16"}; !slices.Equal(f.zones["trusted"], want) {
		t.Errorf("trusted zone after teardown: %q, want %q", f.zones["trusted"], want)
	}
	if want := []string{"10.98.0.0/16"}; !slices.Equal(f.zones["public"], want) {
		t.Errorf("public zone after teardown: %q, want %q", f.zones["public"], want)
	}
	if want := []string{"setup", "teardown"}; !slices.Equal(inner.calls, want) {
		t.Errorf("inner calls %q", inner.calls)
	}
	if d.Name() != "inner" {
		t.Errorf("name %q", d.Name())
	}
}

func TestAlongsideStrictForwardPorts(t *testing.T) {
	noPorts := netA
	noPorts.DNSPort = 53
	for _, c := range []struct {
		strict  *string
		nets    []firewall.NetworkRules
		ports   []firewall.PortForward
		refused bool
		warning string
	}{
		{strict: ptr("yes"), nets: []firewall.NetworkRules{noPorts}, ports: []firewall.PortForward{pfA}, refused: true},
		{strict: ptr("Yes"), nets: []firewall.NetworkRules{netA}, refused: true}, // DNS on 5353 is a forward
		{strict: ptr("yes"), nets: []firewall.NetworkRules{noPorts}},
		{strict: ptr("no"), nets: []firewall.NetworkRules{netA}, ports: []firewall.PortForward{pfA}},
		{strict: ptr("invalid-value"), nets: []firewall.NetworkRules{netA}, ports: []firewall.PortForward{pfA},
			warning: "unexpected value from StrictForwardPorts property: invalid-value"},
		{nets: []firewall.NetworkRules{netA}, ports: []firewall.PortForward{pfA}},
	} {
		f := newFake()
		f.strict = c.strict
		var logs bytes.Buffer
		inner := &recorder{}
		err := Alongside(inner, Options{API: f, Logger: slog.New(slog.NewTextHandler(&logs, nil))}).Setup(c.nets, c.ports)
		if c.refused != errors.Is(err, ErrStrictForwardPorts) || (!c.refused && err != nil) {
			t.Errorf("%+v: %v", c, err)
		}
		if c.refused && len(inner.calls) != 0 {
			t.Errorf("%+v: the inner driver ran", c)
		}
		if c.warning != "" && !strings.Contains(logs.String(), c.warning) {
			t.Errorf("%+v: log %q lacks %q", c, logs.String(), c.warning)
		}
	}
}

func ptr(s string) *string { return &s }

func TestAlongsideWithoutFirewalldIsTheInnerDriver(t *testing.T) {
	f := newFake()
	f.stopped, f.strict = true, ptr("yes")
	inner := &recorder{}
	d := Alongside(inner, Options{API: f})
	if err := d.Setup([]firewall.NetworkRules{netA}, []firewall.PortForward{pfA}); err != nil {
		t.Fatal(err)
	}
	if err := d.Teardown([]firewall.PortForward{pfA}, []firewall.NetworkRules{netA}); err != nil {
		t.Fatal(err)
	}
	if len(f.calls) != 0 || len(inner.calls) != 2 {
		t.Errorf("firewalld calls %q, inner calls %q", f.calls, inner.calls)
	}
}

func TestAlongsideKeepsTheInnerDriversInterfaces(t *testing.T) {
	d := Alongside(&healer{}, Options{API: newFake()})
	if _, ok := d.(firewall.Checker); !ok {
		t.Error("lost firewall.Checker")
	}
	if _, ok := d.(firewall.Healer); !ok {
		t.Error("lost firewall.Healer")
	}
	if p, ok := d.(firewall.Polled); !ok || !p.Unannounced() {
		t.Error("lost firewall.Polled")
	}
	// A repair (firewall-reload after a firewalld reload) binds the
	// subnets again.
	f := newFake()
	d = Alongside(&healer{}, Options{API: f})
	if err := d.(firewall.Healer).Repair([]firewall.NetworkRules{netA}, nil); err != nil {
		t.Fatal(err)
	}
	if len(f.zones["trusted"]) != 2 {
		t.Errorf("trusted zone after repair: %q", f.zones["trusted"])
	}
	f = newFake()
	d = Alongside(&repairer{}, Options{API: f})
	if _, ok := d.(firewall.Healer); !ok {
		t.Error("a healer that is no checker lost firewall.Healer")
	} else if err := d.(firewall.Healer).Repair([]firewall.NetworkRules{netA}, nil); err != nil || len(f.zones["trusted"]) != 2 {
		t.Errorf("repair of a healer that is no checker: %v, trusted zone %q", err, f.zones["trusted"])
	}
	d = Alongside(&recorder{}, Options{API: newFake()})
	if _, ok := d.(firewall.Checker); ok {
		t.Error("a plain driver became a firewall.Checker")
	}
}

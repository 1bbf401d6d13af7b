package overlay

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/berthnet/berth/berthnet"
	"github.com/berthnet/berth/internal/overlay/agent"
)

// TestMain lets the privileged test run this test binary as the plugin and
// as the agent (inside a host namespace, through nsenter).
func TestMain(m *testing.M) {
	if os.Getenv("BO_OVERLAY_EXEC") == "1" {
		os.Exit(Main(os.Args, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func TestParseConf(t *testing.T) {
	c, err := parseConf([]byte(`{"cniVersion":"1.1.0","name":"ovl","type":"berth-overlay"}`))
	if err != nil || c.StateDir != agent.DefaultStateDir {
		t.Fatalf("parseConf = %+v, %v", c, err)
	}
	for _, bad := range []struct{ conf, want string }{
		{`{"cniVersion":"1.1.0","type":"berth-overlay"}`, "name: the network needs a name"},
		{`{"cniVersion":"1.1.0","name":"a/b","type":"berth-overlay"}`, `name "a/b"`},
		{`{"cniVersion":"1.1.0","name":"ovl","mtu":100}`, "mtu 100"},
		{`{"cniVersion":"1.1.0","name":"ovl","ipam":{"type":"host-local"}}`, "ipam: berth-overlay allocates"},
		{`{"name":`, "decode berth-overlay configuration"},
	} {
		_, err := parseConf([]byte(bad.conf))
		var e *types.Error
		if !errors.As(err, &e) || !strings.Contains(e.Msg, bad.want) {
			t.Errorf("parseConf(%s) = %v, want a CNI error naming %q", bad.conf, err, bad.want)
		}
	}
}

// The host's share of the overlay is an unmanaged bridge network the
// attach service accepts: the agent's bridge, subnet and gateway, a route
// to the range, the smaller MTU, and a default route only when asked for.
func TestBridgeNetwork(t *testing.T) {
	st := agent.HostState{Network: "ovl", Range: netip.MustParsePrefix("198.19.0.0/16"), Subnet: netip.MustParsePrefix("198.19.4.0/24"),
		Gateway: netip.MustParseAddr("198.19.4.1"), Bridge: "berthbr78", MTU: 1450}
	for _, tc := range []struct {
		conf    NetConf
		mtu     int
		noDefGW bool
	}{
		{NetConf{}, 1450, true},
		{NetConf{MTU: 1400, IsDefaultGateway: true}, 1400, false},
		{NetConf{MTU: 9000}, 1450, true},
	} {
		tc.conf.Name = "ovl"
		n := bridgeNetwork(&tc.conf, st)
		if n.Interface != "berthbr78" || n.Mode != "unmanaged" || n.MTU != tc.mtu || n.NoDefaultRoute != tc.noDefGW ||
			len(n.Subnets) != 1 || n.Subnets[0].Prefix != st.Subnet || n.Subnets[0].Gateway != st.Gateway ||
			len(n.Routes) != 1 || n.Routes[0].Destination != st.Range || n.Routes[0].Gateway != st.Gateway {
			t.Errorf("bridgeNetwork(%+v) = %+v", tc.conf, n)
		}
		h, err := berthnet.New(berthnet.Config{StateDir: t.TempDir(), Firewall: "none"})
		if err != nil {
			t.Fatal(err)
		}
		got, err := h.CreateNetwork(n)
		if err != nil {
			t.Fatalf("the attach service refuses %+v: %v", n, err)
		}
		if got.Mode != "unmanaged" || got.Interface != "berthbr78" {
			t.Errorf("stored as %+v", got)
		}
		h.Close()
	}
}

func TestCNIError(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code uint
	}{
		{fmt.Errorf("attach: %w", berthnet.ErrInvalid), types.ErrInvalidNetworkConfig},
		{fmt.Errorf("open netns: %w", os.ErrNotExist), types.ErrInvalidNetNS},
		{fmt.Errorf("attach: %w", berthnet.ErrInUse), types.ErrInternal},
		{types.NewError(types.ErrTryAgainLater, "later", ""), types.ErrTryAgainLater},
	} {
		var e *types.Error
		if err := cniError(tc.err); !errors.As(err, &e) || e.Code != tc.code {
			t.Errorf("cniError(%v) = %v, want code %d", tc.err, err, tc.code)
		}
	}
	if cniError(nil) != nil {
		t.Error("cniError(nil) is not nil")
	}
}

func TestSamePrefixes(t *testing.T) {
	held := []netip.Prefix{netip.MustParsePrefix("198.19.4.7/24")}
	ok := []*current.IPConfig{{Address: net.IPNet{IP: net.ParseIP("198.19.4.7"), Mask: net.CIDRMask(24, 32)}}}
	if err := samePrefixes(ok, held); err != nil {
		t.Error(err)
	}
	bad := []*current.IPConfig{{Address: net.IPNet{IP: net.ParseIP("198.19.4.8"), Mask: net.CIDRMask(24, 32)}}}
	if err := samePrefixes(bad, held); err == nil {
		t.Error("an address the attachment does not hold passed")
	}
}

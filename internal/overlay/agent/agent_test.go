package agent

import (
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"
)

func TestHostStateAndAgentLock(t *testing.T) {
	dir := t.TempDir()
	if Running(dir, "ovl") {
		t.Fatal("agent running without a lock file")
	}
	if _, err := ReadHostState(dir, "ovl"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ReadHostState of nothing = %v", err)
	}
	st := HostState{Network: "ovl", Range: netip.MustParsePrefix("198.19.0.0/16"), Subnet: netip.MustParsePrefix("198.19.4.0/24"),
		Gateway: netip.MustParseAddr("198.19.4.1"), Bridge: "bobr", VXLAN: "bovx", MTU: 1450, PID: 1}
	if err := WriteHostState(dir, st); err != nil {
		t.Fatal(err)
	}
	got, err := ReadHostState(dir, "ovl")
	if err != nil || got != st {
		t.Fatalf("ReadHostState = %+v, %v", got, err)
	}
	f, err := lockAgent(dir, "ovl")
	if err != nil {
		t.Fatal(err)
	}
	if !Running(dir, "ovl") {
		t.Fatal("Running = false while the lock is held")
	}
	if _, err := lockAgent(dir, "ovl"); err == nil || !strings.Contains(err.Error(), "another overlay agent") {
		t.Fatalf("second lock = %v", err)
	}
	f.Close()
	if Running(dir, "ovl") {
		t.Fatal("Running = true after the lock was dropped")
	}
}

func TestConfigDefaults(t *testing.T) {
	base := Config{Network: "ovl", Endpoints: []string{"http://198.18.0.1:2379"}}
	base.Overlay.Network = netip.MustParsePrefix("198.19.0.0/16")
	base.Overlay.VNI = 78
	c := base
	if err := c.defaults(); err != nil {
		t.Fatal(err)
	}
	if c.Prefix != "/berth/overlay/ovl" || c.VXLAN != "berth.78" || c.Bridge != "berthbr78" || c.Overlay.Port != 4789 || c.Overlay.SubnetLen != 24 {
		t.Fatalf("defaults: %+v", c)
	}
	for _, bad := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.Network = "" }, "--network"},
		{func(c *Config) { c.Endpoints = nil }, "--etcd-endpoints"},
		{func(c *Config) { c.Subnet = netip.MustParsePrefix("10.0.0.0/24") }, "--subnet 10.0.0.0/24"},
		{func(c *Config) { c.TTL = 1 }, "--lease-ttl"},
		{func(c *Config) { c.Bridge = "a-very-long-bridge-name" }, "longer than 15"},
		{func(c *Config) { c.Overlay.VNI = 0 }, "vni 0"},
	} {
		c := base
		bad.mod(&c)
		if err := c.defaults(); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("defaults() = %v, want an error naming %q", err, bad.want)
		}
	}
	if _, err := ParseEndpoints([]string{"198.18.0.1"}); err == nil {
		t.Error("ParseEndpoints accepted an endpoint without a port")
	}
}

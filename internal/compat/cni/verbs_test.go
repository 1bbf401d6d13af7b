package cni

import (
	"errors"
	"fmt"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/berthnet/berth/berthnet"
)

// The verb table reads the configuration once, before the verb, leaves a
// missing verb a no-op that reads nothing, and turns every error into a
// CNI error.
func TestVerbTable(t *testing.T) {
	parsed := 0
	v := verbs[string]{
		parse: func(r *request) (string, error) {
			parsed++
			if string(r.StdinData) == "bad" {
				return "", invalid("mtu", "bad")
			}
			return string(r.StdinData), nil
		},
		add: func(r *request, c string) error {
			if c != "conf" || r.ContainerID != "c1" {
				t.Errorf("add got %q for %q", c, r.ContainerID)
			}
			return nil
		},
		del: func(*request, string) error { return fmt.Errorf("detach: %w", berthnet.ErrInUse) },
	}
	f := v.funcs(Env{})
	if err := f.Add(&skel.CmdArgs{ContainerID: "c1", StdinData: []byte("conf")}); err != nil || parsed != 1 {
		t.Errorf("ADD: %v, parsed %d times", err, parsed)
	}
	code := func(err error) uint {
		var e *types.Error
		if !errors.As(err, &e) {
			t.Fatalf("%v is not a CNI error", err)
		}
		return e.Code
	}
	if c := code(f.Add(&skel.CmdArgs{StdinData: []byte("bad")})); c != types.ErrInvalidNetworkConfig {
		t.Errorf("bad configuration: code %d", c)
	}
	if c := code(f.Del(&skel.CmdArgs{StdinData: []byte("conf")})); c != ErrAddressInUse {
		t.Errorf("core error: code %d", c)
	}
	parsed = 0
	if err := f.Status(&skel.CmdArgs{StdinData: []byte("bad")}); err != nil || parsed != 0 {
		t.Errorf("missing STATUS: %v, parsed %d times", err, parsed)
	}
}

// Without a delegator, a foreign IPAM plugin's verb is refused naming the
// binary that has one, instead of panicking.
func TestIPAMCallWithoutDelegate(t *testing.T) {
	err := ipamCall(&request{CmdArgs: &skel.CmdArgs{}}, "host-local", "DEL")
	var e *types.Error
	if !errors.As(err, &e) || e.Code != types.ErrPluginNotAvailable {
		t.Errorf("got %v", err)
	}
	if err := ipamCall(&request{CmdArgs: &skel.CmdArgs{}}, "", "DEL"); err != nil {
		t.Errorf("no IPAM: %v", err)
	}
}

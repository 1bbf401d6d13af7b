package cni

import (
	"errors"
	"net"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/berthnet/berth/internal/core"
)

// berth-cni also answers as "loopback": containerd's CRI runs a plugin of
// that name from its plugin directory for every pod, so a directory of
// berth's plugins alone serves it. As the reference plugin: ADD sets lo up
// and reports it with 127.0.0.1/8 and ::1/128, DEL sets it down (a gone
// namespace is not an error), CHECK wants it up.

// loopbackVerbs is loopback: ADD reads its configuration itself, DEL must
// not fail on one it cannot read.
var loopbackVerbs = verbs[struct{}]{add: loopbackAdd, del: loopbackDel, check: loopbackCheck}

// netnsError is a CNI error for a failure in the container's namespace.
func netnsError(err error) error {
	if errors.Is(err, core.ErrNetns) {
		return types.NewError(types.ErrInvalidNetNS, err.Error(), "")
	}
	return types.NewError(types.ErrInternal, err.Error(), "")
}

func loopbackAdd(args *request, _ struct{}) error {
	var conf types.PluginConf
	if err := parseConf(args.StdinData, &conf, &conf); err != nil {
		return err
	}
	if err := core.Loopback(args.Netns, true); err != nil {
		return netnsError(err)
	}
	var r types.Result
	if conf.PrevResult != nil {
		r = conf.PrevResult // as the reference: a chained loopback passes its input on
	} else {
		zero := 0
		res := &current.Result{CNIVersion: current.ImplementedSpecVersion, Interfaces: []*current.Interface{{Name: "lo", Mac: "00:00:00:00:00:00", Sandbox: args.Netns}}}
		res.IPs = []*current.IPConfig{
			{Interface: &zero, Address: net.IPNet{IP: net.IPv4(127, 0, 0, 1), Mask: net.CIDRMask(8, 32)}},
			{Interface: &zero, Address: net.IPNet{IP: net.IPv6loopback, Mask: net.CIDRMask(128, 128)}},
		}
		r = res
	}
	return types.PrintResult(r, conf.CNIVersion)
}

func loopbackDel(args *request, _ struct{}) error {
	if args.Netns != "" {
		_ = core.Loopback(args.Netns, false) // best effort, as the reference; a gone namespace has nothing to undo
	}
	return nil
}

func loopbackCheck(args *request, _ struct{}) error {
	up, err := core.LoopbackIsUp(args.Netns)
	if err != nil {
		return netnsError(err)
	}
	if !up {
		return types.NewError(ErrCheckFailed, "lo is down", "")
	}
	return nil
}

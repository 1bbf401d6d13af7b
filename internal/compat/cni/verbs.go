package cni

import (
	"context"
	"errors"
	"fmt"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/berthnet/berth/berthnet"
)

// request is one call of a plugin: the CNI arguments with the program's
// optional parts.
type request struct {
	*skel.CmdArgs
	ctx context.Context
	env Env
}

// verbs is one plugin: how it reads its configuration and what each verb
// does with it. The configuration is read once per call, before the verb
// runs; every error leaves as a CNI error with the code that fits
// (cniError). A nil verb succeeds without reading the configuration.
type verbs[C any] struct {
	parse                       func(r *request) (C, error)
	add, del, check, status, gc func(r *request, c C) error
}

// funcs is the table skel dispatches on, for a program with env.
func (v verbs[C]) funcs(env Env) skel.CNIFuncs {
	h := func(f func(*request, C) error) func(*skel.CmdArgs) error {
		return func(args *skel.CmdArgs) error {
			if f == nil {
				return nil
			}
			return cniError(v.run(&request{CmdArgs: args, ctx: context.Background(), env: env}, f))
		}
	}
	return skel.CNIFuncs{Add: h(v.add), Del: h(v.del), Check: h(v.check), Status: h(v.status), GC: h(v.gc)}
}

// run reads the configuration of r and runs verb f on it (also how a main
// plugin runs berth-ipam in process).
func (v verbs[C]) run(r *request, f func(*request, C) error) error {
	var c C
	if v.parse != nil {
		var err error
		if c, err = v.parse(r); err != nil {
			return err
		}
	}
	return f(r, c)
}

// parseConf decodes a plugin configuration into v, whose embedded
// PluginConf is pc, and parses its prevResult.
func parseConf(stdin []byte, v any, pc *types.PluginConf) error {
	if err := decode(stdin, v); err != nil {
		return err
	}
	if err := version.ParsePrevResult(pc); err != nil {
		return types.NewError(types.ErrDecodingFailure, "prevResult: "+err.Error(), "")
	}
	return nil
}

// chained starts a plugin's result from the configuration's prevResult.
func chained(pc *types.PluginConf) *current.Result {
	res := &current.Result{CNIVersion: current.ImplementedSpecVersion}
	if prev, err := prevResult(pc); err == nil && prev != nil {
		res.Interfaces, res.IPs, res.Routes, res.DNS = prev.Interfaces, prev.IPs, prev.Routes, prev.DNS
	}
	return res
}

// attacher is the configuration of a main plugin (berth-bridge,
// berth-macvlan): what the shared DEL, CHECK, STATUS and GC need to know.
type attacher interface {
	// host opens the berthnet Host of the plugin's state.
	host(r *request) (*berthnet.Host, error)
	// ipamType is the IPAM plugin whose verbs follow the plugin's own:
	// "" for none, IPAM (run in process) or a foreign plugin's name.
	ipamType() string
	// handOver replaces this process with berth-cni-dhcp when the call
	// needs a part this program lacks; nil when it can go on.
	handOver(r *request) error
	// checkInput validates CHECK's input (prevResult) before the check.
	checkInput(r *request) error
	// ready is STATUS's own part: whether an ADD could be served.
	ready(r *request) error
	// collected is the network GC collects from.
	collected() berthnet.Network
	// published are the ports the plugin publishes itself (the
	// portMappings capability), which DEL removes.
	published() []berthnet.PortMapping
}

// attachVerbs is a main plugin's table: its ADD and the shared DEL,
// CHECK, STATUS and GC over berthnet and the IPAM plugin.
func attachVerbs[C attacher](parse func(*request) (C, error), add func(*request, C) error) verbs[C] {
	return verbs[C]{parse: parse, add: add, del: attachDel[C], check: attachCheck[C], status: attachStatus[C], gc: attachGC[C]}
}

// onHost runs first (a hand-over or a check of the input), then fn with
// the plugin's Host open.
func onHost[C attacher](r *request, c C, first func(*request) error, fn func(*berthnet.Host) error) error {
	if err := first(r); err != nil {
		return err
	}
	h, err := c.host(r)
	if err != nil {
		return err
	}
	defer h.Close()
	return fn(h)
}

// attachDel detaches the container's interface, then releases its
// addresses; it carries on past errors. An ADD killed before it recorded
// the attachment is undone from the request (berthnet.DetachAttempt):
// the runtime's DEL is what recovers from it.
func attachDel[C attacher](r *request, c C) error {
	return onHost(r, c, c.handOver, func(h *berthnet.Host) error {
		o := berthnet.AttachOptions{ContainerID: r.ContainerID, Netns: r.Netns, Interface: r.IfName, Ports: c.published()}
		return errors.Join(h.DetachAttempt(r.ctx, c.collected(), o), ipamCall(r, c.ipamType(), "DEL"))
	})
}

func attachCheck[C attacher](r *request, c C) error {
	return onHost(r, c, c.checkInput, func(h *berthnet.Host) error {
		if err := h.Check(r.ctx, r.ContainerID, r.IfName); err != nil {
			if errors.Is(err, berthnet.ErrNotFound) {
				return types.NewError(types.ErrUnknownContainer, err.Error(), "")
			}
			return types.NewError(ErrCheckFailed, err.Error(), "")
		}
		return ipamCall(r, c.ipamType(), "CHECK")
	})
}

func attachStatus[C attacher](r *request, c C) error {
	if err := c.ready(r); err != nil {
		return err
	}
	return ipamCall(r, c.ipamType(), "STATUS")
}

// attachGC detaches every attachment of the network that is not in the
// valid list (links, rules, addresses), then has the IPAM plugin collect
// too.
func attachGC[C attacher](r *request, c C) error {
	keep, err := validAttachments(r.StdinData)
	if err != nil {
		return err
	}
	return onHost(r, c, c.handOver, func(h *berthnet.Host) error {
		_, err := h.Collect(r.ctx, c.collected(), func(ctr, ifn string) bool { return keep[ctr+"/"+ifn] })
		return errors.Join(err, ipamCall(r, c.ipamType(), "GC"))
	})
}

// ipamCall runs verb (DEL, CHECK, STATUS, GC) of the IPAM plugin typ:
// berth-ipam in this process, any other by delegation.
func ipamCall(r *request, typ, verb string) error {
	switch typ {
	case "":
		return nil
	case IPAM:
		f := map[string]func(*request, *ipamRequest) error{"DEL": ipamDel, "CHECK": ipamCheck, "STATUS": ipamStatus, "GC": ipamGC}[verb]
		return ipamVerbs.run(r, f)
	}
	if r.env.Delegate == nil {
		return types.NewError(types.ErrPluginNotAvailable, fmt.Sprintf("IPAM plugin %s: delegation needs %s", typ, DHCPBinary), "")
	}
	return r.env.Delegate.Call(r.ctx, verb, typ, r.StdinData)
}

package cni

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/berthnet/berth/berthnet"
)

// Env is what the program that links the plugins adds to them. berth-cni
// runs them with the zero Env: the libraries behind these parts (the DHCP
// proxy's gRPC client; libcni's pkg/invoke, with net/http, TLS and
// OpenTelemetry) are a large part of a binary and about 0.3 ms of every
// plugin start, for cases berth's own chain (berth-ipam in process) never
// has. A call that needs a missing part is handed to berth-cni-dhcp, which
// has both, by replacing this process (needFull, needDHCP).
type Env struct {
	// DHCP makes a client of the DHCP proxy at socket ("" for its
	// default), for berth-macvlan with berth-ipam in mode dhcp.
	DHCP func(socket string) berthnet.DHCPClient
	// Delegate runs foreign IPAM plugins (host-local, dhcp, static: the
	// spec's delegation, executed from CNI_PATH).
	Delegate Delegator
}

// Delegator runs another plugin on the same CNI environment.
type Delegator interface {
	// Add runs ADD and returns the plugin's result.
	Add(ctx context.Context, plugin string, conf []byte) (types.Result, error)
	// Call runs CNI_COMMAND verb (DEL, CHECK, STATUS, GC), which has no
	// result.
	Call(ctx context.Context, verb, plugin string, conf []byte) error
}

// needFull hands the call to berth-cni-dhcp, replacing this process, when
// the configuration conf of a main plugin names a foreign IPAM plugin and
// this binary cannot delegate. It returns only on failure, and nil when
// this process can go on (a configuration it cannot decode is left to the
// plugin, which reports it).
func needFull(plugin string, conf []byte, env Env) *fullError {
	if (plugin != Bridge && plugin != Macvlan) || env.Delegate != nil {
		return nil
	}
	var c struct {
		CNIVersion string `json:"cniVersion"`
		IPAM       struct {
			Type string `json:"type"`
		} `json:"ipam"`
	}
	if json.Unmarshal(conf, &c) != nil || c.IPAM.Type == "" || c.IPAM.Type == IPAM {
		return nil
	}
	err := reexecFull(plugin, conf)
	var e *types.Error
	if !errors.As(err, &e) {
		e = types.NewError(types.ErrInternal, err.Error(), "")
	}
	return &fullError{cniVersion: c.CNIVersion, err: e}
}

// fullError is a failed hand-over with the configuration's version.
type fullError struct {
	cniVersion string
	err        *types.Error
}

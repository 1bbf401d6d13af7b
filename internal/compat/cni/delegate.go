package cni

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/containernetworking/cni/pkg/types"
)

// Delegation to a foreign IPAM plugin (host-local, dhcp, static: the
// spec's delegation, executed from CNI_PATH). berth-cni leaves these nil:
// the library that does it (libcni's pkg/invoke) brings net/http, TLS and
// OpenTelemetry along — a quarter of the binary and about 0.3 ms of every
// plugin start — for a case berth's own chain (berth-ipam in process) never
// has. Main hands a call that needs them to berth-cni-dhcp, which sets them
// (package cni/delegate), by replacing this process (needFull).
var (
	DelegateAdd func(ctx context.Context, plugin string, conf []byte) (types.Result, error)
	// DelegateCall runs CNI_COMMAND verb (DEL, CHECK, STATUS, GC),
	// which has no result.
	DelegateCall func(ctx context.Context, verb, plugin string, conf []byte) error
)

// needFull hands the call to berth-cni-dhcp, replacing this process, when
// the configuration conf of a main plugin names a foreign IPAM plugin and
// this binary cannot delegate. It returns only on failure, and nil when
// this process can go on (a configuration it cannot decode is left to the
// plugin, which reports it).
func needFull(plugin string, conf []byte) *fullError {
	if (plugin != Bridge && plugin != Macvlan) || DelegateAdd != nil {
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

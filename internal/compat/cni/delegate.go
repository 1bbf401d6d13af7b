package cni

import (
	"context"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
)

// Delegation to a foreign IPAM plugin (host-local, dhcp, static: the
// spec's delegation, executed from CNI_PATH). berth-cni leaves these nil:
// the library that does it (libcni's pkg/invoke) brings net/http, TLS and
// OpenTelemetry along — a quarter of the binary and about 0.3 ms of every
// plugin start — for a case berth's own chain (berth-ipam in process) never
// has. A call that needs them is handed to berth-cni-dhcp, which sets them
// (package cni/delegate), by replacing this process (needFull).
var (
	DelegateAdd func(ctx context.Context, plugin string, conf []byte) (types.Result, error)
	// DelegateCall runs CNI_COMMAND verb (DEL, CHECK, STATUS, GC),
	// which has no result.
	DelegateCall func(ctx context.Context, verb, plugin string, conf []byte) error
)

// needFull hands the call to berth-cni-dhcp when the network's IPAM is a
// foreign plugin and this binary cannot delegate; it returns only on
// failure, and nil when this process can go on.
func needFull(plugin, ipamType string, args *skel.CmdArgs) error {
	if ipamType == "" || ipamType == IPAM || DelegateAdd != nil {
		return nil
	}
	return reexecFull(plugin, args.StdinData)
}

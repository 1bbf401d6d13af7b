// Package delegate gives berth's CNI plugins delegation to foreign IPAM
// plugins through libcni's pkg/invoke. It is linked into berth-cni-dhcp
// only, which passes Invoke as cni.Env.Delegate.
package delegate

import (
	"context"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/berthnet/berth/internal/compat/cni"
)

// Invoke runs plugins from CNI_PATH with libcni's pkg/invoke.
type Invoke struct{}

var _ cni.Delegator = Invoke{}

// Add implements cni.Delegator.
func (Invoke) Add(ctx context.Context, plugin string, conf []byte) (types.Result, error) {
	return invoke.DelegateAdd(ctx, plugin, conf, nil)
}

// Call implements cni.Delegator.
func (Invoke) Call(ctx context.Context, verb, plugin string, conf []byte) error {
	switch verb {
	case "DEL":
		return invoke.DelegateDel(ctx, plugin, conf, nil)
	case "CHECK":
		return invoke.DelegateCheck(ctx, plugin, conf, nil)
	case "STATUS":
		return invoke.DelegateStatus(ctx, plugin, conf, nil)
	case "GC":
		return invoke.DelegateGC(ctx, plugin, conf, nil)
	}
	return types.NewError(types.ErrInvalidEnvironmentVariables, "cannot delegate CNI_COMMAND "+verb, "")
}

// Package delegate gives berth's CNI plugins delegation to foreign IPAM
// plugins through libcni's pkg/invoke. It is linked into berth-cni-dhcp
// only (see cni.DelegateAdd): importing it sets the delegation hooks.
package delegate

import (
	"context"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/berthnet/berth/internal/compat/cni"
)

func init() {
	cni.DelegateAdd = func(ctx context.Context, plugin string, conf []byte) (types.Result, error) {
		return invoke.DelegateAdd(ctx, plugin, conf, nil)
	}
	cni.DelegateCall = func(ctx context.Context, verb, plugin string, conf []byte) error {
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
}

package cni

import (
	"errors"
	"fmt"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/berthnet/berth/berthnet"
	"github.com/berthnet/berth/internal/firewall"
	"github.com/berthnet/berth/internal/network"
)

// Errors of the core become the CNI code that fits by their sentinel,
// however they are wrapped and whatever their text says.
func TestCNIErrorCodes(t *testing.T) {
	portTaken := fmt.Errorf("%w: 8080/tcp is already published to 198.18.0.2:80", firewall.ErrPortInUse)
	for _, tc := range []struct {
		name string
		err  error
		want uint
	}{
		{"port in use, as the firewall driver says it", portTaken, ErrPortInUse},
		{"port in use, as berthnet wraps it", fmt.Errorf("attach c1 to network n: %w: %w", berthnet.ErrInUse, portTaken), ErrPortInUse},
		{"port in use, text without 'host port'", fmt.Errorf("setup: %w", firewall.ErrPortInUse), ErrPortInUse},
		{"address in use mentioning a host port", fmt.Errorf("%w: address 198.18.0.2 (host port 80 is fine)", berthnet.ErrInUse), ErrAddressInUse},
		{"invalid", fmt.Errorf("mtu: %w", network.ErrInvalid), types.ErrInvalidNetworkConfig},
		{"other", errors.New("boom"), types.ErrInternal},
	} {
		var e *types.Error
		if !errors.As(cniError(tc.err), &e) || e.Code != tc.want {
			t.Errorf("%s: %v became %+v, want code %d", tc.name, tc.err, e, tc.want)
		}
	}
	if cniError(nil) != nil {
		t.Error("nil error became an error")
	}
}

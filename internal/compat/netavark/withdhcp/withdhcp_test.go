package withdhcp

import (
	"testing"

	"github.com/berthnet/berth/internal/compat/netavark"
	"github.com/berthnet/berth/internal/core"
	"github.com/berthnet/berth/internal/dhcpproxy"
)

// The front-end's flag defaults and the proxy's own defaults are the same
// values, kept in two places so that the small netavark binary does not
// link the proxy.
func TestDefaultsAgree(t *testing.T) {
	if netavark.DefaultProxyDir != dhcpproxy.DefaultDir {
		t.Errorf("dir: front-end %q, proxy %q", netavark.DefaultProxyDir, dhcpproxy.DefaultDir)
	}
	if netavark.DefaultProxyTimeout != dhcpproxy.DefaultTimeout {
		t.Errorf("timeout: front-end %v, proxy %v", netavark.DefaultProxyTimeout, dhcpproxy.DefaultTimeout)
	}
	if netavark.DefaultProxyActivityTimeout != dhcpproxy.DefaultActivityTimeout {
		t.Errorf("activity timeout: front-end %v, proxy %v", netavark.DefaultProxyActivityTimeout, dhcpproxy.DefaultActivityTimeout)
	}
	if core.DefaultDHCPMetric != dhcpproxy.DefaultMetric {
		t.Errorf("metric: core %d, proxy %d", core.DefaultDHCPMetric, dhcpproxy.DefaultMetric)
	}
	e := Env(netavark.Env{})
	if e.DHCP == nil || e.ServeDHCPProxy == nil {
		t.Fatal("Env left the DHCP client or the proxy server unset")
	}
}

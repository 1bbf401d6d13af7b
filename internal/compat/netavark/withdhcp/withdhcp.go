// Package withdhcp completes the netavark front-end's environment with the
// DHCP proxy (client and server, gRPC). It is kept apart so that the small
// bin/netavark, which hands DHCP work to the berth binary, does not link
// gRPC and protobuf and starts faster.
package withdhcp

import (
	"context"
	"net"

	"github.com/berthnet/berth/internal/compat/netavark"
	"github.com/berthnet/berth/internal/dhcpproxy"
)

// Env returns e with the DHCP client and the proxy server set.
func Env(e netavark.Env) netavark.Env {
	e.DHCP = dhcpproxy.Leaser{}
	e.ServeDHCPProxy = serve
	return e
}

func serve(ctx context.Context, c netavark.ProxyConfig) error {
	ln := c.Listener
	if ln == nil {
		l, err := dhcpproxy.Listen(c.SocketDir)
		if err != nil {
			return err
		}
		ln = l
	}
	defer func(l net.Listener) { l.Close() }(ln)
	srv, err := dhcpproxy.New(dhcpproxy.Config{
		Dir:             c.Dir,
		Timeout:         c.Timeout,
		ActivityTimeout: c.ActivityTimeout,
		Logger:          c.Logger,
		Wording:         proxyWording,
	})
	if err != nil {
		return err
	}
	return srv.Serve(ctx, ln)
}

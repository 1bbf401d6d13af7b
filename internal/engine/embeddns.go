package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/berthnet/berth/internal/embeddns"
	"github.com/berthnet/berth/internal/netns"
	"github.com/berthnet/berth/internal/resolvconf"
)

// Docker's embedded DNS: a container a Docker client created on a
// user-defined network resolves through 127.0.0.11, which its monitor
// serves inside the container's namespace by forwarding to the DNS
// servers of the container's networks (berth's DNS server on each
// gateway), from the container's own addresses.

// embeddedResolvConf is the container's /etc/resolv.conf with the
// embedded resolver: 127.0.0.11 alone (it forwards everything), the
// networks' and host's search domains, and Docker's ndots:0.
func embeddedResolvConf(host resolvconf.File, c *Container, f netFacts) []byte {
	opts := append([]string{"ndots:0"}, c.Config.DNS.Options...)
	return resolvconf.Build(resolvconf.Params{
		Host:           resolvconf.File{Search: host.Search},
		PrivateNetNS:   true,
		NetworkServers: []netip.Addr{embeddns.Address},
		NetworkSearch:  f.search,
		Search:         c.Config.DNS.Search,
		Options:        opts,
	}).Bytes()
}

// embeddedUpstreams are the DNS servers of c's networks, in the order
// the container names its networks.
func embeddedUpstreams(c *Container) []netip.AddrPort {
	var out []netip.AddrPort
	seen := map[netip.Addr]bool{}
	add := func(name string) {
		for _, a := range c.State.Networks[name].DNSServerIPs {
			if !seen[a] {
				seen[a] = true
				out = append(out, netip.AddrPortFrom(a, 53))
			}
		}
	}
	for _, a := range c.State.Attachments {
		add(a.Network.Name)
	}
	for name := range c.State.Networks {
		add(name)
	}
	return out
}

// ServeEmbeddedDNS starts the 127.0.0.11 resolver of container id in its
// namespace when the container asks for one; stop ends it. It returns a
// nil stop when the container has none.
func (e *Engine) ServeEmbeddedDNS(id string) (stop func(), err error) {
	c, err := e.Get(id)
	if err != nil {
		return nil, err
	}
	if !c.Config.EmbeddedDNS || len(c.Config.DNS.Servers) > 0 {
		return nil, nil
	}
	ups := embeddedUpstreams(c)
	if len(ups) == 0 {
		return nil, errors.New("embedded DNS: none of the container's networks has a DNS server")
	}
	ns, err := netns.Open(c.State.NetNS)
	if err != nil {
		return nil, fmt.Errorf("embedded DNS: %w", err)
	}
	var pc net.PacketConn
	var ln net.Listener
	addr := netip.AddrPortFrom(embeddns.Address, 53).String()
	err = ns.Do(func() error {
		var err error
		if pc, err = net.ListenPacket("udp", addr); err != nil {
			return err
		}
		if ln, err = net.Listen("tcp", addr); err != nil {
			pc.Close()
		}
		return err
	})
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("embedded DNS: listen on %s in the container: %w", addr, err)
	}
	srv, err := embeddns.New(embeddns.Config{
		Upstreams: ups,
		Logger:    e.cfg.Logger,
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := ns.Do(func() error {
				var err error
				c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
	})
	if err != nil {
		pc.Close()
		ln.Close()
		ns.Close()
		return nil, err
	}
	srv.Serve(pc, ln)
	return func() {
		srv.Close()
		ns.Close()
	}, nil
}

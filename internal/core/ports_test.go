package core

import (
	"testing"

	"github.com/berthnet/berth/internal/network"
)

// The network that carries a container's published ports is decided from
// what is recorded for it: its first managed, non-internal bridge network.
func TestPortsHere(t *testing.T) {
	sess, err := store{dir: t.TempDir()}.open()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.close()
	br := func(name string) network.Network {
		return network.Network{Name: name, Driver: network.DriverBridge, NetworkInterface: "br-" + name}
	}
	internal := br("int")
	internal.Internal = true
	opts := func(id string, ports bool, nets ...network.Network) *network.Options {
		o := &network.Options{ContainerID: id, NetworkInfo: map[string]network.Network{}}
		if ports {
			o.PortMappings = []network.PortMapping{{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}}
		}
		for _, n := range nets {
			o.Networks = append(o.Networks, network.NamedNetworkOptions{Name: n.Name, PerNetworkOptions: network.PerNetworkOptions{InterfaceName: "eth0"}})
			o.NetworkInfo[n.Name] = n
		}
		return o
	}
	const ns = "/run/netns/c"
	// A first setup: its first bridge network carries them.
	if !sess.portsHere(ns, opts("c1", true, internal, br("a"), br("b"))) {
		t.Error("first setup should publish")
	}
	if sess.portsHere(ns, opts("c1", false, br("a"))) {
		t.Error("no ports, nothing to publish")
	}
	if err := sess.save(ns, opts("c1", true, br("a"))); err != nil {
		t.Fatal(err)
	}
	// Connecting b: a carries them already.
	if sess.portsHere(ns, opts("c1", true, br("b"))) {
		t.Error("a second network must not publish the ports again")
	}
	// Tearing down b leaves them, tearing down a takes them.
	if err := sess.save(ns, opts("c1", true, br("b"))); err != nil {
		t.Fatal(err)
	}
	if sess.portsHere(ns, opts("c1", true, br("b"))) || !sess.portsHere(ns, opts("c1", true, br("a"))) {
		t.Error("teardown: only a carries the ports")
	}
	// A record of another namespace (a stale one) does not count.
	if !sess.portsHere("/run/netns/other", opts("c1", true, br("b"))) {
		t.Error("a record of another namespace should not hold the ports")
	}
	// Only an internal network recorded: the new bridge carries them.
	if err := sess.save(ns, opts("c2", true, internal)); err != nil {
		t.Fatal(err)
	}
	if !sess.portsHere(ns, opts("c2", true, br("a"))) {
		t.Error("the first bridge network after an internal one should publish")
	}
}

package firewalld

import "errors"

// Names of the firewalld objects the driver creates. They are netavark's,
// so that berth and netavark can take over each other's containers.
const (
	// Zone holds the subnets of every network as sources.
	Zone = "netavark_zone"
	// PolicyOut lets the zone's traffic out to any zone, masqueraded.
	PolicyOut = "netavark_policy"
	// PolicyPorts (any zone to the host) carries the published ports and
	// the DNS redirects.
	PolicyPorts = "netavark_portfwd"
	// PolicyLocal (the host to any zone) carries the forwards of ports
	// published on 127.0.0.1.
	PolicyLocal = "netavark_host_fwd"
	// PolicyIn (any zone to the zone) masquerades traffic into the
	// networks, so a container reaches a port of its own network that is
	// published on the host.
	PolicyIn = "netavark_zone_acc"
)

// ErrNoBus is returned when DBUS_SYSTEM_BUS_ADDRESS is set but empty:
// the caller asked for no system bus.
var ErrNoBus = errors.New("no D-Bus system bus (DBUS_SYSTEM_BUS_ADDRESS is empty)")

// ErrStrictForwardPorts is returned by CheckForwards when firewalld's
// StrictForwardPorts forbids forwards that firewalld does not own.
//
//lint:ignore ST1005 netavark's exact message, which Podman shows and scripts match
var ErrStrictForwardPorts = errors.New("Port forwarding not possible as firewalld StrictForwardPorts enabled")

// ForwardPort is one entry of a policy's forward_ports: host port (or
// range "a-b"), protocol, container port (or range) and container address.
type ForwardPort struct {
	Port, Protocol, ToPort, ToAddr string
}

// Rules are the parts of a policy's settings the driver edits.
type Rules struct {
	ForwardPorts []ForwardPort
	RichRules    []string
}

// Policy is a new policy's settings.
type Policy struct {
	Ingress, Egress string
	Target          string
	Masquerade      bool
}

// API is the part of firewalld's D-Bus interface the driver uses. Bus
// implements it over D-Bus; tests fake it.
type API interface {
	// Zones and Policies list the runtime configuration, ZoneNames and
	// PolicyNames the permanent one.
	Zones() ([]string, error)
	ZoneNames() ([]string, error)
	Policies() ([]string, error)
	PolicyNames() ([]string, error)
	// AddZone and AddPolicy add to the permanent configuration; Reload
	// makes it the runtime one.
	AddZone(name string) error
	AddPolicy(name string, p Policy) error
	Reload() error
	// ZoneOfSource returns the zone a source (a subnet) is bound to, ""
	// for none.
	ZoneOfSource(source string) (string, error)
	// Sources lists the sources bound to a zone.
	Sources(zone string) ([]string, error)
	AddSource(zone, source string) error
	RemoveSource(zone, source string) error
	// PermanentSources lists the sources bound to a zone in the permanent
	// configuration.
	PermanentSources(zone string) ([]string, error)
	// PolicyRules reads the forwards and rich rules of a runtime policy;
	// SetPolicyRules replaces them (other settings stay).
	PolicyRules(policy string) (Rules, error)
	SetPolicyRules(policy string, r Rules) error
	// Running reports whether firewalld is on the bus.
	Running() bool
	// StrictForwardPorts returns firewalld's StrictForwardPorts setting;
	// ok is false when firewalld has none (before firewalld 2.3).
	StrictForwardPorts() (value string, ok bool)
}

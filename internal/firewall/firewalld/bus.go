package firewalld

import (
	"fmt"
	"os"
	"strings"

	"github.com/godbus/dbus/v5"
)

const (
	service    = "org.fedoraproject.FirewallD1"
	rootPath   = dbus.ObjectPath("/org/fedoraproject/FirewallD1")
	configPath = dbus.ObjectPath("/org/fedoraproject/FirewallD1/config")
	ifRoot     = service
	ifZone     = service + ".zone"
	ifPolicy   = service + ".policy"
	ifConfig   = service + ".config"
	// defaultSystemBus is the system bus when DBUS_SYSTEM_BUS_ADDRESS is
	// not set.
	defaultSystemBus = "unix:path=/var/run/dbus/system_bus_socket"
)

// SystemBusAddress returns the address of the system bus: the value of
// DBUS_SYSTEM_BUS_ADDRESS, or the standard socket when it is not set.
// Set but empty, it is ErrNoBus (netavark's tests clear it so that no
// firewalld is found).
func SystemBusAddress() (string, error) {
	addr, ok := os.LookupEnv("DBUS_SYSTEM_BUS_ADDRESS")
	if !ok {
		return defaultSystemBus, nil
	}
	if addr == "" {
		return "", ErrNoBus
	}
	return addr, nil
}

// Bus is API over a D-Bus connection to firewalld.
type Bus struct {
	conn *dbus.Conn
}

var _ API = (*Bus)(nil)

// Dial connects to the bus at address ("" is SystemBusAddress).
func Dial(address string) (*Bus, error) {
	if address == "" {
		a, err := SystemBusAddress()
		if err != nil {
			return nil, err
		}
		address = a
	}
	conn, err := dbus.Connect(address)
	if err != nil {
		return nil, fmt.Errorf("connect to D-Bus at %s: %w", address, err)
	}
	return &Bus{conn: conn}, nil
}

// Close closes the connection.
func (b *Bus) Close() error { return b.conn.Close() }

// Running implements API: firewalld owns its name on the bus.
func (b *Bus) Running() bool {
	var owner string
	return b.conn.BusObject().Call("org.freedesktop.DBus.GetNameOwner", 0, service).Store(&owner) == nil
}

func (b *Bus) call(path dbus.ObjectPath, iface, method string, out any, args ...any) error {
	c := b.conn.Object(service, path).Call(iface+"."+method, 0, args...)
	if c.Err != nil {
		return fmt.Errorf("firewalld %s(%s): %w", method, joinArgs(args), c.Err)
	}
	if out == nil {
		return nil
	}
	if err := c.Store(out); err != nil {
		return fmt.Errorf("firewalld %s: decode the answer: %w", method, err)
	}
	return nil
}

func joinArgs(args []any) string {
	s := make([]string, 0, len(args))
	for _, a := range args {
		if str, ok := a.(string); ok {
			s = append(s, str)
		}
	}
	return strings.Join(s, ", ")
}

func (b *Bus) strings(path dbus.ObjectPath, iface, method string, args ...any) ([]string, error) {
	var out []string
	err := b.call(path, iface, method, &out, args...)
	return out, err
}

// Zones implements API.
func (b *Bus) Zones() ([]string, error) { return b.strings(rootPath, ifZone, "getZones") }

// ZoneNames implements API.
func (b *Bus) ZoneNames() ([]string, error) { return b.strings(configPath, ifConfig, "getZoneNames") }

// Policies implements API.
func (b *Bus) Policies() ([]string, error) { return b.strings(rootPath, ifPolicy, "getPolicies") }

// PolicyNames implements API.
func (b *Bus) PolicyNames() ([]string, error) {
	return b.strings(configPath, ifConfig, "getPolicyNames")
}

// AddZone implements API.
func (b *Bus) AddZone(name string) error {
	return b.call(configPath, ifConfig, "addZone2", nil, name, map[string]dbus.Variant{})
}

// AddPolicy implements API.
func (b *Bus) AddPolicy(name string, p Policy) error {
	settings := map[string]dbus.Variant{
		"ingress_zones": dbus.MakeVariant([]string{p.Ingress}),
		"egress_zones":  dbus.MakeVariant([]string{p.Egress}),
		"target":        dbus.MakeVariant(p.Target),
	}
	if p.Masquerade {
		settings["masquerade"] = dbus.MakeVariant(true)
	}
	return b.call(configPath, ifConfig, "addPolicy", nil, name, settings)
}

// Reload implements API.
func (b *Bus) Reload() error { return b.call(rootPath, ifRoot, "reload", nil) }

// ZoneOfSource implements API.
func (b *Bus) ZoneOfSource(source string) (string, error) {
	var zone string
	err := b.call(rootPath, ifZone, "getZoneOfSource", &zone, source)
	return zone, err
}

// Sources implements API.
func (b *Bus) Sources(zone string) ([]string, error) {
	return b.strings(rootPath, ifZone, "getSources", zone)
}

// PermanentSources implements API.
func (b *Bus) PermanentSources(zone string) ([]string, error) {
	var path dbus.ObjectPath
	if err := b.call(configPath, ifConfig, "getZoneByName", &path, zone); err != nil {
		return nil, err
	}
	return b.strings(path, ifConfig+".zone", "getSources")
}

// AddSource implements API.
func (b *Bus) AddSource(zone, source string) error {
	return b.call(rootPath, ifZone, "changeZoneOfSource", nil, zone, source)
}

// RemoveSource implements API.
func (b *Bus) RemoveSource(zone, source string) error {
	return b.call(rootPath, ifZone, "removeSource", nil, zone, source)
}

// PolicyRules implements API.
func (b *Bus) PolicyRules(policy string) (Rules, error) {
	var settings map[string]dbus.Variant
	if err := b.call(rootPath, ifPolicy, "getPolicySettings", &settings, policy); err != nil {
		return Rules{}, err
	}
	return decodeRules(policy, settings)
}

// SetPolicyRules implements API.
func (b *Bus) SetPolicyRules(policy string, r Rules) error {
	fps := r.ForwardPorts
	if fps == nil {
		fps = []ForwardPort{}
	}
	rich := r.RichRules
	if rich == nil {
		rich = []string{}
	}
	settings := map[string]dbus.Variant{
		"forward_ports": dbus.MakeVariant(fps),
		"rich_rules":    dbus.MakeVariant(rich),
	}
	return b.call(rootPath, ifPolicy, "setPolicySettings", nil, policy, settings)
}

// StrictForwardPorts implements API: the setting as firewalld's
// configuration has it ("yes", "no" or anything else written there).
func (b *Bus) StrictForwardPorts() (value string, ok bool) {
	v, err := b.conn.Object(service, configPath).GetProperty(ifConfig + ".StrictForwardPorts")
	if err != nil {
		return "", false
	}
	s, isString := v.Value().(string)
	return s, isString
}

// decodeRules reads forward_ports (a(ssss)) and rich_rules (as) from a
// policy's settings.
func decodeRules(policy string, settings map[string]dbus.Variant) (Rules, error) {
	var r Rules
	if v, ok := settings["forward_ports"]; ok {
		rows, ok := v.Value().([][]any)
		if !ok {
			return Rules{}, fmt.Errorf("firewalld policy %s: forward_ports of type %s, want a(ssss)", policy, v.Signature())
		}
		for _, row := range rows {
			fp, err := forwardPortOf(row)
			if err != nil {
				return Rules{}, fmt.Errorf("firewalld policy %s: %w", policy, err)
			}
			r.ForwardPorts = append(r.ForwardPorts, fp)
		}
	}
	if v, ok := settings["rich_rules"]; ok {
		rich, ok := v.Value().([]string)
		if !ok {
			return Rules{}, fmt.Errorf("firewalld policy %s: rich_rules of type %s, want as", policy, v.Signature())
		}
		r.RichRules = rich
	}
	return r, nil
}

func forwardPortOf(row []any) (ForwardPort, error) {
	var s [4]string
	if len(row) != 4 {
		return ForwardPort{}, fmt.Errorf("a forward port of %d fields, want 4", len(row))
	}
	for i, f := range row {
		str, ok := f.(string)
		if !ok {
			return ForwardPort{}, fmt.Errorf("a forward port field of type %T, want string", f)
		}
		s[i] = str
	}
	return ForwardPort{Port: s[0], Protocol: s[1], ToPort: s[2], ToAddr: s[3]}, nil
}

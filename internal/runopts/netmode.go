package runopts

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/berthnet/berth/internal/network"
)

// Network mode kinds.
const (
	ModeBridge    = "bridge"      // one or more networks (the default network when none is named)
	ModeNone      = "none"        // a new namespace with only lo
	ModeHost      = "host"        // the host's namespace
	ModeContainer = "container"   // another container's namespace
	ModeNS        = "ns"          // the namespace at a path
	ModeSlirp     = "slirp4netns" // a new namespace on a user-mode network of slirp4netns's model
	ModePasta     = "pasta"       // a new namespace on a user-mode network of pasta's model (rootless default)
)

// NetworkRequest is one network a container joins, with its per-network
// options.
type NetworkRequest struct {
	// Name is the network's name or ID; "" means the default network.
	Name      string       `json:"name"`
	IPs       []netip.Addr `json:"ips,omitempty"`
	MAC       string       `json:"mac,omitempty"`
	Aliases   []string     `json:"aliases,omitempty"`
	Interface string       `json:"interface_name,omitempty"`
	// GwPriority orders the default routes of a container's networks
	// (Docker's gw_priority): the highest priority's route is preferred.
	GwPriority int `json:"gw_priority,omitempty"`
}

// NetMode is the parsed --network flags of a container.
type NetMode struct {
	Kind string `json:"kind"`
	// Target is the container of container:ID, the path of ns:PATH, or
	// the options of slirp4netns:OPTIONS and pasta:OPTIONS.
	Target   string           `json:"target,omitempty"`
	Networks []NetworkRequest `json:"networks,omitempty"`
}

// ParseNetworks parses the --network values in order. No value means the
// default network (bridge), as for rootful Podman.
func ParseNetworks(values []string) (NetMode, error) {
	m := NetMode{Kind: ModeBridge}
	if len(values) == 0 {
		m.Networks = []NetworkRequest{{}}
		return m, nil
	}
	special := func(kind, target string) (NetMode, error) {
		if len(values) > 1 {
			return NetMode{}, fmt.Errorf("--network %s cannot be combined with other networks", values[0])
		}
		return NetMode{Kind: kind, Target: target}, nil
	}
	seen := map[string]bool{}
	for _, v := range values {
		name, opts, _ := strings.Cut(v, ":")
		switch name {
		case "none", "host":
			if opts != "" {
				return NetMode{}, fmt.Errorf("--network %s: mode %s takes no options", v, name)
			}
			if len(values) > 1 {
				return NetMode{}, fmt.Errorf("--network %s cannot be combined with other networks", name)
			}
			return special(name, "")
		case "container":
			if opts == "" {
				return NetMode{}, fmt.Errorf("--network %s: give the container as container:NAME|ID", v)
			}
			return special(ModeContainer, opts)
		case "ns":
			if !strings.HasPrefix(opts, "/") {
				return NetMode{}, fmt.Errorf("--network %s: give an absolute namespace path as ns:PATH", v)
			}
			return special(ModeNS, opts)
		case ModeSlirp:
			if _, err := ParseSlirpOptions(opts); err != nil {
				return NetMode{}, fmt.Errorf("--network %s: %w", v, err)
			}
			return special(ModeSlirp, opts)
		case ModePasta:
			if _, err := ParsePastaOptions(opts); err != nil {
				return NetMode{}, fmt.Errorf("--network %s: %w", v, err)
			}
			return special(ModePasta, opts)
		case "":
			return NetMode{}, fmt.Errorf("--network %q: empty network name", v)
		}
		if name == "bridge" || name == "private" {
			name = ""
		}
		// Legacy form: --network a,b (no options).
		names := []string{name}
		if opts == "" && strings.Contains(name, ",") {
			names = strings.Split(name, ",")
		}
		for _, n := range names {
			req := NetworkRequest{Name: n}
			if opts != "" {
				if err := parseNetOpts(&req, opts); err != nil {
					return NetMode{}, fmt.Errorf("--network %s: %w", v, err)
				}
			}
			if seen[n] {
				return NetMode{}, fmt.Errorf("--network %s: network given twice", v)
			}
			seen[n] = true
			m.Networks = append(m.Networks, req)
		}
	}
	return m, nil
}

func parseNetOpts(r *NetworkRequest, opts string) error {
	for _, kv := range strings.Split(opts, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || v == "" {
			return fmt.Errorf("option %q: want key=value (ip=, ip6=, mac=, alias=, interface_name=)", kv)
		}
		switch k {
		case "ip", "ip6":
			a, err := netip.ParseAddr(v)
			if err != nil || (k == "ip" && !a.Unmap().Is4()) || (k == "ip6" && (!a.Is6() || a.Is4In6())) {
				return fmt.Errorf("%s=%s: not an IPv%s address", k, v, map[string]string{"ip": "4", "ip6": "6"}[k])
			}
			r.IPs = append(r.IPs, a.Unmap())
		case "mac":
			if _, err := network.ParseMAC(v); err != nil {
				return fmt.Errorf("mac=%s: %w", v, err)
			}
			r.MAC = v
		case "alias":
			if err := checkAlias(v); err != nil {
				return fmt.Errorf("alias=%s: %w", v, err)
			}
			r.Aliases = append(r.Aliases, v)
		case "interface_name":
			if len(v) > 15 || strings.ContainsAny(v, "/ :") {
				return fmt.Errorf("interface_name=%s: not a valid interface name (at most 15 characters, no '/', ':' or spaces)", v)
			}
			r.Interface = v
		default:
			return fmt.Errorf("unknown option %q (valid: ip, ip6, mac, alias, interface_name)", k)
		}
	}
	return nil
}

func checkAlias(a string) error {
	if a == "" || strings.ContainsAny(a, " ,\n\t;:") {
		return fmt.Errorf("must not be empty or contain spaces, commas, colons or semicolons")
	}
	return nil
}

// Single are the flags that apply to the only network of a container.
type Single struct {
	IP, IP6, MAC string
	Aliases      []string
}

// Apply merges --ip, --ip6, --mac-address and --network-alias into m.
// The addresses and MAC need exactly one network; aliases go to every
// network.
func (s Single) Apply(m *NetMode) error {
	for _, a := range s.Aliases {
		if err := checkAlias(a); err != nil {
			return fmt.Errorf("--network-alias %q: %w", a, err)
		}
	}
	flags := []struct{ name, val string }{{"--ip", s.IP}, {"--ip6", s.IP6}, {"--mac-address", s.MAC}}
	for _, f := range flags {
		if f.val == "" {
			continue
		}
		if m.Kind != ModeBridge {
			return fmt.Errorf("%s cannot be used with --network %s", f.name, m.Kind)
		}
		if len(m.Networks) != 1 {
			return fmt.Errorf("%s can only be set for a single network: invalid argument", f.name)
		}
	}
	if (len(s.Aliases) > 0) && m.Kind != ModeBridge {
		return fmt.Errorf("--network-alias cannot be used with --network %s", m.Kind)
	}
	if s.IP != "" {
		a, err := netip.ParseAddr(s.IP)
		if err != nil || !a.Unmap().Is4() {
			return fmt.Errorf("--ip %s: not an IPv4 address", s.IP)
		}
		m.Networks[0].IPs = append(m.Networks[0].IPs, a.Unmap())
	}
	if s.IP6 != "" {
		a, err := netip.ParseAddr(s.IP6)
		if err != nil || !a.Is6() || a.Is4In6() {
			return fmt.Errorf("--ip6 %s: not an IPv6 address", s.IP6)
		}
		m.Networks[0].IPs = append(m.Networks[0].IPs, a)
	}
	if s.MAC != "" {
		if _, err := network.ParseMAC(s.MAC); err != nil {
			return fmt.Errorf("--mac-address %s: %w", s.MAC, err)
		}
		m.Networks[0].MAC = s.MAC
	}
	for i := range m.Networks {
		m.Networks[i].Aliases = append(m.Networks[i].Aliases, s.Aliases...)
	}
	return nil
}

// HostGateway is the --add-host address that names the host.
const HostGateway = "host-gateway"

// ExtraHost is one --add-host entry.
type ExtraHost struct {
	Names []string `json:"names"`
	// IP is an address or HostGateway.
	IP string `json:"ip"`
}

// ParseAddHost parses --add-host NAME[;NAME...]:IP (IP may be IPv6 or
// host-gateway).
func ParseAddHost(s string) (ExtraHost, error) {
	names, ip, ok := strings.Cut(s, ":")
	if !ok || names == "" || ip == "" {
		return ExtraHost{}, fmt.Errorf("--add-host %q: bad format, want NAME:IP (NAME;NAME2:IP for several names, IP may be host-gateway)", s)
	}
	ip = strings.TrimSuffix(strings.TrimPrefix(ip, "["), "]")
	if ip != HostGateway {
		a, err := netip.ParseAddr(ip)
		if err != nil {
			return ExtraHost{}, fmt.Errorf("--add-host %q: invalid IP address %q (want an IPv4/IPv6 address or host-gateway)", s, ip)
		}
		ip = a.Unmap().String()
	}
	var out ExtraHost
	for _, n := range strings.Split(names, ";") {
		if n == "" || strings.ContainsAny(n, " \t") {
			return ExtraHost{}, fmt.Errorf("--add-host %q: invalid host name %q", s, n)
		}
		out.Names = append(out.Names, n)
	}
	out.IP = ip
	return out, nil
}

// DNS are the --dns, --dns-search and --dns-option flags.
type DNS struct {
	Servers []netip.Addr `json:"servers,omitempty"`
	// None is --dns none: no resolv.conf is written.
	None    bool     `json:"none,omitempty"`
	Search  []string `json:"search,omitempty"`
	Options []string `json:"options,omitempty"`
}

// ParseDNS validates the DNS flags against the network mode.
func ParseDNS(servers, search, options []string, mode string) (DNS, error) {
	var d DNS
	for _, s := range servers {
		if s == "none" {
			d.None = true
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return DNS{}, fmt.Errorf("--dns %q: not an IP address (or none)", s)
		}
		d.Servers = append(d.Servers, a.Unmap())
	}
	if (len(d.Servers) > 0 || len(search) > 0 || len(options) > 0) && (mode == ModeNone || mode == ModeContainer) {
		return DNS{}, fmt.Errorf("conflicting options: dns and the network mode: %s", mode)
	}
	for _, s := range search {
		if s == "" || strings.ContainsAny(s, " \t") {
			return DNS{}, fmt.Errorf("--dns-search %q: not a domain", s)
		}
		d.Search = append(d.Search, s)
	}
	for _, o := range options {
		if o == "" || strings.ContainsAny(o, " \t") {
			return DNS{}, fmt.Errorf("--dns-option %q: not a resolver option", o)
		}
		d.Options = append(d.Options, o)
	}
	return d, nil
}

// SlirpOptions are the options of --network slirp4netns:OPTIONS.
type SlirpOptions struct {
	AllowHostLoopback bool
	EnableIPv6        bool
	CIDR              netip.Prefix // zero: 10.0.2.0/24
	MTU               int          // 0: 65520
	OutboundAddr      string
	OutboundAddr6     string
}

// ParseSlirpOptions parses the comma-separated options of
// --network slirp4netns:OPTIONS (Podman's names: allow_host_loopback,
// enable_ipv6, cidr, mtu, outbound_addr, outbound_addr6, port_handler).
func ParseSlirpOptions(s string) (SlirpOptions, error) {
	var o SlirpOptions
	if s == "" {
		return o, nil
	}
	boolOpt := func(k, v string) (bool, error) {
		switch v {
		case "true", "":
			return true, nil
		case "false":
			return false, nil
		}
		return false, fmt.Errorf("%s=%q: want true or false", k, v)
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(kv, "=")
		var err error
		switch k {
		case "allow_host_loopback":
			o.AllowHostLoopback, err = boolOpt(k, v)
		case "enable_ipv6":
			o.EnableIPv6, err = boolOpt(k, v)
		case "cidr":
			o.CIDR, err = netip.ParsePrefix(v)
			if err == nil && (!o.CIDR.Addr().Is4() || o.CIDR.Bits() > 25) {
				err = fmt.Errorf("cidr=%s: want an IPv4 prefix of /25 or larger", v)
			}
		case "mtu":
			var n int
			if _, e := fmt.Sscanf(v, "%d", &n); e != nil || n < 68 || n > 65521 {
				err = fmt.Errorf("mtu=%q: want a number from 68 to 65521", v)
			}
			o.MTU = n
		case "outbound_addr":
			o.OutboundAddr = v
		case "outbound_addr6":
			o.OutboundAddr6 = v
		case "port_handler":
			// berth forwards ports in its user-mode stack, keeping the
			// client's address, whichever handler is named.
			if v != "rootlessport" && v != "slirp4netns" {
				err = fmt.Errorf("port_handler=%q: want rootlessport or slirp4netns", v)
			}
		default:
			err = fmt.Errorf("unknown option %q (valid: allow_host_loopback, enable_ipv6, cidr, mtu, outbound_addr, outbound_addr6, port_handler)", k)
		}
		if err != nil {
			return SlirpOptions{}, err
		}
	}
	return o, nil
}

// ParsePastaOptions splits the options of --network pasta:OPTIONS: pasta(1)
// arguments separated by commas, as Podman takes them (pasta:-t,8080 is
// "-t 8080"). pasta checks them when it starts; berth sets --pid and
// --netns itself.
func ParsePastaOptions(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	out := strings.Split(s, ",")
	for _, o := range out {
		if o == "" {
			return nil, fmt.Errorf("empty pasta option in %q", s)
		}
		for _, own := range []string{"--pid", "-P", "--netns"} {
			if o == own || strings.HasPrefix(o, own+"=") || (own == "-P" && strings.HasPrefix(o, own)) {
				return nil, fmt.Errorf("pasta option %s: berth sets it itself", o)
			}
		}
	}
	return out, nil
}

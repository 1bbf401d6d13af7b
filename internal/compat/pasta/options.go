// Package pasta is berth's pasta(1)-compatible front-end: the command line
// Podman 5.x/6 passes to pasta for rootless networking
// (`pasta --config-net [OPTIONS] -t SPEC... --dns-forward 169.254.1.1
// -t none -u none -T none -U none --no-map-gw --quiet --map-guest-addr
// 169.254.1.2 --pid FILE --netns PATH`), parsed the way pasta's getopt_long
// loop and conf() parse it, with pasta's own error messages.
//
// This file and portspec.go are pure (no system calls): Parse turns the
// arguments into Options; the runtime acts on them.
//
// Where pasta releases differ, berth accepts what a 2024-2026 pasta accepts
// (options may repeat, the last -4/-6, -d/-q, -a or -g of a family wins,
// options after the first non-option belong to the command) and uses the
// message texts of pasta 0.0~git20230309 where that build has the error too.
// Options accepted for compatibility that the runtime may ignore are listed in
// ignoredOptions and reported in Options.Ignored.
package pasta

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// ExitUsage is pasta's exit status for a bad command line (it exits 1 for
// every configuration error; --help and --version exit 0).
const ExitUsage = 1

// UsageError is a bad command line. Error() is pasta's message.
type UsageError struct {
	Msg string
	// ShowUsage: pasta prints the usage text (to stderr) after the message;
	// it does so for getopt's errors (unknown option, missing argument),
	// not for the option checks of its own.
	ShowUsage bool
}

func (e *UsageError) Error() string { return e.Msg }

func usagef(format string, a ...any) *UsageError {
	return &UsageError{Msg: fmt.Sprintf(format, a...)}
}

// Options is a parsed pasta command line.
type Options struct {
	ConfigNet bool
	NetNS     string   // --netns as a path (a NAME means /run/netns/NAME), or /proc/PID/ns/net
	UserNS    string   // --userns, or /proc/PID/ns/user for a PID target
	Target    []string // PID or COMMAND ARGS...
	PID       int      // the target PID, 0 if none
	PIDFile   string

	Quiet, Debug, Trace, Foreground, Stderr bool
	LogFile                                 string
	LogSize                                 int64 // 0: default

	TCP, UDP, TCPNS, UDPNS PortSpec

	DNSForward, MapGuestAddr, MapHostLoopback []netip.Addr // at most one per family
	// APISocket (--berth-api-socket, berth's own) serves slirp4netns's
	// add_hostfwd/list_hostfwd/remove_hostfwd API for the network.
	APISocket          string
	DNSHost            []netip.Addr
	NoMapGW, MapGW     bool
	IPv4Only, IPv6Only bool

	Addrs    []netip.Addr // at most one per family
	Netmask  int          // IPv4 prefix length, -1 unset
	Gateways []netip.Addr // at most one per family

	NSIfname, Iface, OutboundIf4, OutboundIf6 string
	Outbound                                  []netip.Addr // at most one per family

	MTU        int // -1 unset; 0 = no assignment
	MAC, NSMAC net.HardwareAddr

	DNS      []netip.Addr
	NoDNS    bool
	Search   []string
	NoSearch bool
	DHCPDNS  bool // --dhcp-dns
	DHCPSrch bool // --dhcp-search

	NoTCP, NoUDP, NoICMP, NoDHCP, NoNDP, NoDHCPv6, NoRA   bool
	NoCopyRoutes, NoCopyAddrs, NetNSOnly, NoNetNSQuit     bool
	NoSplice, SpliceOnly, HostLoToNsLo, Freebind          bool
	RunAs, PcapFile, Hostname, FQDN, ConfPath, RepairPath string
	FD                                                    int // -F, -1 unset

	Help, Version bool
	Ignored       []string // options accepted for compatibility that berth does not act on (for a debug log line)
}

// ignoredOptions are accepted but, as far as this parser knows, not acted on
// by berth's runtime: they name host resources pasta would use (--runas,
// --fd, --pcap), tune pasta internals (--no-splice,
// --splice-only, --host-lo-to-ns-lo, --freebind, --log-size, --stats,
// --chroot-fallback), or belong to newer features (--conf-path, --repair-path,
// -H, --fqdn, --dns-host, --print-capabilities).
var ignoredOptions = map[string]bool{
	"runas": true, "fd": true, "pcap": true, "log-size": true, "no-splice": true,
	"splice-only": true, "host-lo-to-ns-lo": true, "freebind": true, "stats": true,
	"conf-path": true, "chroot-fallback": true, "hostname": true, "fqdn": true,
	"repair-path": true, "dns-host": true, "print-capabilities": true, "stderr": true,
}

// option is one entry of pasta's long-option table.
type option struct {
	name   string
	short  byte // 0: long only
	hasArg bool
	set    func(p *parser, arg string) error
}

// parser is the state of one Parse call.
type parser struct {
	o                           *Options
	portArgs                    []portArg
	copyRoutesOpt, copyAddrsOpt bool
	netnsOnlySet                bool
}

// portArg is a -t/-u/-T/-U argument kept for the second pass.
type portArg struct {
	letter byte
	spec   string
}

// options is pasta's option table, in pasta's order (getopt lists ambiguous
// candidates in this order).
var options []option

func init() {
	flag := func(f func(o *Options)) func(*parser, string) error {
		return func(p *parser, _ string) error { f(p.o); return nil }
	}
	passtOnly := func(msg string) func(*parser, string) error {
		return func(*parser, string) error { return usagef("%s", msg) }
	}
	port := func(l byte) func(*parser, string) error {
		return func(p *parser, a string) error { p.portArgs = append(p.portArgs, portArg{l, a}); return nil }
	}
	options = []option{
		{"debug", 'd', false, flag(func(o *Options) { o.Debug, o.Quiet = true, false })},
		{"quiet", 'q', false, flag(func(o *Options) { o.Quiet, o.Debug, o.Trace = true, false, false })},
		{"foreground", 'f', false, flag(func(o *Options) { o.Foreground = true })},
		{"stderr", 'e', false, flag(func(o *Options) { o.Stderr = true })},
		{"log-file", 'l', true, func(p *parser, a string) error { p.o.LogFile = a; return nil }},
		{"help", 'h', false, flag(func(o *Options) { o.Help = true })},
		{"socket", 's', true, passtOnly("-s is for passt / vhost-user mode only")},
		{"fd", 'F', true, setFD},
		{"ns-ifname", 'I', true, func(p *parser, a string) error { return setIfname(&p.o.NSIfname, a) }},
		{"pcap", 'p', true, func(p *parser, a string) error { return setPath(&p.o.PcapFile, a, "Invalid pcap path: %s") }},
		{"pid", 'P', true, func(p *parser, a string) error { return setPath(&p.o.PIDFile, a, "Invalid PID file: %s") }},
		// berth's extension: slirp4netns's port-forward API, for the
		// rootless network namespace whose forwards come and go.
		{"berth-api-socket", 0, true, func(p *parser, a string) error {
			return setPath(&p.o.APISocket, a, "Invalid API socket path: %s")
		}},
		{"mtu", 'm', true, setMTU},
		{"address", 'a', true, setAddress},
		{"netmask", 'n', true, setNetmask},
		{"mac-addr", 'M', true, func(p *parser, a string) error { return setMAC(&p.o.MAC, a) }},
		{"gateway", 'g', true, setGateway},
		{"interface", 'i', true, func(p *parser, a string) error { return setIface(&p.o.Iface, a) }},
		{"outbound", 'o', true, setOutbound},
		{"dns", 'D', true, setDNS},
		{"search", 'S', true, setSearch},
		{"hostname", 'H', true, func(p *parser, a string) error { return setName(&p.o.Hostname, a, "Invalid hostname: %s") }},
		{"no-tcp", 0, false, flag(func(o *Options) { o.NoTCP = true })},
		{"no-udp", 0, false, flag(func(o *Options) { o.NoUDP = true })},
		{"no-icmp", 0, false, flag(func(o *Options) { o.NoICMP = true })},
		{"no-dhcp", 0, false, flag(func(o *Options) { o.NoDHCP = true })},
		{"no-dhcpv6", 0, false, flag(func(o *Options) { o.NoDHCPv6 = true })},
		{"no-ndp", 0, false, flag(func(o *Options) { o.NoNDP = true })},
		{"no-ra", 0, false, flag(func(o *Options) { o.NoRA = true })},
		{"no-splice", 0, false, flag(func(o *Options) { o.NoSplice = true })},
		{"splice-only", 0, false, flag(func(o *Options) { o.SpliceOnly = true })},
		{"freebind", 0, false, flag(func(o *Options) { o.Freebind = true })},
		{"no-map-gw", 0, false, flag(func(o *Options) { o.NoMapGW = true })},
		{"ipv4-only", '4', false, flag(func(o *Options) { o.IPv4Only, o.IPv6Only = true, false })},
		{"ipv6-only", '6', false, flag(func(o *Options) { o.IPv6Only, o.IPv4Only = true, false })},
		{"one-off", '1', false, passtOnly("--one-off is for passt mode only")},
		{"tcp-ports", 't', true, port('t')},
		{"udp-ports", 'u', true, port('u')},
		{"tcp-ns", 'T', true, port('T')},
		{"udp-ns", 'U', true, port('U')},
		{"userns", 0, true, setUserNS},
		{"netns", 0, true, setNetNS},
		{"ns-mac-addr", 0, true, func(p *parser, a string) error { return setMAC(&p.o.NSMAC, a) }},
		{"dhcp-dns", 0, false, flag(func(o *Options) { o.DHCPDNS = true })},
		{"no-dhcp-dns", 0, false, passtOnly("--no-dhcp-dns is for passt mode only")},
		{"dhcp-search", 0, false, flag(func(o *Options) { o.DHCPSrch = true })},
		{"no-dhcp-search", 0, false, passtOnly("--no-dhcp-search is for passt mode only")},
		{"dns-forward", 0, true, setDNSForward},
		{"no-netns-quit", 0, false, flag(func(o *Options) { o.NoNetNSQuit = true })},
		{"trace", 0, false, flag(func(o *Options) { o.Trace, o.Debug, o.Quiet = true, true, false })},
		{"runas", 0, true, func(p *parser, a string) error { p.o.RunAs = a; return nil }},
		{"log-size", 0, true, setLogSize},
		{"version", 0, false, flag(func(o *Options) { o.Version = true })},
		{"outbound-if4", 0, true, func(p *parser, a string) error { return setIfname(&p.o.OutboundIf4, a) }},
		{"outbound-if6", 0, true, func(p *parser, a string) error { return setIfname(&p.o.OutboundIf6, a) }},
		{"config-net", 0, false, flag(func(o *Options) { o.ConfigNet = true })},
		{"no-copy-routes", 0, false, func(p *parser, _ string) error { p.o.NoCopyRoutes, p.copyRoutesOpt = true, true; return nil }},
		{"no-copy-addrs", 0, false, func(p *parser, _ string) error { p.o.NoCopyAddrs, p.copyAddrsOpt = true, true; return nil }},
		{"netns-only", 0, false, func(p *parser, _ string) error {
			p.o.NetNSOnly, p.netnsOnlySet, p.o.UserNS = true, true, ""
			return nil
		}},
		{"map-host-loopback", 0, true, func(p *parser, a string) error { return setNAT(&p.o.MapHostLoopback, a, &p.o.NoMapGW) }},
		{"map-guest-addr", 0, true, func(p *parser, a string) error { return setNAT(&p.o.MapGuestAddr, a, nil) }},
		{"host-lo-to-ns-lo", 0, false, flag(func(o *Options) { o.HostLoToNsLo = true })},
		{"dns-host", 0, true, setDNSHost},
		{"vhost-user", 0, false, passtOnly("--vhost-user is for passt mode only")},
		{"print-capabilities", 0, false, flag(func(*Options) {})},
		{"socket-path", 's', true, passtOnly("-s is for passt / vhost-user mode only")},
		{"fqdn", 0, true, func(p *parser, a string) error { return setName(&p.o.FQDN, a, "Invalid FQDN: %s") }},
		{"repair-path", 0, true, setRepairPath},
		{"migrate-exit", 0, false, passtOnly("--migrate-exit is for vhost-user mode only")},
		{"migrate-no-linger", 0, false, passtOnly("--migrate-no-linger is for vhost-user mode only")},
		{"stats", 0, true, setStats},
		{"conf-path", 'c', true, func(p *parser, a string) error { return setPath(&p.o.ConfPath, a, "Invalid configuration path: %s") }},
		{"chroot-fallback", 0, false, flag(func(*Options) {})},
		// Not a pasta option: Podman removes it before running pasta; a
		// user's containers.conf may still hand it to berth.
		{"map-gw", 0, false, flag(func(o *Options) { o.MapGW = true })},
	}
}

// shortOption maps a letter of pasta's optstring ("+dqfel:hs:c:F:I:p:P:m:a:n:M:g:i:o:
// D:S:H:461t:u:T:U:") to the table.
func shortOption(c byte) *option {
	if c == 0 {
		return nil
	}
	for i := range options {
		if options[i].short == c && options[i].name != "socket-path" {
			return &options[i]
		}
	}
	return nil
}

// Parse parses pasta's arguments (without the program name). --help and
// --version stop parsing where they appear, as pasta exits there.
func Parse(args []string) (*Options, error) {
	p := &parser{o: &Options{Netmask: -1, MTU: -1, FD: -1}}
	rest, err := p.getopt(args)
	if err != nil || p.o.Help || p.o.Version {
		return p.o, err
	}
	if err := p.finish(rest); err != nil {
		return p.o, err
	}
	return p.o, nil
}

// getopt walks the options (getopt_long with "+": the first non-option ends
// them) and applies each; it returns the non-option arguments.
func (p *parser) getopt(args []string) ([]string, error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return args[i+1:], nil
		case strings.HasPrefix(a, "--"):
			n, err := p.long(args, i)
			if err != nil {
				return nil, err
			}
			i = n
		case len(a) > 1 && a[0] == '-':
			n, err := p.short(args, i)
			if err != nil {
				return nil, err
			}
			i = n
		default:
			return args[i:], nil
		}
		if p.o.Help || p.o.Version {
			return nil, nil
		}
	}
	return nil, nil
}

// getoptError is one of getopt's own messages: pasta prints usage after it.
func getoptError(format string, a ...any) error {
	return &UsageError{Msg: "pasta: " + fmt.Sprintf(format, a...), ShowUsage: true}
}

// long handles args[i], a `--name[=value]` option; it returns the index of
// the last argument consumed.
func (p *parser) long(args []string, i int) (int, error) {
	body := args[i][2:]
	name, val, hasVal := strings.Cut(body, "=")
	opt, err := lookupLong(name, args[i])
	if err != nil {
		return i, err
	}
	switch {
	case !opt.hasArg && hasVal:
		return i, getoptError("option '--%s' doesn't allow an argument", opt.name)
	case opt.hasArg && !hasVal:
		if i+1 >= len(args) {
			return i, getoptError("option '--%s' requires an argument", opt.name)
		}
		i++
		val = args[i]
	}
	return i, p.apply(opt, val)
}

// lookupLong finds a long option by exact name or unambiguous prefix, as
// getopt_long does (prefixes naming options that behave alike are not
// ambiguous).
func lookupLong(name, arg string) (*option, error) {
	var found []*option
	for i := range options {
		o := &options[i]
		if o.name == name {
			return o, nil
		}
		if name != "" && strings.HasPrefix(o.name, name) {
			found = append(found, o)
		}
	}
	if len(found) == 0 {
		return nil, getoptError("unrecognized option '%s'", arg)
	}
	for _, o := range found[1:] {
		if o.short != found[0].short || o.hasArg != found[0].hasArg || o.short == 0 {
			var b strings.Builder
			for _, c := range found {
				fmt.Fprintf(&b, " '--%s'", c.name)
			}
			return nil, getoptError("option '--%s' is ambiguous; possibilities:%s", name, b.String())
		}
	}
	return found[0], nil
}

// short handles args[i], one or more bundled short options.
func (p *parser) short(args []string, i int) (int, error) {
	a := args[i]
	for j := 1; j < len(a); j++ {
		opt := shortOption(a[j])
		if opt == nil {
			return i, getoptError("invalid option -- '%c'", a[j])
		}
		if !opt.hasArg {
			if err := p.apply(opt, ""); err != nil || p.o.Help || p.o.Version {
				return i, err
			}
			continue
		}
		val := a[j+1:]
		if val == "" {
			if i+1 >= len(args) {
				return i, getoptError("option requires an argument -- '%c'", a[j])
			}
			i++
			val = args[i]
		}
		return i, p.apply(opt, val)
	}
	return i, nil
}

// apply runs one option's setter and notes the options berth ignores.
func (p *parser) apply(opt *option, val string) error {
	if err := opt.set(p, val); err != nil {
		return err
	}
	if ignoredOptions[opt.name] && !containsString(p.o.Ignored, "--"+opt.name) {
		p.o.Ignored = append(p.o.Ignored, "--"+opt.name)
	}
	return nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// finish does pasta's checks after its option loop: option combinations,
// then -t/-u, then the PID or command, then -T/-U.
func (p *parser) finish(rest []string) error {
	o := p.o
	switch {
	case o.NoSplice && o.HostLoToNsLo:
		return usagef("--host-lo-to-ns-lo is incompatible with --no-splice")
	case p.copyRoutesOpt && !o.ConfigNet:
		return usagef("--no-copy-routes needs --config-net")
	case p.copyAddrsOpt && !o.ConfigNet:
		return usagef("--no-copy-addrs needs --config-net")
	case o.SpliceOnly && o.NoSplice:
		return usagef("--splice-only is incompatible with --no-splice")
	}
	if err := p.ports("tu"); err != nil {
		return err
	}
	if err := p.target(rest); err != nil {
		return err
	}
	return p.ports("TU")
}

// ports applies the port options with the given letters, in order.
func (p *parser) ports(letters string) error {
	for _, pa := range p.portArgs {
		if !strings.ContainsRune(letters, rune(pa.letter)) {
			continue
		}
		spec, tcp := p.portSpec(pa.letter)
		if pa.spec != "none" {
			if tcp && p.o.NoTCP {
				return usagef("TCP port forwarding requested but TCP is disabled")
			}
			if !tcp && p.o.NoUDP {
				return usagef("UDP port forwarding requested but UDP is disabled")
			}
		}
		if err := spec.add(pa.spec, pa.letter == 't' || pa.letter == 'u'); err != nil {
			return err
		}
	}
	return nil
}

// portSpec returns the PortSpec an option letter fills and whether it is TCP.
func (p *parser) portSpec(letter byte) (*PortSpec, bool) {
	switch letter {
	case 't':
		return &p.o.TCP, true
	case 'u':
		return &p.o.UDP, false
	case 'T':
		return &p.o.TCPNS, true
	}
	return &p.o.UDPNS, false
}

// target checks the PID or command after the options (conf_pasta_ns).
func (p *parser) target(rest []string) error {
	o := p.o
	o.Target = rest
	if o.NetNS != "" && len(rest) > 0 {
		return usagef("Both --netns and PID or command given")
	}
	if len(rest) == 1 && rest[0] != "" && strings.TrimLeft(rest[0], "0123456789") == "" {
		pid, err := strconv.ParseUint(rest[0], 10, 64)
		if err != nil || pid > 1<<31-1 {
			return usagef("Invalid PID %s", rest[0])
		}
		o.PID = int(pid)
		o.NetNS = fmt.Sprintf("/proc/%d/ns/net", pid)
		if o.UserNS == "" && !p.netnsOnlySet {
			o.UserNS = fmt.Sprintf("/proc/%d/ns/user", pid)
		}
	}
	if o.NetNS != "" && o.UserNS == "" {
		o.NetNSOnly = true // implied: attaching with no user namespace given
	}
	return nil
}

// The option setters follow; each returns pasta's message for a bad value.

func setFD(p *parser, a string) error {
	n, ok := parseCNumber(a)
	if !ok || n <= 2 || n > 1<<31-1 {
		return usagef("Invalid --fd: %s", a)
	}
	p.o.FD = int(n)
	return nil
}

func setIfname(dst *string, a string) error {
	if a == "" || len(a) > maxIfname {
		return usagef("Invalid interface name: %s", a)
	}
	*dst = a
	return nil
}

func setIface(dst *string, a string) error {
	if a == "" || len(a) > maxIfname {
		return usagef("Invalid interface name %s: No such device", a)
	}
	*dst = a
	return nil
}

func setPath(dst *string, a, msg string) error {
	if a == "" || len(a) >= 4096 {
		return usagef(msg, a)
	}
	*dst = a
	return nil
}

// maxDName is pasta's PASST_MAXDNAME: a name must be shorter.
const maxDName = 254

func setName(dst *string, a, msg string) error {
	if len(a) >= maxDName {
		return usagef(msg, a)
	}
	*dst = a
	return nil
}

func setMTU(p *parser, a string) error {
	n, ok := parseCNumber(a)
	switch {
	case !ok:
		return usagef("Invalid MTU: %s", a)
	case n == 0:
		p.o.MTU = 0
	case n < 68 || n > 65535:
		return usagef("Invalid MTU: %s", a)
	default:
		p.o.MTU = int(n)
	}
	return nil
}

func setLogSize(p *parser, a string) error {
	const logfileSizeMin = 5 * 8192 // 5 * MAX(BUFSIZ, PAGE_SIZE)
	n, ok := parseCNumber(a)
	if !ok || n < logfileSizeMin {
		return usagef("Invalid --log-size: %s", a)
	}
	p.o.LogSize = n
	return nil
}

func setStats(p *parser, a string) error {
	if !p.o.Foreground {
		return usagef("Can't display statistics if not running in foreground")
	}
	return nil
}

func setRepairPath(p *parser, a string) error {
	if a != "none" {
		return usagef("--repair-path is for vhost-user mode only")
	}
	p.o.RepairPath = a
	return nil
}

// parseCNumber parses an unsigned number the way strtol(s, NULL, 0) reads a
// whole argument: decimal, 0x hex or 0 octal. Trailing garbage is refused.
func parseCNumber(s string) (int64, bool) {
	if s == "" || s[0] == '+' || s[0] == '-' {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 0, 64)
	if err != nil || strings.Contains(s, "_") || strings.HasPrefix(s, "0b") || strings.HasPrefix(s, "0o") {
		return 0, false
	}
	return n, true
}

// parseIP parses a bare IPv4 or IPv6 address as inet_pton does (no zone).
func parseIP(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a, true
}

// isV4Compat: ::a.b.c.d (IN6_IS_ADDR_V4COMPAT: first 96 bits zero, last
// 32 bits above 1).
func isV4Compat(a netip.Addr) bool {
	b := a.As16()
	for _, x := range b[:12] {
		if x != 0 {
			return false
		}
	}
	return b[12]|b[13]|b[14] != 0 || b[15] > 1
}

var ip4Broadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

// setFamily stores a in list, replacing an address of the same family.
func setFamily(list *[]netip.Addr, a netip.Addr) {
	for i, x := range *list {
		if x.Is4() == a.Is4() {
			(*list)[i] = a
			return
		}
	}
	*list = append(*list, a)
}

func setAddress(p *parser, s string) error {
	a, ok := parseIP(s)
	if ok && a.Is6() && !a.IsUnspecified() && !a.IsLoopback() && !a.Is4In6() && !isV4Compat(a) && !a.IsMulticast() ||
		ok && a.Is4() && !a.IsUnspecified() && a != ip4Broadcast && !a.IsLoopback() && !a.IsMulticast() {
		setFamily(&p.o.Addrs, a)
		return nil
	}
	return usagef("Invalid address: %s", s)
}

func setGateway(p *parser, s string) error {
	a, ok := parseIP(s)
	if ok && a.Is6() && !a.IsUnspecified() && !a.IsLoopback() ||
		ok && a.Is4() && !a.IsUnspecified() && a != ip4Broadcast && !a.IsLoopback() {
		setFamily(&p.o.Gateways, a)
		return nil
	}
	return usagef("Invalid gateway address: %s", s)
}

func setOutbound(p *parser, s string) error {
	a, ok := parseIP(s)
	if ok && a.Is6() && !a.IsUnspecified() && !a.IsLoopback() && !a.Is4In6() && !isV4Compat(a) && !a.IsMulticast() ||
		ok && a.Is4() && !a.IsUnspecified() && a != ip4Broadcast && !a.IsMulticast() {
		setFamily(&p.o.Outbound, a)
		return nil
	}
	return usagef("Invalid or redundant outbound address: %s", s)
}

func setDNSForward(p *parser, s string) error {
	a, ok := parseIP(s)
	if ok && a.Is6() && !a.IsUnspecified() && !a.IsLoopback() ||
		ok && a.Is4() && !a.IsUnspecified() && a != ip4Broadcast && !a.IsLoopback() {
		setFamily(&p.o.DNSForward, a)
		return nil
	}
	return usagef("Invalid DNS forwarding address: %s", s)
}

func setDNSHost(p *parser, s string) error {
	a, ok := parseIP(s)
	if ok && !a.IsUnspecified() && a != ip4Broadcast {
		setFamily(&p.o.DNSHost, a)
		return nil
	}
	return usagef("Invalid host nameserver address: %s", s)
}

// setNAT handles --map-host-loopback and --map-guest-addr (conf_nat):
// "none" clears the mapping (and, for the host loopback, implies
// --no-map-gw).
func setNAT(list *[]netip.Addr, s string, noMapGW *bool) error {
	if s == "none" {
		*list = nil
		if noMapGW != nil {
			*noMapGW = true
		}
		return nil
	}
	a, ok := parseIP(s)
	if ok && !a.IsUnspecified() && !a.IsLoopback() && !a.IsMulticast() {
		setFamily(list, a)
		return nil
	}
	return usagef("Invalid address to remap to host: %s", s)
}

func setNetmask(p *parser, s string) error {
	if a, ok := parseIP(s); ok && a.Is4() {
		b := a.As4()
		m := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		ones := 0
		for m&(1<<31) != 0 {
			m <<= 1
			ones++
		}
		if m != 0 {
			return usagef("Invalid netmask: %s", s)
		}
		p.o.Netmask = ones
		return nil
	}
	n, ok := parseCNumber(s)
	if !ok || n > 32 {
		return usagef("Invalid netmask: %s", s)
	}
	p.o.Netmask = int(n)
	return nil
}

func setMAC(dst *net.HardwareAddr, s string) error {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 || len(s) != 17 || strings.ContainsAny(s, "-.") {
		return usagef("Invalid MAC address: %s", s)
	}
	*dst = hw
	return nil
}

func setDNS(p *parser, s string) error {
	if s == "none" {
		p.o.NoDNS, p.o.DNS = true, nil
		return nil
	}
	a, ok := parseIP(s)
	if !ok {
		return usagef("Cannot use DNS address %s", s)
	}
	p.o.NoDNS = false
	p.o.DNS = append(p.o.DNS, a)
	return nil
}

func setSearch(p *parser, s string) error {
	if s == "none" {
		p.o.NoSearch, p.o.Search = true, nil
		return nil
	}
	if s == "" || len(s) >= maxDName {
		return usagef("Cannot use DNS search domain %s", s)
	}
	p.o.NoSearch = false
	p.o.Search = append(p.o.Search, s)
	return nil
}

func setUserNS(p *parser, a string) error {
	if a == "" || len(a) >= 4096 {
		return usagef("Invalid userns: %s", a)
	}
	p.o.UserNS, p.o.NetNSOnly, p.netnsOnlySet = a, false, false
	return nil
}

// netnsRunDir is where `ip netns` keeps named namespaces.
const netnsRunDir = "/run/netns"

func setNetNS(p *parser, a string) error {
	path := a
	if !strings.Contains(a, "/") {
		path = netnsRunDir + "/" + a
	}
	if len(path) > 4096 {
		return usagef("Network namespace name/path %s too long", a)
	}
	p.o.NetNS = path
	return nil
}

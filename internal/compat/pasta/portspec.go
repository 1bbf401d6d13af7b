package pasta

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// maxIfname is the longest interface name the kernel takes (IFNAMSIZ-1).
const maxIfname = 15

// Forward is one contiguous host→destination port range.
type Forward struct {
	Addr        netip.Addr // bound address (zero: any, both families)
	Iface       string     // ADDR%IFACE binding, or ""
	First, Last uint16     // listening ports
	To          uint16     // destination port of First (the range keeps its length)
	// Weak marks a range that came from an exclusions-only spec (`~25`) or
	// from `all`: pasta skips the host's ephemeral ports in it and does not
	// fail when some of its ports cannot be bound.
	Weak bool
}

// PortMode is how one direction and protocol forwards ports.
type PortMode int

// The forwarding modes of -t, -u, -T and -U.
const (
	PortNone     PortMode = iota // nothing (also the unset default)
	PortAuto                     // follow the ports bound on the other side
	PortAll                      // every non-ephemeral port (Forwards holds 1-65535, Weak)
	PortSpecific                 // the ranges in Forwards
)

var portModeNames = [...]string{"none", "auto", "all", "spec"}

// String names the mode as pasta spells it.
func (m PortMode) String() string {
	if m < 0 || int(m) >= len(portModeNames) {
		return fmt.Sprintf("PortMode(%d)", int(m))
	}
	return portModeNames[m]
}

// PortSpec is the accumulated forwarding of one option letter.
type PortSpec struct {
	Mode PortMode
	// Given: the option appeared at all. pasta's own default for an
	// absent option is auto; Podman always gives all four.
	Given    bool
	Forwards []Forward // exclusions already applied (split ranges)
}

// ParsePortSpec parses one -t/-u (host=true: address binding allowed) or
// -T/-U (host=false) argument on its own.
func ParsePortSpec(spec string, host bool) (PortSpec, error) {
	var ps PortSpec
	err := ps.add(spec, host)
	return ps, err
}

// add merges one option argument into the spec, as pasta's conf_ports()
// does for a repeated -t.
func (ps *PortSpec) add(spec string, host bool) error {
	given := ps.Given
	ps.Given = true
	switch spec {
	case "none", "auto", "all":
		if given {
			return usagef("Port forwarding mode '%s' conflicts with previous mode", spec)
		}
		ps.Mode = map[string]PortMode{"none": PortNone, "auto": PortAuto, "all": PortAll}[spec]
		if ps.Mode == PortAll {
			ps.Forwards = []Forward{{First: 1, Last: 65535, To: 1, Weak: true}}
		}
		return nil
	}
	if given && ps.Mode != PortSpecific {
		return usagef("Specific ports cannot be specified together with all/none/auto")
	}
	ps.Mode = PortSpecific
	fws, err := parseRanges(spec, host)
	if err != nil {
		return err
	}
	for _, n := range fws {
		for _, o := range ps.Forwards {
			if overlaps(n, o) {
				return usagef("Overlapping port specifier %s", spec)
			}
		}
	}
	ps.Forwards = append(ps.Forwards, fws...)
	return nil
}

// overlaps: two forwards would listen on a common port of a common address
// (no address or :: covers every address, 0.0.0.0 every IPv4 address).
func overlaps(a, b Forward) bool {
	if a.Last < b.First || b.Last < a.First {
		return false
	}
	wild := func(x netip.Addr) bool { return !x.IsValid() || x == netip.IPv6Unspecified() }
	switch {
	case wild(a.Addr) || wild(b.Addr):
		return true
	case a.Addr == netip.IPv4Unspecified() || b.Addr == netip.IPv4Unspecified():
		return a.Addr.Is4() && b.Addr.Is4()
	}
	return a.Addr == b.Addr
}

// portRange is an inclusive range of port numbers.
type portRange struct{ first, last uint16 }

// parseRanges parses `[ADDR[%IFACE]/]CHUNK[,CHUNK]...`.
func parseRanges(spec string, host bool) ([]Forward, error) {
	bad := usagef("Invalid port specifier %s", spec)
	var tmpl Forward
	list := spec
	if i := strings.IndexByte(spec, '/'); i >= 0 {
		if !host {
			return nil, bad
		}
		var ok bool
		if tmpl, ok = parseBinding(spec[:i]); !ok {
			return nil, bad
		}
		list = spec[i+1:]
	}
	var excl [65536]bool
	var incl []struct{ from, to portRange }
	exclOnly := true
	for _, chunk := range strings.Split(list, ",") {
		if rest, ok := strings.CutPrefix(chunk, "~"); ok {
			r, ok := parseRange(rest, false)
			if !ok {
				return nil, bad
			}
			for p := int(r.first); p <= int(r.last); p++ {
				if excl[p] {
					return nil, usagef("Overlapping port specifier %s", spec)
				}
				excl[p] = true
			}
			continue
		}
		exclOnly = false
		from, to, ok := parseMapped(chunk)
		if !ok {
			return nil, bad
		}
		for _, o := range incl {
			if from.first <= o.from.last && o.from.first <= from.last {
				return nil, usagef("Overlapping port specifier %s", spec)
			}
		}
		incl = append(incl, struct{ from, to portRange }{from, to})
	}
	if exclOnly {
		tmpl.Weak = true
		return splitExcept(tmpl, portRange{1, 65535}, 1, &excl), nil
	}
	var out []Forward
	for _, m := range incl {
		out = append(out, splitExcept(tmpl, m.from, m.to.first, &excl)...)
	}
	return out, nil
}

// parseBinding parses the `ADDR`, `ADDR%IFACE`, `%IFACE`, `*`, `*%IFACE` or
// `[ADDR]` part before the slash.
func parseBinding(s string) (Forward, bool) {
	var f Forward
	if a, iface, ok := strings.Cut(s, "%"); ok {
		if iface == "" || len(iface) > maxIfname || iface == "." || iface == ".." {
			return f, false
		}
		f.Iface, s = iface, a
		if s == "" {
			return f, true
		}
	}
	if s == "*" {
		return f, true
	}
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		s = s[1 : len(s)-1]
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return f, false
	}
	f.Addr = a
	return f, true
}

// parseMapped parses `A[-B][:C[-D]]`: the ranges must have one length and
// no port 0.
func parseMapped(s string) (from, to portRange, ok bool) {
	l, t, mapped := strings.Cut(s, ":")
	if from, ok = parseRange(l, true); !ok {
		return
	}
	to = from
	if mapped {
		if to, ok = parseRange(t, true); !ok {
			return
		}
	}
	ok = to.last-to.first == from.last-from.first
	return
}

// parseRange parses `A[-B]` with A <= B <= 65535 (and A >= 1 if nonzero).
func parseRange(s string, nonzero bool) (portRange, bool) {
	a, b, isRange := strings.Cut(s, "-")
	first, ok1 := parsePort(a)
	last, ok2 := first, true
	if isRange {
		last, ok2 = parsePort(b)
	}
	if !ok1 || !ok2 || last < first || (nonzero && first == 0) {
		return portRange{}, false
	}
	return portRange{first, last}, true
}

// parsePort parses a decimal port number 0-65535 (digits only).
func parsePort(s string) (uint16, bool) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 16)
	return uint16(n), err == nil
}

// splitExcept returns the parts of r not excluded, each a Forward like tmpl
// whose destination keeps r's offset to `to`.
func splitExcept(tmpl Forward, r portRange, to uint16, excl *[65536]bool) []Forward {
	var out []Forward
	for p := int(r.first); p <= int(r.last); p++ {
		if excl[p] {
			continue
		}
		q := p
		for q < int(r.last) && !excl[q+1] {
			q++
		}
		f := tmpl
		f.First, f.Last = uint16(p), uint16(q)
		f.To = uint16(int(to) + p - int(r.first))
		out = append(out, f)
		p = q
	}
	return out
}

package iptables

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/berthnet/berth/internal/firewall"
)

// dnatPrefix starts the name of every network's DNAT chain.
const dnatPrefix = "NETAVARK-DN-"

// dnat is a DNAT rule of a network's NETAVARK-DN chain: host ports of one
// protocol on one host address ("" for every address) sent to a container.
type dnat struct {
	dst         string
	proto       string
	first, last int
	to          string // the --to-destination value
}

// parseDNAT reads a DNAT rule spec in iptables-save form, e.g.
// "-d 127.0.0.1/32 -p udp -m udp --dport 15000:15001 -j DNAT
// --to-destination 198.19.1.2:5000-5001/15000".
func parseDNAT(spec string) (dnat, bool) {
	if jumpTarget(spec) != "DNAT" {
		return dnat{}, false
	}
	d, ok := parsePorts(spec)
	if !ok {
		return dnat{}, false
	}
	f := strings.Fields(spec)
	for i := 0; i+1 < len(f); i++ {
		switch f[i] {
		case "!", "-s":
			return dnat{}, false // negations are not berth's; -s marks hairpin or localhost traffic
		case "-d":
			d.dst = f[i+1]
		case "--to-destination":
			d.to = f[i+1]
		}
	}
	return d, d.to != ""
}

// parsePorts reads the protocol and host ports of a rule spec.
func parsePorts(spec string) (dnat, bool) {
	var d dnat
	f := strings.Fields(spec)
	ports := ""
	for i := 0; i+1 < len(f); i++ {
		switch f[i] {
		case "-p":
			d.proto = f[i+1]
		case "--dport":
			ports = f[i+1]
		}
	}
	return d, d.proto != "" && ports != "" && d.setPorts(ports)
}

// setPorts sets the host ports from a --dport value: "80" or "80:90".
func (d *dnat) setPorts(ports string) bool {
	lo, hi, ok := strings.Cut(ports, ":")
	if !ok {
		hi = lo
	}
	var err1, err2 error
	d.first, err1 = strconv.Atoi(lo)
	d.last, err2 = strconv.Atoi(hi)
	return err1 == nil && err2 == nil && d.first <= d.last
}

// target returns the container address and port that host port p of d
// goes to: "198.19.1.2:5001" for p 15001 of "198.19.1.2:5000-5001/15000".
func (d dnat) target(p int) string {
	i := strings.LastIndex(d.to, ":")
	if i < 0 {
		return d.to
	}
	addr, ports := d.to[:i], d.to[i+1:]
	rng, base, isRange := strings.Cut(ports, "/")
	if !isRange {
		return d.to
	}
	lo, _, _ := strings.Cut(rng, "-")
	first, err1 := strconv.Atoi(lo)
	b, err2 := strconv.Atoi(base)
	if err1 != nil || err2 != nil {
		return d.to
	}
	return addr + ":" + strconv.Itoa(first+p-b)
}

// hostPort describes host port p of d as "8080/tcp" (every address) or
// "127.0.0.1:8080/tcp".
func (d dnat) hostPort(p int) string {
	host := ""
	if d.dst != "" {
		a, _, _ := strings.Cut(d.dst, "/")
		if strings.Contains(a, ":") {
			a = "[" + a + "]"
		}
		host = a + ":"
	}
	return fmt.Sprintf("%s%d/%s", host, p, d.proto)
}

// jumpKey identifies the jumps from NETAVARK-HOSTPORT-DNAT to a
// network's DNAT chain for some host ports.
type jumpKey struct {
	chain       string
	proto       string
	first, last int
}

// jumpOwners returns the containers (by ID, from the rule comment "dnat
// name: NET id: ID") whose jumps in NETAVARK-HOSTPORT-DNAT lead to each
// chain for each protocol and host ports. Only these jumps name the
// container; the DNAT rules they lead to do not.
func jumpOwners(c *chain) map[jumpKey]map[string]bool {
	out := map[jumpKey]map[string]bool{}
	if c == nil {
		return out
	}
	for _, spec := range c.rules {
		_, rest, ok := strings.Cut(spec, `" id: `)
		if !ok {
			_, rest, ok = strings.Cut(spec, ` id: `)
		}
		if !ok {
			continue
		}
		id, _, _ := strings.Cut(rest, `"`)
		id = strings.TrimSpace(id)
		d, ok := parsePorts(spec)
		if !ok {
			continue
		}
		k := jumpKey{jumpTarget(spec), d.proto, d.first, d.last}
		if out[k] == nil {
			out[k] = map[string]bool{}
		}
		out[k][id] = true
	}
	return out
}

// findConflict returns firewall.ErrPortInUse when a host port that pf
// publishes in family f is already sent elsewhere by a DNAT rule of any
// network's NETAVARK-DN chain in rs (the same protocol and host address,
// a different destination). Rules that send it to the same place are
// pf's own from an earlier setup.
func findConflict(rs *ruleset, f family, pf firewall.PortForward) error {
	t := rs.tables[tableNAT]
	if t == nil {
		return nil
	}
	owners := jumpOwners(t.chains[chainHostportDNAT])
	var have []dnat
	for name, c := range t.chains {
		if !strings.HasPrefix(name, dnatPrefix) {
			continue
		}
		for _, spec := range c.rules {
			if d, ok := parseDNAT(spec); ok && !owners[jumpKey{name, d.proto, d.first, d.last}][pf.ContainerID] {
				have = append(have, d)
			}
		}
	}
	if len(have) == 0 {
		return nil
	}
	for _, r := range portRules(pf, f, netip.Prefix{}) {
		w, ok := parseDNAT(normalize(r.spec))
		if !ok || !strings.HasPrefix(r.chain, dnatPrefix) {
			continue
		}
		for _, h := range have {
			if h.proto == w.proto && h.dst == w.dst && h.first <= w.last && w.first <= h.last && h.to != w.to {
				p := max(h.first, w.first)
				return fmt.Errorf("%w: host port %s is already published to %s", firewall.ErrPortInUse, h.hostPort(p), h.target(p))
			}
		}
	}
	return nil
}

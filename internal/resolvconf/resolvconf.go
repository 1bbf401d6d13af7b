// Package resolvconf parses resolv.conf files and builds a container's
// /etc/resolv.conf the way Podman 4.3 does: the network's DNS server
// (aardvark) first, then the host's nameservers without loopback ones;
// user --dns, --dns-search and --dns-option replace the host's values.
// It is pure: callers read the host file and write the result.
package resolvconf

import (
	"bufio"
	"bytes"
	"net/netip"
	"strings"
)

// File is the content of a resolv.conf.
type File struct {
	Nameservers []netip.Addr
	Search      []string
	Options     []string
}

// Parse reads a resolv.conf; unknown lines and bad addresses are skipped.
func Parse(data []byte) File {
	var f File
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexAny(line, "#;"); i >= 0 {
			line = line[:i]
		}
		fs := strings.Fields(line)
		if len(fs) < 2 {
			continue
		}
		switch fs[0] {
		case "nameserver":
			if a, err := netip.ParseAddr(fs[1]); err == nil {
				f.Nameservers = append(f.Nameservers, a.Unmap())
			}
		case "search", "domain":
			f.Search = append([]string{}, fs[1:]...)
		case "options":
			f.Options = append(f.Options, fs[1:]...)
		}
	}
	return f
}

// Bytes renders the file: search, one nameserver per line, options.
func (f File) Bytes() []byte {
	var b bytes.Buffer
	if len(f.Search) > 0 {
		b.WriteString("search " + strings.Join(f.Search, " ") + "\n")
	}
	for _, n := range f.Nameservers {
		b.WriteString("nameserver " + n.String() + "\n")
	}
	if len(f.Options) > 0 {
		b.WriteString("options " + strings.Join(f.Options, " ") + "\n")
	}
	return b.Bytes()
}

// Params is the input of Build.
type Params struct {
	// Host is the host's resolv.conf.
	Host File
	// PrivateNetNS is true unless the container uses the host's namespace:
	// loopback nameservers are then unreachable and dropped.
	PrivateNetNS bool
	// IPv6 is true when the container has an IPv6 address.
	IPv6 bool
	// NetworkServers and NetworkSearch come from the networks' status
	// (aardvark's address and dns.podman).
	NetworkServers []netip.Addr
	NetworkSearch  []string
	// User values from --dns, --dns-search, --dns-option.
	Servers []netip.Addr
	Search  []string
	Options []string
}

var google4 = []netip.Addr{netip.MustParseAddr("8.8.8.8"), netip.MustParseAddr("8.8.4.4")}
var google6 = []netip.Addr{netip.MustParseAddr("2001:4860:4860::8888"), netip.MustParseAddr("2001:4860:4860::8844")}

// Build returns the container's file.
func Build(p Params) File {
	var out File
	switch {
	case len(p.Servers) > 0:
		out.Nameservers = append(out.Nameservers, p.Servers...)
	default:
		out.Nameservers = append(out.Nameservers, p.NetworkServers...)
		var host []netip.Addr
		for _, n := range p.Host.Nameservers {
			if p.PrivateNetNS && n.IsLoopback() {
				continue
			}
			if n.IsLinkLocalUnicast() {
				continue
			}
			if n.Is6() && !p.IPv6 && p.PrivateNetNS {
				continue
			}
			host = append(host, n)
		}
		if len(host) == 0 && len(p.NetworkServers) == 0 {
			host = append(host, google4...)
			if p.IPv6 {
				host = append(host, google6...)
			}
		}
		out.Nameservers = append(out.Nameservers, host...)
	}
	switch {
	case len(p.Search) > 0:
		if !(len(p.Search) == 1 && p.Search[0] == ".") {
			for _, s := range p.Search {
				if s != "." {
					out.Search = append(out.Search, s)
				}
			}
		}
	default:
		out.Search = append(append(out.Search, p.NetworkSearch...), p.Host.Search...)
	}
	if len(p.Options) > 0 {
		out.Options = append(out.Options, p.Options...)
	} else {
		out.Options = append(out.Options, p.Host.Options...)
	}
	return out
}

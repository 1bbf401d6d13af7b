// Package runopts parses the network options of `berth run`, `create` and
// `pod create` the way Podman does: -p/--publish, --expose, --network with
// per-network options, --add-host and --dns*; and the storage options of
// run and create: -v/--volume, --mount and --tmpfs (volume.go). It is pure: no syscalls, every
// error names the flag and what would be valid.
package runopts

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/berthnet/berth/internal/network"
)

// ParsePublish parses one -p/--publish value,
// [[hostIP:][hostPort]:]containerPort[-end][/proto[,proto]], into one
// mapping per protocol. A missing host port is 0 (a random port is chosen
// when the container is created); IPv6 host addresses are in brackets.
func ParsePublish(s string) ([]network.PortMapping, error) {
	pms, err := parsePublish(s)
	if err != nil {
		return nil, fmt.Errorf("--publish %q: %w", s, err)
	}
	return pms, nil
}

func parsePublish(s string) ([]network.PortMapping, error) {
	rest, protos, err := splitProto(s)
	if err != nil {
		return nil, err
	}
	var hostIP, hostPort, ctrPort string
	hasHostPort := false
	if strings.HasPrefix(rest, "[") {
		end := strings.Index(rest, "]")
		if end < 0 {
			return nil, fmt.Errorf("IPv6 address must be enclosed by []")
		}
		hostIP = rest[1:end]
		rest = rest[end+1:]
		r, ok := strings.CutPrefix(rest, ":")
		if !ok {
			return nil, fmt.Errorf("IPv6 address must be followed by a colon (':')")
		}
		parts := strings.Split(r, ":")
		if len(parts) != 2 {
			return nil, fmt.Errorf("when an IPv6 address is given the format is [IPv6]:hostPort:containerPort")
		}
		hostPort, ctrPort, hasHostPort = parts[0], parts[1], true
	} else if strings.Contains(rest, "]") {
		return nil, fmt.Errorf("IPv6 address must be enclosed by []")
	} else {
		parts := strings.Split(rest, ":")
		switch len(parts) {
		case 1:
			ctrPort = parts[0]
		case 2:
			hostPort, ctrPort, hasHostPort = parts[0], parts[1], true
		case 3:
			hostIP, hostPort, ctrPort, hasHostPort = parts[0], parts[1], parts[2], true
		default:
			return nil, fmt.Errorf("format is [[hostIP:]hostPort:]containerPort[/protocol] (IPv6 host addresses in [])")
		}
	}
	if hostIP != "" {
		a, err := netip.ParseAddr(hostIP)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("cannot parse %q as an IP address", hostIP)
		}
		hostIP = a.Unmap().String()
	}
	cStart, cLen, err := parseRange(ctrPort)
	if err != nil {
		return nil, fmt.Errorf("parsing container port: %w", err)
	}
	var hStart uint16
	if hasHostPort && hostPort != "" {
		hs, hLen, err := parseRange(hostPort)
		if err != nil {
			return nil, fmt.Errorf("parsing host port: %w", err)
		}
		if hLen != cLen {
			return nil, fmt.Errorf("host and container port ranges have different lengths: %d vs %d", hLen, cLen)
		}
		hStart = hs
	}
	var out []network.PortMapping
	for _, p := range protos {
		out = append(out, network.PortMapping{HostIP: hostIP, HostPort: hStart, ContainerPort: cStart, Range: cLen, Protocol: p})
	}
	return out, nil
}

func splitProto(s string) (string, []string, error) {
	rest, proto, found := strings.Cut(s, "/")
	if !found {
		return rest, []string{"tcp"}, nil
	}
	if strings.Contains(proto, "/") {
		return "", nil, fmt.Errorf("protocol can only be specified once")
	}
	var protos []string
	seen := map[string]bool{}
	for _, p := range strings.Split(proto, ",") {
		p = strings.ToLower(strings.TrimSpace(p))
		switch p {
		case "tcp", "udp", "sctp":
		default:
			return "", nil, fmt.Errorf("unrecognized protocol %q in port mapping (want tcp, udp or sctp)", p)
		}
		if !seen[p] {
			seen[p] = true
			protos = append(protos, p)
		}
	}
	return rest, protos, nil
}

// parseRange parses "N" or "N-M" into start and length.
func parseRange(s string) (uint16, uint16, error) {
	a, b, isRange := strings.Cut(s, "-")
	start, err := parsePort(a)
	if err != nil {
		return 0, 0, err
	}
	if !isRange {
		return start, 1, nil
	}
	end, err := parsePort(b)
	if err != nil {
		return 0, 0, err
	}
	if end < start {
		return 0, 0, fmt.Errorf("invalid port range %q: the end is below the start", s)
	}
	return start, end - start + 1, nil
}

func parsePort(s string) (uint16, error) {
	if s == "" {
		return 0, fmt.Errorf("a port number is missing")
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("cannot parse %q as a port number", s)
	}
	if n < 1 || n > 65535 {
		return 0, fmt.Errorf("port numbers must be between 1 and 65535 (inclusive), got %d", n)
	}
	return uint16(n), nil
}

// FormatExpose formats an exposed port (a mapping without host port) as
// an image config key: "80/tcp" or "80-81/udp".
func FormatExpose(e network.PortMapping) string {
	if e.Range > 1 {
		return fmt.Sprintf("%d-%d/%s", e.ContainerPort, int(e.ContainerPort)+int(e.Range)-1, e.Protocol)
	}
	return fmt.Sprintf("%d/%s", e.ContainerPort, e.Protocol)
}

// ParseExpose parses one --expose value (port[-end][/proto]) or an image's
// ExposedPorts key ("80/tcp") into a mapping without host port.
func ParseExpose(s string) (network.PortMapping, error) {
	p, proto, found := strings.Cut(s, "/")
	if !found {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	switch proto {
	case "tcp", "udp", "sctp":
	default:
		return network.PortMapping{}, fmt.Errorf("--expose %q: unrecognized protocol %q (want tcp, udp or sctp)", s, proto)
	}
	start, n, err := parseRange(p)
	if err != nil {
		return network.PortMapping{}, fmt.Errorf("--expose %q: %w", s, err)
	}
	return network.PortMapping{ContainerPort: start, Range: n, Protocol: proto}, nil
}

// PublishAll returns the mappings -P adds: every exposed port that no -p
// mapping publishes, to a random host port (0).
func PublishAll(exposed, published []network.PortMapping) []network.PortMapping {
	taken := map[network.PortMapping]bool{}
	for _, pm := range network.ExpandPorts(published...) {
		taken[network.PortMapping{ContainerPort: pm.ContainerPort, Range: 1, Protocol: pm.Protocol}] = true
	}
	var out []network.PortMapping
	for _, e := range network.ExpandPorts(exposed...) {
		if !taken[e] {
			out = append(out, e)
		}
	}
	return out
}

package network

// ExpandPorts lists the ports of mappings one by one, in order: a mapping
// of Range n becomes n mappings of Range 1, host port and container port
// advancing together (a host port of 0, still to be chosen, stays 0), with
// the protocol normalised. Every place that needs single ports (the
// firewall's map elements, bound sockets, user-mode forwards, inspect
// output) expands here.
func ExpandPorts(ms ...PortMapping) []PortMapping {
	var out []PortMapping
	for _, m := range ms {
		n := m.Ports()
		for i := 0; i < n; i++ {
			one := PortMapping{HostIP: m.HostIP, ContainerPort: m.ContainerPort + uint16(i), Range: 1, Protocol: NormalizeProtocol(m.Protocol)}
			if m.HostPort != 0 {
				one.HostPort = m.HostPort + uint16(i)
			}
			out = append(out, one)
		}
	}
	return out
}

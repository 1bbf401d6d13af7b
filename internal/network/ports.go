package network

import (
	"fmt"
	"sort"
)

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

// PortConflictError reports one host port published twice by the
// mappings of one container: mappings First and Second (indexes into the
// list checked) send Proto port Port of HostIP ("" for all addresses) to
// container ports FirstTo and SecondTo.
type PortConflictError struct {
	Proto             string
	HostIP            string
	Port              uint16
	First, Second     int
	FirstTo, SecondTo uint16
}

func (e *PortConflictError) Error() string {
	host := "all addresses"
	if e.HostIP != "" {
		host = e.HostIP
	}
	return fmt.Sprintf("host port %d/%s (%s) is published twice: to container port %d (mapping %d) and to container port %d (mapping %d); give each host port once",
		e.Port, e.Proto, host, e.FirstTo, e.First, e.SecondTo, e.Second)
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *PortConflictError) Unwrap() error { return ErrInvalid }

// portSlot is what the firewall keys a forward by, besides the port: the
// protocol and the host address, or a family's "every address".
type portSlot struct {
	proto string
	host  string // "4", "6" (every address of the family) or an address
}

// slots returns the slots a mapping's host ports take: a mapping without
// host IP takes every address of both families, 0.0.0.0 and :: every
// address of theirs.
func (p PortMapping) slots() []portSlot {
	proto := NormalizeProtocol(p.Protocol)
	if proto == "" {
		proto = "tcp"
	}
	h, err := p.HostAddr()
	switch {
	case err != nil:
		return []portSlot{{proto, p.HostIP}}
	case !h.IsValid():
		return []portSlot{{proto, "4"}, {proto, "6"}}
	case h.IsUnspecified() && h.Is4():
		return []portSlot{{proto, "4"}}
	case h.IsUnspecified():
		return []portSlot{{proto, "6"}}
	}
	return []portSlot{{proto, h.String()}}
}

// CheckPortConflicts reports the first host port that two of the mappings
// publish (same protocol, same or overlapping host address) as a
// *PortConflictError. Mappings whose host port is still to be chosen (0)
// are skipped. It sorts ranges rather than expanding them, so any number
// of mappings is checked quickly.
func CheckPortConflicts(ms []PortMapping) error {
	type span struct {
		idx        int
		start, end int // host ports, inclusive
	}
	bySlot := map[portSlot][]span{}
	for i, m := range ms {
		if m.HostPort == 0 {
			continue
		}
		for _, s := range m.slots() {
			bySlot[s] = append(bySlot[s], span{i, int(m.HostPort), int(m.HostPort) + m.Ports() - 1})
		}
	}
	var best *PortConflictError
	for slot, spans := range bySlot {
		sort.Slice(spans, func(a, b int) bool {
			if spans[a].start != spans[b].start {
				return spans[a].start < spans[b].start
			}
			return spans[a].idx < spans[b].idx
		})
		widest := spans[0] // of those seen, the one reaching furthest
		for _, s := range spans[1:] {
			if s.start <= widest.end {
				first, second := widest, s
				if first.idx > second.idx {
					first, second = second, first
				}
				port := s.start
				e := &PortConflictError{Proto: slot.proto, HostIP: ms[first.idx].HostIP, Port: uint16(port), First: first.idx, Second: second.idx,
					FirstTo:  ms[first.idx].ContainerPort + uint16(port-first.start),
					SecondTo: ms[second.idx].ContainerPort + uint16(port-second.start)}
				if best == nil || e.Second < best.Second || (e.Second == best.Second && e.First < best.First) {
					best = e
				}
				break
			}
			if s.end > widest.end {
				widest = s
			}
		}
	}
	if best != nil {
		return best
	}
	return nil
}

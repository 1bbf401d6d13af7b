package doctor

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// TCP states in /proc/net/tcp that matter here.
const (
	tcpListen = 0x0A
	tcpClose  = 0x07
)

// ParseProcNet reads a /proc/net/{tcp,tcp6,udp,udp6} table; proto is "tcp"
// or "udp". A TCP socket in LISTEN and a UDP socket with no remote address
// (state 07, unconnected) count as listening. Lines that do not parse are
// an error naming the line.
func ParseProcNet(r io.Reader, proto string) ([]Socket, error) {
	var out []Socket
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		f := strings.Fields(sc.Text())
		if line == 1 || len(f) == 0 {
			continue // header
		}
		if len(f) < 10 {
			return out, fmt.Errorf("line %d: %d fields, want at least 10", line, len(f))
		}
		local, err := parseHexAddrPort(f[1])
		if err != nil {
			return out, fmt.Errorf("line %d: local address: %w", line, err)
		}
		remote, err := parseHexAddrPort(f[2])
		if err != nil {
			return out, fmt.Errorf("line %d: remote address: %w", line, err)
		}
		st, err := strconv.ParseUint(f[3], 16, 8)
		if err != nil {
			return out, fmt.Errorf("line %d: state %q: %w", line, f[3], err)
		}
		inode, err := strconv.ParseUint(f[9], 10, 64)
		if err != nil {
			return out, fmt.Errorf("line %d: inode %q: %w", line, f[9], err)
		}
		s := Socket{Proto: proto, Local: local, Inode: inode}
		switch proto {
		case "tcp":
			s.Listening = st == tcpListen
		default:
			s.Listening = st == tcpClose && remote.Port() == 0 && remote.Addr().IsUnspecified()
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

// parseHexAddrPort parses the kernel's "0100007F:0035": the address as
// 32-bit words in host byte order, the port in hex.
func parseHexAddrPort(s string) (netip.AddrPort, error) {
	a, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("%q: no port", s)
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q: port: %w", s, err)
	}
	raw, err := hex.DecodeString(a)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, fmt.Errorf("%q: not an address", s)
	}
	b := make([]byte, len(raw))
	for i := 0; i < len(raw); i += 4 {
		binary.NativeEndian.PutUint32(b[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	addr, _ := netip.AddrFromSlice(b)
	return netip.AddrPortFrom(addr.Unmap(), uint16(port)), nil
}

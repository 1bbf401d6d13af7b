package pasta

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"syscall"

	"github.com/berthnet/berth/internal/usernet"
)

// addForwards starts the port forwards of -t, -u (host to namespace) and
// -T, -U (namespace to host).
func addForwards(st *usernet.Stack, o *Options) error {
	cfg := st.Config()
	for _, d := range []struct {
		letter byte
		proto  string
		spec   PortSpec
	}{{'t', "tcp", o.TCP}, {'u', "udp", o.UDP}} {
		if d.spec.Mode == PortAuto || !d.spec.Given {
			st.WatchGuestPorts(d.proto)
			continue
		}
		for _, f := range d.spec.Forwards {
			if err := hostToGuest(st, cfg, d.proto, d.letter, f); err != nil {
				return err
			}
		}
	}
	for _, d := range []struct {
		letter byte
		proto  string
		spec   PortSpec
	}{{'T', "tcp", o.TCPNS}, {'U', "udp", o.UDPNS}} {
		if d.spec.Mode == PortAuto || !d.spec.Given {
			st.WatchHostPorts(d.proto)
			continue
		}
		for _, f := range d.spec.Forwards {
			for p := int(f.First); p <= int(f.Last); p++ {
				to := uint16(p - int(f.First) + int(f.To))
				err := st.AddNSForward(usernet.NSForward{Proto: d.proto, NSPort: uint16(p), HostPort: to})
				if err != nil && !f.Weak {
					return bindError(uint16(p), d.letter, err)
				}
			}
		}
	}
	return nil
}

// hostToGuest listens for every port of f on the host (on its address,
// or on each of the guest's families) and forwards to the guest.
func hostToGuest(st *usernet.Stack, cfg usernet.Config, proto string, letter byte, f Forward) error {
	var binds []netip.Addr
	switch {
	case f.Addr.IsValid():
		binds = []netip.Addr{f.Addr}
	default:
		if cfg.Pasta.Addr4.IsValid() {
			binds = append(binds, netip.IPv4Unspecified())
		}
		if cfg.Pasta.Addr6.IsValid() {
			binds = append(binds, netip.IPv6Unspecified())
		}
	}
	lo, hi := ephemeral()
	for p := int(f.First); p <= int(f.Last); p++ {
		if f.Weak && p >= lo && p <= hi {
			continue // as pasta: "all" and exclusions leave ephemeral ports alone
		}
		to := uint16(p - int(f.First) + int(f.To))
		for _, b := range binds {
			guest := cfg.Guest()
			if b.Is6() {
				guest = cfg.Guest6()
			}
			if !guest.IsValid() {
				continue // an address of a family the guest lacks
			}
			_, err := st.AddForward(usernet.Forward{Proto: proto, HostAddr: b, HostPort: uint16(p), HostIface: f.Iface, GuestAddr: guest, GuestPort: to})
			if err != nil && !f.Weak {
				return bindError(uint16(p), letter, err)
			}
		}
	}
	return nil
}

// bindError is pasta's message for a port it cannot listen on.
func bindError(port uint16, letter byte, err error) error {
	cause := err
	var se syscall.Errno
	if errors.As(err, &se) {
		cause = se
	}
	//lint:ignore ST1005 pasta's own message, which Podman shows
	return fmt.Errorf("Failed to bind port %d (%v) for option '-%c %d', exiting", port, cause, letter, port)
}

// ephemeral is the host's ephemeral port range (ip_local_port_range).
func ephemeral() (lo, hi int) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if n, _ := fmt.Sscanf(string(b), "%d %d", &lo, &hi); n == 2 {
			return lo, hi
		}
	}
	return 32768, 60999
}

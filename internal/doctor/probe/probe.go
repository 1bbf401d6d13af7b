// Package probe reads, from the kernel, the state of a network namespace
// that berth's doctor checks: sysctls, links, routes of every table,
// policy rules, other tables' chains on the forward path that drop
// traffic (nftables, which also shows iptables-nft's rules), sockets and
// their owners, and conntrack entries. It only reads; what it cannot read
// it names in Snapshot.Unread.
package probe

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/doctor"
	"github.com/berthnet/berth/internal/link"
	"github.com/berthnet/berth/internal/netns"
	"github.com/berthnet/berth/internal/sysctl"
)

// Request says what to read besides the namespace-wide state.
type Request struct {
	// Bridges whose per-interface sysctls (rp_filter) are read.
	Bridges []string
	// OwnTable is berth's nftables table ("berth", family inet): its
	// chains are berth's, never foreign drops.
	OwnTable string
}

// Collect reads the namespace ns (nil: the caller's) into a Snapshot.
// Firewall and DNS are left for the caller (they come from berth's own
// driver and records).
func Collect(ns *netns.NetNS, req Request) doctor.Snapshot {
	s := doctor.Snapshot{Sysctls: map[string]string{}}
	readSysctls(ns, req.Bridges, &s)
	h, err := link.NewHandle(ns)
	if err != nil {
		s.Unread = append(s.Unread, fmt.Sprintf("links and routes: %v", err))
	} else {
		readLinks(h, &s)
		readRoutes(h, &s)
		readRules(h, &s)
		h.Close()
	}
	readFlows(ns, &s)
	readDrops(ns, req.OwnTable, &s)
	readSockets(ns, &s)
	return s
}

var hostSysctls = []string{
	"net.ipv4.ip_forward",
	"net.ipv6.conf.all.forwarding",
	"net.ipv4.conf.all.rp_filter",
	"net.bridge.bridge-nf-call-iptables",
	"net.bridge.bridge-nf-call-ip6tables",
}

func readSysctls(ns *netns.NetNS, bridges []string, s *doctor.Snapshot) {
	for _, k := range hostSysctls {
		if v, err := sysctl.Get(ns, k); err == nil {
			s.Sysctls[k] = v
		}
	}
	for _, br := range bridges {
		if v, err := sysctl.Get(ns, sysctl.Key("net", "ipv4", "conf", br, "rp_filter")); err == nil {
			s.Sysctls["net.ipv4.conf."+br+".rp_filter"] = v
		}
	}
}

func readLinks(h *link.Handle, s *doctor.Snapshot) {
	ls, err := h.Links()
	if err != nil {
		s.Unread = append(s.Unread, fmt.Sprintf("links: %v", err))
		return
	}
	s.Links = []doctor.Link{}
	for _, l := range ls {
		s.Links = append(s.Links, doctor.Link{Name: l.Name, Kind: l.Kind, MTU: l.MTU, Up: l.Up})
	}
}

func readRoutes(h *link.Handle, s *doctor.Snapshot) {
	names := map[int]string{}
	ls, _ := h.Links()
	for _, l := range ls {
		names[l.Index] = l.Name
	}
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rs, err := h.RouteListFiltered(fam, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
		if err != nil {
			s.Unread = append(s.Unread, fmt.Sprintf("routes: %v", err))
			return
		}
		for _, r := range rs {
			s.Routes = append(s.Routes, route(r, fam, names))
		}
	}
}

func route(r netlink.Route, fam int, names map[int]string) doctor.Route {
	out := doctor.Route{Dev: names[r.LinkIndex], Table: r.Table, Metric: r.Priority, Type: routeType(r.Type)}
	if r.Dst != nil {
		out.Dst = prefixOf(r.Dst)
	} else if fam == netlink.FAMILY_V4 {
		out.Dst = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	} else {
		out.Dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	}
	if a, ok := netip.AddrFromSlice(r.Gw); ok {
		out.Gateway = a.Unmap()
	}
	return out
}

func routeType(t int) string {
	switch t {
	case unix.RTN_UNICAST:
		return "unicast"
	case unix.RTN_LOCAL:
		return "local"
	case unix.RTN_BROADCAST:
		return "broadcast"
	case unix.RTN_BLACKHOLE:
		return "blackhole"
	case unix.RTN_UNREACHABLE:
		return "unreachable"
	case unix.RTN_PROHIBIT:
		return "prohibit"
	case unix.RTN_MULTICAST:
		return "multicast"
	case unix.RTN_ANYCAST:
		return "anycast"
	}
	return "type " + strconv.Itoa(t)
}

func prefixOf(n *net.IPNet) netip.Prefix {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}
	}
	a = a.Unmap()
	bits, _ := n.Mask.Size()
	if a.Is4() && bits > 32 {
		bits -= 96
	}
	return netip.PrefixFrom(a, bits).Masked()
}

func readRules(h *link.Handle, s *doctor.Snapshot) {
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rs, err := h.RuleList(fam)
		if err != nil {
			s.Unread = append(s.Unread, fmt.Sprintf("routing rules: %v", err))
			return
		}
		for _, r := range rs {
			if r.Table == 0 || r.Goto > 0 {
				continue
			}
			out := doctor.Rule{Priority: r.Priority, Table: r.Table, Family: 4, Mark: r.Mark != 0 || r.Mask != nil, Invert: r.Invert,
				Iface: r.IifName != "" || r.OifName != "", SuppressPrefixLen: r.SuppressPrefixlen}
			if fam == netlink.FAMILY_V6 {
				out.Family = 6
			}
			if r.Src != nil {
				out.Src = prefixOf(r.Src)
			}
			if r.Dst != nil {
				out.Dst = prefixOf(r.Dst)
			}
			s.Rules = append(s.Rules, out)
		}
	}
}

// inNS runs fn inside ns, or in the calling thread's namespace when ns is
// nil.
func inNS(ns *netns.NetNS, fn func() error) error {
	if ns == nil {
		return fn()
	}
	return ns.Do(fn)
}

// readFlows reads the conntrack table through a netfilter netlink socket
// opened inside ns (a route handle's requests of another family would go
// out on a socket of the calling thread's namespace).
func readFlows(ns *netns.NetNS, s *doctor.Snapshot) {
	var h *netlink.Handle
	open := func() error {
		var err error
		h, err = netlink.NewHandle(unix.NETLINK_NETFILTER)
		return err
	}
	if err := inNS(ns, open); err != nil {
		s.Unread = append(s.Unread, fmt.Sprintf("conntrack table: %v", err))
		return
	}
	defer h.Close()
	for _, fam := range []netlink.InetFamily{unix.AF_INET, unix.AF_INET6} {
		fs, err := h.ConntrackTableList(netlink.ConntrackTable, fam)
		if err != nil {
			s.Unread = append(s.Unread, fmt.Sprintf("conntrack table: %v", err))
			return
		}
		for _, f := range fs {
			s.Flows = append(s.Flows, doctor.Flow{
				Proto:    protoName(f.Forward.Protocol),
				OrigSrc:  addrPort(f.Forward.SrcIP, f.Forward.SrcPort),
				OrigDst:  addrPort(f.Forward.DstIP, f.Forward.DstPort),
				ReplySrc: addrPort(f.Reverse.SrcIP, f.Reverse.SrcPort),
				ReplyDst: addrPort(f.Reverse.DstIP, f.Reverse.DstPort),
			})
		}
	}
}

func protoName(p uint8) string {
	switch p {
	case unix.IPPROTO_TCP:
		return "tcp"
	case unix.IPPROTO_UDP:
		return "udp"
	case unix.IPPROTO_SCTP:
		return "sctp"
	case unix.IPPROTO_ICMP:
		return "icmp"
	}
	return strconv.Itoa(int(p))
}

func addrPort(ip net.IP, port uint16) netip.AddrPort {
	a, _ := netip.AddrFromSlice(ip)
	return netip.AddrPortFrom(a.Unmap(), port)
}

// readSockets reads the namespace's TCP and UDP tables (through
// /proc/thread-self, which follows the thread's namespace) and the
// owners of listening sockets.
func readSockets(ns *netns.NetNS, s *doctor.Snapshot) {
	read := func() error {
		for _, t := range []struct{ file, proto string }{{"tcp", "tcp"}, {"tcp6", "tcp"}, {"udp", "udp"}, {"udp6", "udp"}} {
			f, err := os.Open(filepath.Join("/proc/thread-self/net", t.file))
			if os.IsNotExist(err) && strings.HasSuffix(t.file, "6") {
				continue // IPv6 disabled
			}
			if err != nil {
				return err
			}
			socks, err := doctor.ParseProcNet(f, t.proto)
			f.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", t.file, err)
			}
			s.Sockets = append(s.Sockets, socks...)
		}
		return nil
	}
	if err := inNS(ns, read); err != nil {
		s.Unread = append(s.Unread, fmt.Sprintf("sockets: %v", err))
		return
	}
	addOwners(s.Sockets)
}

// addOwners finds, through /proc/PID/fd, the processes that hold the
// listening sockets open.
func addOwners(socks []doctor.Socket) {
	want := map[uint64][]int{}
	for i, sk := range socks {
		if sk.Listening && sk.Inode != 0 {
			want[sk.Inode] = append(want[sk.Inode], i)
		}
	}
	if len(want) == 0 {
		return
	}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		fds, _ := os.ReadDir(filepath.Join("/proc", p.Name(), "fd"))
		var cmd string
		for _, fd := range fds {
			target, err := os.Readlink(filepath.Join("/proc", p.Name(), "fd", fd.Name()))
			if err != nil || !strings.HasPrefix(target, "socket:[") {
				continue
			}
			ino, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]"), 10, 64)
			if err != nil || want[ino] == nil {
				continue
			}
			if cmd == "" {
				cmd = cmdline(pid)
			}
			for _, i := range want[ino] {
				if !hasPID(socks[i].Owners, pid) {
					socks[i].Owners = append(socks[i].Owners, doctor.Process{PID: pid, Command: cmd})
				}
			}
		}
	}
}

func hasPID(ps []doctor.Process, pid int) bool {
	for _, p := range ps {
		if p.PID == pid {
			return true
		}
	}
	return false
}

func cmdline(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(b) == 0 {
		c, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		return strings.TrimSpace(string(c))
	}
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}

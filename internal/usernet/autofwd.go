package usernet

import (
	"bufio"
	"bytes"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// autoScan is how often pasta-style "auto" forwarding looks at the bound
// ports (pasta(1): every second).
const autoScan = time.Second

// Socket states in /proc/net/{tcp,udp}: a listening TCP socket, a bound
// unconnected UDP one.
const (
	tcpListen   = "0A"
	udpUnconned = "07"
)

// ParseBoundPorts returns the local ports of the sockets in a
// /proc/net/{tcp,tcp6,udp,udp6} table whose state is listening (TCP) or
// unconnected (UDP), sorted and without duplicates. Lines it cannot read
// are skipped.
func ParseBoundPorts(table []byte, udp bool) []uint16 {
	want := tcpListen
	if udp {
		want = udpUnconned
	}
	var out []uint16
	sc := bufio.NewScanner(bytes.NewReader(table))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || f[3] != want {
			continue
		}
		_, port, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(port, 16, 16)
		if err != nil || n == 0 {
			continue
		}
		out = append(out, uint16(n))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// boundPorts reads the calling thread's namespace's bound ports of proto
// (both families).
func boundPorts(proto string) []uint16 {
	var all []uint16
	for _, t := range []string{proto, proto + "6"} {
		b, err := os.ReadFile("/proc/thread-self/net/" + t)
		if err != nil {
			continue
		}
		all = append(all, ParseBoundPorts(b, proto == "udp")...)
	}
	slices.Sort(all)
	return slices.Compact(all)
}

// WatchGuestPorts is pasta's "auto" for -t/-u: every port bound in the
// guest's namespace (but those the stack binds there itself) is forwarded
// from the same port on the host, while it stays bound.
func (st *Stack) WatchGuestPorts(proto string) {
	if st.cfg.GuestNetNS == "" {
		return
	}
	w, err := st.kernelNS(st.cfg.GuestNetNS)
	if err != nil {
		st.releaseNS(st.cfg.GuestNetNS)
		st.log.Warn("auto forwarding: cannot enter the guest's namespace", "err", err)
		return
	}
	ids := map[uint16][]int{}
	st.watch(func() {
		var ports []uint16
		w.w.Do(func() { ports = boundPorts(proto) })
		st.syncForwards(ids, ports, st.ownNSPorts(proto), func(p uint16) []int {
			var got []int
			for _, guest := range []netip.Addr{st.cfg.Guest(), st.cfg.Guest6()} {
				if !guest.IsValid() {
					continue
				}
				host := netip.IPv4Unspecified()
				if guest.Is6() {
					host = netip.IPv6Unspecified()
				}
				if f, err := st.AddForward(Forward{Proto: proto, HostAddr: host, HostPort: p, GuestAddr: guest, GuestPort: p}); err == nil {
					got = append(got, f.ID)
				}
			}
			return got
		}, func(id int) { _ = st.RemoveForward(id) })
	}, func() { st.releaseNS(st.cfg.GuestNetNS) })
}

// WatchHostPorts is pasta's "auto" for -T/-U: every port bound on the
// host (but those the stack binds itself) is forwarded from the guest's
// loopback, while it stays bound.
func (st *Stack) WatchHostPorts(proto string) {
	if st.cfg.GuestNetNS == "" {
		return
	}
	stops := map[uint16]func(){}
	ids := map[uint16][]int{}
	st.watch(func() {
		st.syncForwards(ids, boundPorts(proto), st.ownHostPorts(proto), func(p uint16) []int {
			stop, err := st.addNSForward(NSForward{Proto: proto, NSPort: p, HostPort: p})
			if err != nil {
				return nil
			}
			stops[p] = stop
			return []int{int(p)}
		}, func(id int) {
			if stop := stops[uint16(id)]; stop != nil {
				stop()
				delete(stops, uint16(id))
			}
		})
	}, func() {
		for _, stop := range stops {
			stop()
		}
	})
}

// watch runs scan every autoScan until the stack closes, then done.
func (st *Stack) watch(scan, done func()) {
	st.wg.Add(1)
	go func() {
		defer st.wg.Done()
		defer done()
		t := time.NewTicker(autoScan)
		defer t.Stop()
		for {
			scan()
			select {
			case <-st.ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// syncForwards makes the forwards in ids follow the bound ports: new ones
// are added (unless the stack's own), vanished ones removed.
func (st *Stack) syncForwards(ids map[uint16][]int, bound, own []uint16, add func(uint16) []int, remove func(int)) {
	for _, p := range bound {
		if _, ok := ids[p]; ok || slices.Contains(own, p) {
			continue
		}
		ids[p] = add(p)
	}
	for p, list := range ids {
		if slices.Contains(bound, p) {
			continue
		}
		for _, id := range list {
			remove(id)
		}
		delete(ids, p)
	}
}

// ownHostPorts are the host ports the stack's own forwards listen on.
func (st *Stack) ownHostPorts(proto string) []uint16 {
	st.mu.Lock()
	defer st.mu.Unlock()
	var out []uint16
	for _, f := range st.forwards {
		if f.Proto == proto {
			out = append(out, f.HostPort)
		}
	}
	return out
}

// ownNSPorts are the guest ports the stack's namespace-to-host forwards
// listen on.
func (st *Stack) ownNSPorts(proto string) []uint16 {
	st.mu.Lock()
	defer st.mu.Unlock()
	var out []uint16
	for f := range st.nsForwards {
		if f.Proto == proto {
			out = append(out, f.NSPort)
		}
	}
	return out
}

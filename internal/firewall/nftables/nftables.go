// Package nftables is berth's default firewall driver. It programs the kernel
// over netlink (github.com/google/nftables) in one atomic batch per call and
// never runs the nft binary.
//
// Everything lives in the table "inet berth". Per-network rules are few and
// are tagged with the network ID in their comment; per-container state is
// only elements of maps, so the cost of adding or removing a container does
// not grow with the number of containers:
//
//	table inet berth {
//	  map pf4    { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service }  # host_ip set
//	  map pf4any { type inet_proto . inet_service : ipv4_addr . inet_service }              # all addresses
//	  map pf6, pf6any                                                                       # the same for IPv6
//	  set isolated { type ifname }   # bridges with isolate=true|strict
//	  set bridges  { type ifname }   # every bridge berth manages
//	  chain prerouting  { type nat hook prerouting priority dstnat;  fib daddr type local jump hostports }
//	  chain output      { type nat hook output priority dstnat;      fib daddr type local jump hostports }
//	  chain hostports   { [per network: ip daddr GW meta l4proto {tcp,udp} th dport 53 dnat to GW:PORT]
//	                      dnat ip to ip daddr . meta l4proto . th dport map @pf4
//	                      dnat ip to meta l4proto . th dport map @pf4any  (and ip6) }
//	  chain postrouting { type nat hook postrouting priority srcnat;
//	                      ip saddr 127.0.0.0/8 ct status dnat masquerade
//	                      [per network: ip saddr S ip daddr S ct status dnat masquerade      # hairpin
//	                                    ip saddr S ip daddr != S ip daddr != 224.0.0.0/4 masquerade] }
//	  chain forward     { type filter hook forward priority filter;
//	                      ct status dnat accept        # published ports pass isolation
//	                      jump isolation
//	                      [per network: ip daddr S ct state established,related accept; ip saddr S accept] }
//	  chain isolation   { [per network: iifname B oifname != B oifname @isolated|@bridges drop] }
//	}
package nftables

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/firewall"
	"github.com/berthnet/berth/internal/netns"
	"github.com/berthnet/berth/internal/network"
)

// TableName is the name of berth's table (family inet).
const TableName = "berth"

const tagPrefix = "berth net "

// Driver is the nftables firewall driver bound to one network namespace.
type Driver struct {
	nsFd int // -1: the calling thread's namespace
	// dial, when set, stands in for the kernel's netlink socket: it gets
	// the messages the driver sends and returns the replies (tests).
	dial func([]netlink.Message) ([]netlink.Message, error)
	// cookie, when set, stands in for reading the namespace's cookie
	// from the socket (tests).
	cookie func() (uint64, error)
	// afterCommit, when set, runs after each commit (tests; see
	// AfterCommit).
	afterCommit func()

	mu     sync.Mutex
	follow following
}

// New returns a driver that programs the namespace open at nsFd; pass -1
// for the namespace of the calling process.
func New(nsFd int) *Driver { return &Driver{nsFd: nsFd} }

var _ firewall.Driver = (*Driver)(nil)

// Name implements firewall.Driver.
func (d *Driver) Name() string { return firewall.DriverNftables }

// conn is the netlink socket of one call (every request and batch of the
// call goes through it).
type conn struct {
	*nftables.Conn
	fd      int           // the socket's descriptor, -1 if unknown
	nl      *netlink.Conn // the socket, for requests the library lacks
	commits int           // the batches the kernel took (see commit)
	after   func()        // the driver's afterCommit
}

// commit sends the queued batch and counts it when the kernel took it.
// Callers call it only with something queued: the library sends no batch
// for nothing, which would count a commit the kernel never saw.
func (c *conn) commit() error {
	if err := c.Flush(); err != nil {
		return err
	}
	c.commits++
	if c.after != nil {
		c.after()
	}
	return nil
}

// conn opens the socket of a call; callers close it.
func (d *Driver) conn() (*conn, error) {
	lc := &conn{fd: -1, after: d.afterCommit}
	opts := []nftables.ConnOption{nftables.AsLasting(), nftables.WithSockOptions(func(nc *netlink.Conn) error {
		lc.nl = nc
		rc, err := nc.SyscallConn()
		if err != nil {
			return nil // no descriptor: close waits (see close)
		}
		return rc.Control(func(fd uintptr) { lc.fd = int(fd) })
	})}
	if d.dial != nil {
		opts = append(opts, nftables.WithTestDial(d.dial))
	}
	var err error
	if d.nsFd >= 0 {
		// The lasting socket is opened on berth's own thread inside the
		// namespace rather than with WithNetNSFd, which fails when the
		// thread cannot switch back (root of a user namespace, rootless,
		// cannot re-enter the host's namespace).
		err = netns.DoFd(d.nsFd, func() error {
			var e error
			lc.Conn, e = nftables.New(opts...)
			return e
		})
	} else {
		lc.Conn, err = nftables.New(opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("open nftables netlink socket: %w", err)
	}
	return lc, nil
}

// close closes the call's socket without waiting for the kernel. The last
// close of an nf_tables netlink socket waits until the objects of the
// previous commit are freed, which the kernel does after an RCU grace
// period (nf_tables_trans_destroy_flush_work in its NETLINK_URELEASE
// handler): 5-20 ms here, as much as a whole setup. So before closing,
// a reference to the socket is parked in the receive queue of a unix
// socket that holds itself there too and that nothing else refers to:
// the kernel's unix socket garbage collector, which runs in a kernel
// worker, frees that cycle, and the socket's last close waits there
// instead of in this process (or in its exit). That needs a kernel whose
// collector runs in a worker (6.8 and later); an older one collects inline
// when the unix socket closes, and the wait stays here, as before. Without
// a descriptor the socket is closed directly.
func (c *conn) close() {
	done := func() {}
	if c.fd >= 0 {
		done = park(c.fd)
	}
	_ = c.CloseLasting()
	done()
}

// park puts a reference to the open file fd in flight in a unix socket
// that becomes unreachable when the returned function has run, after the
// caller closed fd (see close): the collector must not free the cycle
// before this process has dropped its own reference.
func park(fd int) func() {
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return func() {}
	}
	// sp[0] receives a message that carries fd and sp[0] itself: once
	// both descriptors here are closed, only that message refers to sp[0].
	_ = unix.Sendmsg(sp[1], []byte{0}, unix.UnixRights(fd, sp[0]), nil, unix.MSG_DONTWAIT)
	return func() {
		unix.Close(sp[0])
		unix.Close(sp[1])
	}
}

// objects holds the table's named objects; the IDs of sets are only
// meaningful inside the batch that created them.
type objects struct {
	table                           *nftables.Table
	prerouting, output, hostports   *nftables.Chain
	postrouting, forward, isolation *nftables.Chain
	pf4, pf4any, pf6, pf6any        *nftables.Set
	isolated, bridges               *nftables.Set
}

func newObjects() *objects {
	t := &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}
	accept := nftables.ChainPolicyAccept
	o := &objects{table: t}
	o.prerouting = &nftables.Chain{Name: "prerouting", Table: t, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest, Policy: &accept}
	o.output = &nftables.Chain{Name: "output", Table: t, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest, Policy: &accept}
	o.postrouting = &nftables.Chain{Name: "postrouting", Table: t, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource, Policy: &accept}
	o.forward = &nftables.Chain{Name: "forward", Table: t, Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept}
	o.hostports = &nftables.Chain{Name: "hostports", Table: t}
	o.isolation = &nftables.Chain{Name: "isolation", Table: t}
	proto := nftables.TypeInetProto
	svc := nftables.TypeInetService
	o.pf4 = &nftables.Set{Table: t, Name: "pf4", IsMap: true, Concatenation: true,
		KeyType:  nftables.MustConcatSetType(nftables.TypeIPAddr, proto, svc),
		DataType: nftables.MustConcatSetType(nftables.TypeIPAddr, svc)}
	o.pf4any = &nftables.Set{Table: t, Name: "pf4any", IsMap: true, Concatenation: true,
		KeyType:  nftables.MustConcatSetType(proto, svc),
		DataType: nftables.MustConcatSetType(nftables.TypeIPAddr, svc)}
	o.pf6 = &nftables.Set{Table: t, Name: "pf6", IsMap: true, Concatenation: true,
		KeyType:  nftables.MustConcatSetType(nftables.TypeIP6Addr, proto, svc),
		DataType: nftables.MustConcatSetType(nftables.TypeIP6Addr, svc)}
	o.pf6any = &nftables.Set{Table: t, Name: "pf6any", IsMap: true, Concatenation: true,
		KeyType:  nftables.MustConcatSetType(proto, svc),
		DataType: nftables.MustConcatSetType(nftables.TypeIP6Addr, svc)}
	// ifname keys are strings; native byte order makes `nft list` print them.
	o.isolated = &nftables.Set{Table: t, Name: "isolated", KeyType: nftables.TypeIFName, KeyByteOrder: binaryutil.NativeEndian}
	o.bridges = &nftables.Set{Table: t, Name: "bridges", KeyType: nftables.TypeIFName, KeyByteOrder: binaryutil.NativeEndian}
	return o
}

// createBase queues the table with its chains, sets and global rules.
func (o *objects) createBase(c *nftables.Conn) error {
	c.AddTable(o.table)
	for _, ch := range o.chains() {
		c.AddChain(ch)
	}
	for _, s := range []*nftables.Set{o.pf4, o.pf4any, o.pf6, o.pf6any, o.isolated, o.bridges} {
		if err := c.AddSet(s, nil); err != nil {
			return fmt.Errorf("add set %s: %w", s.Name, err)
		}
	}
	for _, r := range o.baseRules() {
		c.AddRule(&nftables.Rule{Table: o.table, Chain: r.chain, Exprs: r.exprs, UserData: baseTag()})
	}
	return nil
}

// baseRules are the rules every berth table has, whatever its networks.
func (o *objects) baseRules() []ruleSpec {
	var out []ruleSpec
	add := func(ch *nftables.Chain, e []expr.Any) { out = append(out, ruleSpec{chain: ch, exprs: e}) }
	add(o.prerouting, rule(matchFibLocal(), one(jump(o.hostports.Name))))
	add(o.output, rule(matchFibLocal(), one(jump(o.hostports.Name))))
	add(o.hostports, dnatMap(unix.NFPROTO_IPV4, true, o.pf4))
	add(o.hostports, dnatMap(unix.NFPROTO_IPV4, false, o.pf4any))
	add(o.hostports, dnatMap(unix.NFPROTO_IPV6, true, o.pf6))
	add(o.hostports, dnatMap(unix.NFPROTO_IPV6, false, o.pf6any))
	lo := netip.MustParsePrefix("127.0.0.0/8")
	add(o.postrouting, rule(matchFamily(unix.NFPROTO_IPV4), matchPrefix(lo, true, false), matchCtStatusDNAT(), one(&expr.Masq{})))
	add(o.forward, rule(matchCtStatusDNAT(), one(verdictAccept)))
	add(o.forward, one(jump(o.isolation.Name)))
	return out
}

// baseComment marks the rules of the table itself: they show in `nft list`
// as comment "berth", and tell berth's table from one that only has its
// name.
const baseComment = "berth"

func baseTag() []byte {
	return userdata.AppendString(nil, userdata.TypeComment, baseComment)
}

func tag(netID string) []byte {
	return userdata.AppendString(nil, userdata.TypeComment, tagPrefix+netID)
}

// marked reports whether a rule of the table's chains carries one of
// berth's comments.
func marked(c *nftables.Conn, o *objects) bool {
	for _, ch := range o.chains() {
		rules, err := c.GetRules(o.table, ch)
		if err != nil {
			continue
		}
		for _, r := range rules {
			if cm := comment(r); cm == baseComment || ruleTag(r) != "" {
				return true
			}
		}
	}
	return false
}

// comment returns a rule's comment ("" when it has none).
func comment(r *nftables.Rule) string {
	s, _ := userdata.GetString(r.UserData, userdata.TypeComment)
	return strings.TrimRight(s, "\x00")
}

// ruleTag returns the network ID a rule is tagged with ("" for a rule
// that is no network's).
func ruleTag(r *nftables.Rule) string {
	id, ok := strings.CutPrefix(comment(r), tagPrefix)
	if !ok {
		return ""
	}
	return id
}

// ruleSpec is one rule of berth's: the chain it goes in, its
// expressions, and whether it goes first (insert) or last.
type ruleSpec struct {
	chain  *nftables.Chain
	exprs  []expr.Any
	insert bool
}

// networkRules returns the per-network rules of n, in the order they are
// added.
func (o *objects) networkRules(n firewall.NetworkRules) []ruleSpec {
	var out []ruleSpec
	add := func(ch *nftables.Chain, e []expr.Any) { out = append(out, ruleSpec{chain: ch, exprs: e}) }
	for _, s := range n.Subnets {
		s = s.Masked()
		f := family(s.Addr())
		mcast := netip.MustParsePrefix("224.0.0.0/4")
		if f == unix.NFPROTO_IPV6 {
			mcast = netip.MustParsePrefix("ff00::/8")
		}
		if !n.NoHairpin {
			add(o.postrouting, rule(matchFamily(f), matchPrefix(s, true, false), matchPrefix(s, false, false), matchCtStatusDNAT(), one(&expr.Masq{})))
		}
		if !n.NoMasquerade {
			add(o.postrouting, rule(matchFamily(f), matchPrefix(s, true, false), matchPrefix(s, false, true), matchPrefix(mcast, false, true), outbound(n, f)))
		}
		add(o.forward, rule(matchFamily(f), matchPrefix(s, false, false), matchCtEstablished(), one(verdictAccept)))
		add(o.forward, rule(matchFamily(f), matchPrefix(s, true, false), one(verdictAccept)))
	}
	if n.Bridge != "" && (n.Isolation == network.IsolateTrue || n.Isolation == network.IsolateStrict) {
		target := o.isolated
		if n.Isolation == network.IsolateStrict {
			target = o.bridges
		}
		add(o.isolation, rule(matchIf(expr.MetaKeyIIFNAME, n.Bridge, false), matchIf(expr.MetaKeyOIFNAME, n.Bridge, true), matchIfSet(expr.MetaKeyOIFNAME, target), one(verdictDrop)))
	}
	if n.DNSPort != 0 && n.DNSPort != 53 {
		for _, gw := range n.Gateways {
			f := family(gw)
			nat := &expr.NAT{Type: expr.NATTypeDestNAT, Family: uint32(f), RegAddrMin: 2, RegProtoMin: 3, Specified: true}
			for _, p := range []byte{unix.IPPROTO_UDP, unix.IPPROTO_TCP} {
				out = append(out, ruleSpec{chain: o.hostports, insert: true, exprs: rule(matchFamily(f), matchPrefix(netip.PrefixFrom(gw, gw.BitLen()), false, false), matchL4Dport(p, 53),
					one(&expr.Immediate{Register: 2, Data: gw.AsSlice()}, &expr.Immediate{Register: 3, Data: []byte{byte(n.DNSPort >> 8), byte(n.DNSPort)}}, nat))})
			}
		}
	}
	return out
}

// networkSets returns the sets that hold n's bridge.
func (o *objects) networkSets(n firewall.NetworkRules) []*nftables.Set {
	if n.Bridge == "" {
		return nil
	}
	if n.Isolation == network.IsolateTrue || n.Isolation == network.IsolateStrict {
		return []*nftables.Set{o.bridges, o.isolated}
	}
	return []*nftables.Set{o.bridges}
}

// queueNetwork queues the per-network rules and set elements.
func (o *objects) queueNetwork(c *nftables.Conn, n firewall.NetworkRules) error {
	ud := tag(n.ID)
	for _, r := range o.networkRules(n) {
		nr := &nftables.Rule{Table: o.table, Chain: r.chain, Exprs: r.exprs, UserData: ud}
		if r.insert {
			c.InsertRule(nr)
		} else {
			c.AddRule(nr)
		}
	}
	for _, set := range o.networkSets(n) {
		if err := c.SetAddElements(set, []nftables.SetElement{{Key: ifname(n.Bridge)}}); err != nil {
			return err
		}
	}
	return nil
}

// forwardElements returns the map elements of port forwards, by map.
func (o *objects) forwardElements(pfs ...firewall.PortForward) map[*nftables.Set][]nftables.SetElement {
	out := map[*nftables.Set][]nftables.SetElement{}
	for _, pf := range pfs {
		o.addForwardElements(out, pf)
	}
	return out
}

// addForwardElements adds the map elements of one port forward to out.
func (o *objects) addForwardElements(out map[*nftables.Set][]nftables.SetElement, pf firewall.PortForward) {
	v4, v6 := pf.Expand()
	for _, f := range append(v4, v6...) {
		key := append(padded(protoNum(f.Proto)), port(f.HostPort)...)
		val := append(f.Target.AsSlice(), port(f.DestPort)...)
		var set *nftables.Set
		switch {
		case f.Target.Is4() && f.HostIP.IsValid():
			set, key = o.pf4, append(f.HostIP.AsSlice(), key...)
		case f.Target.Is4():
			set = o.pf4any
		case f.HostIP.IsValid():
			set, key = o.pf6, append(f.HostIP.AsSlice(), key...)
		default:
			set = o.pf6any
		}
		out[set] = append(out[set], nftables.SetElement{Key: key, Val: val, Comment: network.ShortID(pf.ContainerID)})
	}
}

// present reports whether the table exists, and which networks already
// have rules (by ID). A table of berth's name whose chains hold none of
// berth's rule comments is not berth's: an error wrapping ErrNotOurs.
func (d *Driver) present(c *nftables.Conn, o *objects) (bool, map[string]bool, error) {
	if _, err := c.ListTableOfFamily(TableName, nftables.TableFamilyINet); err != nil {
		if errors.Is(err, unix.ENOENT) || strings.Contains(err.Error(), "no such file") {
			return false, nil, nil
		}
		return false, nil, fmt.Errorf("look up table inet %s: %w", TableName, err)
	}
	have := map[string]bool{}
	ours := false
	for _, ch := range []*nftables.Chain{o.forward, o.isolation, o.hostports} {
		rules, err := c.GetRules(o.table, ch)
		if err != nil {
			return false, nil, fmt.Errorf("list chain %s: %w", ch.Name, err)
		}
		for _, r := range rules {
			if t := ruleTag(r); t != "" {
				have[t] = true
				ours = true
			} else if comment(r) == baseComment {
				ours = true
			}
		}
	}
	if !ours {
		return false, nil, fmt.Errorf("table inet %s %w (another program made it, or its rules were flushed): delete it with `nft delete table inet %s`", TableName, ErrNotOurs, TableName)
	}
	return true, have, nil
}

// Setup implements firewall.Driver.
func (d *Driver) Setup(nets []firewall.NetworkRules, ports []firewall.PortForward) error {
	return d.changing(func(lc *conn) error { return d.setup(lc, nets, ports) })
}

func (d *Driver) setup(lc *conn, nets []firewall.NetworkRules, ports []firewall.PortForward) error {
	c := lc.Conn
	o := newObjects()
	exists, have, err := d.present(c, o)
	if err != nil {
		return err
	}
	queued := !exists
	if !exists {
		if err := o.createBase(c); err != nil {
			return err
		}
	}
	for _, n := range nets {
		if have[n.ID] {
			continue
		}
		if err := o.queueNetwork(c, n); err != nil {
			return fmt.Errorf("queue rules of network %s: %w", n.Name, err)
		}
		queued = true
		if have == nil {
			have = map[string]bool{}
		}
		have[n.ID] = true
	}
	// The table, the network rules and the first map elements go in one
	// batch; many port forwards need more batches (see batches), and when
	// a later one fails the elements of the earlier ones are deleted.
	parts := batches(o.portMaps(), o.forwardElements(ports...))
	if len(parts) == 0 {
		if !queued {
			return nil
		}
		parts = [][]setElems{nil}
	}
	added := map[*nftables.Set][]nftables.SetElement{}
	for i, b := range parts {
		if err := queue(c, b, c.SetAddElements); err != nil {
			return fmt.Errorf("queue port forwards: %w", err)
		}
		if err := lc.commit(); err != nil {
			var undo error
			if i > 0 {
				undo = d.deletePresent(lc, o, added)
			}
			if conflict := d.findConflict(c, ports); conflict != nil {
				return errors.Join(conflict, undo)
			}
			return errors.Join(fmt.Errorf("apply nftables batch %d of %d: %w", i+1, len(parts), err), undo)
		}
		for _, p := range b {
			added[p.set] = append(added[p.set], p.els...)
		}
	}
	return nil
}

// Every port forward is a map element. The kernel takes a message's
// elements as one netlink attribute (at most 64 KiB) and a batch as one
// send (at most the socket's send buffer, 208 KiB by default); an element
// takes under 100 bytes. So a message carries at most elemsPerMsg
// elements and a batch at most elemsPerBatch.
const (
	elemsPerMsg   = 256
	elemsPerBatch = 1024
)

// setElems are elements of one set or map.
type setElems struct {
	set *nftables.Set
	els []nftables.SetElement
}

// batches splits the elements of the sets, in the order of sets, into
// batches of at most elemsPerBatch elements, in parts of at most
// elemsPerMsg (one message each).
func batches(sets []*nftables.Set, els map[*nftables.Set][]nftables.SetElement) [][]setElems {
	var out [][]setElems
	var cur []setElems
	n := 0
	for _, s := range sets {
		rest := els[s]
		for len(rest) > 0 {
			k := min(len(rest), elemsPerMsg, elemsPerBatch-n)
			cur = append(cur, setElems{s, rest[:k]})
			rest, n = rest[k:], n+k
			if n == elemsPerBatch {
				out, cur, n = append(out, cur), nil, 0
			}
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// queue queues one message per part with op (add or delete elements).
func queue(c *nftables.Conn, parts []setElems, op func(*nftables.Set, []nftables.SetElement) error) error {
	for _, p := range parts {
		if err := op(p.set, p.els); err != nil {
			return err
		}
	}
	return nil
}

// portMaps are the maps of port forwards, in a fixed order.
func (o *objects) portMaps() []*nftables.Set {
	return []*nftables.Set{o.pf4, o.pf4any, o.pf6, o.pf6any}
}

// eachWanted lists every port map of o that els has elements for and
// calls f with each of those elements and the value the map holds for its
// key (ok false: none). It stops at the first error of f or of a listing.
func eachWanted(c *nftables.Conn, o *objects, els map[*nftables.Set][]nftables.SetElement, f func(set *nftables.Set, want nftables.SetElement, have []byte, ok bool) error) error {
	for _, set := range o.portMaps() {
		if len(els[set]) == 0 {
			continue
		}
		cur, err := c.GetSetElements(set)
		if err != nil {
			return fmt.Errorf("list map %s: %w", set.Name, err)
		}
		byKey := make(map[string][]byte, len(cur))
		for _, e := range cur {
			byKey[string(e.Key)] = e.Val
		}
		for _, want := range els[set] {
			have, ok := byKey[string(want.Key)]
			if err := f(set, want, have, ok); err != nil {
				return err
			}
		}
	}
	return nil
}

// findConflict explains a failed batch when a host port is already taken.
func (d *Driver) findConflict(c *nftables.Conn, ports []firewall.PortForward) error {
	o := newObjects()
	err := eachWanted(c, o, o.forwardElements(ports...), func(set *nftables.Set, want nftables.SetElement, have []byte, ok bool) error {
		if ok && string(have) != string(want.Val) {
			return fmt.Errorf("%w: host port %s is already published to %s", firewall.ErrPortInUse, describeKey(set, want.Key), describeVal(have))
		}
		return nil
	})
	if errors.Is(err, firewall.ErrPortInUse) {
		return err
	}
	return nil
}

func describeKey(set *nftables.Set, k []byte) string {
	var host string
	switch set.Name {
	case "pf4":
		host, k = netip.AddrFrom4([4]byte(k[:4])).String()+":", k[4:]
	case "pf6":
		host, k = "["+netip.AddrFrom16([16]byte(k[:16])).String()+"]:", k[16:]
	}
	proto := map[byte]string{unix.IPPROTO_TCP: "tcp", unix.IPPROTO_UDP: "udp", unix.IPPROTO_SCTP: "sctp"}[k[0]]
	return fmt.Sprintf("%s%d/%s", host, int(k[4])<<8|int(k[5]), proto)
}

func describeVal(v []byte) string {
	if len(v) == 8 {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(v[:4])), uint16(v[4])<<8|uint16(v[5])).String()
	}
	if len(v) == 20 {
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(v[:16])), uint16(v[16])<<8|uint16(v[17])).String()
	}
	return fmt.Sprintf("%x", v)
}

// Teardown implements firewall.Driver.
func (d *Driver) Teardown(ports []firewall.PortForward, complete []firewall.NetworkRules) error {
	return d.changing(func(lc *conn) error { return d.teardown(lc, ports, complete) })
}

func (d *Driver) teardown(lc *conn, ports []firewall.PortForward, complete []firewall.NetworkRules) error {
	c := lc.Conn
	o := newObjects()
	if _, err := c.ListTableOfFamily(TableName, nftables.TableFamilyINet); err != nil {
		return nil // nothing of ours exists (e.g. after a flush)
	}
	dels := o.forwardElements(ports...)
	var errs []error
	// Only elements that still point at this container go: a host port
	// another container holds (a failed setup's teardown, a port taken
	// over since) keeps its element, as do elements already gone.
	if err := d.deletePresent(lc, o, dels); err != nil {
		errs = append(errs, err)
	}
	if len(complete) > 0 {
		if err := d.deleteNetworks(lc, complete); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// deletePresent deletes the elements of dels (maps of o) that the maps
// hold with the same key and value: in one batch, or as many as batches needs.
func (d *Driver) deletePresent(lc *conn, o *objects, dels map[*nftables.Set][]nftables.SetElement) error {
	c := lc.Conn
	present := map[*nftables.Set][]nftables.SetElement{}
	err := eachWanted(c, o, dels, func(set *nftables.Set, want nftables.SetElement, have []byte, ok bool) error {
		if ok && string(have) == string(want.Val) {
			present[set] = append(present[set], want)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, b := range batches(o.portMaps(), present) {
		if err := queue(c, b, c.SetDeleteElements); err != nil {
			return err
		}
		if err := lc.commit(); err != nil {
			return fmt.Errorf("delete port forwards: %w", err)
		}
	}
	return nil
}

func (d *Driver) deleteNetworks(lc *conn, nets []firewall.NetworkRules) error {
	c := lc.Conn
	o := newObjects()
	queued := false
	ids := map[string]bool{}
	for _, n := range nets {
		ids[n.ID] = true
	}
	for _, ch := range []*nftables.Chain{o.hostports, o.postrouting, o.forward, o.isolation} {
		rules, err := c.GetRules(o.table, ch)
		if err != nil {
			return fmt.Errorf("list chain %s: %w", ch.Name, err)
		}
		for _, r := range rules {
			if ids[ruleTag(r)] {
				if err := c.DelRule(r); err != nil {
					return fmt.Errorf("queue delete rule %d: %w", r.Handle, err)
				}
				queued = true
			}
		}
	}
	if queued {
		if err := lc.commit(); err != nil {
			return fmt.Errorf("delete network rules: %w", err)
		}
	}
	// Set elements go in their own batches: a missing one must not undo
	// the rule deletions.
	for _, n := range nets {
		if n.Bridge == "" || n.SharedBridge {
			continue
		}
		for _, s := range []*nftables.Set{o.isolated, o.bridges} {
			if err := c.SetDeleteElements(s, []nftables.SetElement{{Key: ifname(n.Bridge)}}); err == nil {
				_ = lc.commit() // ENOENT: not in this set
			}
		}
	}
	// The last network gone: remove the table, so nothing of berth's stays.
	// Networks without a bridge (port mappings of a CNI chain on another
	// plugin's bridge, which always have tagged rules) keep it.
	if left, err := c.GetSetElements(o.bridges); err != nil || len(left) > 0 {
		return nil
	}
	for _, ch := range []*nftables.Chain{o.postrouting, o.forward} {
		rules, err := c.GetRules(o.table, ch)
		if err != nil {
			return nil
		}
		for _, r := range rules {
			if ruleTag(r) != "" {
				return nil
			}
		}
	}
	return reset(lc)
}

// HasForwards reports whether every map element of the port forwards is
// present with its target (a CNI CHECK).
func (d *Driver) HasForwards(ports []firewall.PortForward) error {
	lc, err := d.conn()
	if err != nil {
		return err
	}
	defer lc.close()
	c := lc.Conn
	o := newObjects()
	if _, err := c.ListTableOfFamily(TableName, nftables.TableFamilyINet); err != nil {
		return fmt.Errorf("table inet %s is missing", TableName)
	}
	return eachWanted(c, o, o.forwardElements(ports...), func(set *nftables.Set, want nftables.SetElement, have []byte, ok bool) error {
		if !ok || string(have) != string(want.Val) {
			return fmt.Errorf("port forward %s -> %s is missing from map %s", describeKey(set, want.Key), describeVal(want.Val), set.Name)
		}
		return nil
	})
}

// HasNetwork reports whether the rules of the network with this ID exist.
func (d *Driver) HasNetwork(id string) (bool, error) {
	lc, err := d.conn()
	if err != nil {
		return false, err
	}
	defer lc.close()
	c := lc.Conn
	exists, have, err := d.present(c, newObjects())
	if err != nil || !exists {
		return false, err
	}
	return have[id], nil
}

// Reset implements firewall.Driver: it deletes the table.
func (d *Driver) Reset() error {
	return d.changing(reset)
}

// ErrNotOurs is returned when the table named as berth's carries no rule
// with berth's comment: it is not berth's to delete.
var ErrNotOurs = errors.New("carries none of berth's rule comments")

// reset deletes berth's table, when it is berth's: some rule in it carries
// berth's comment ("berth", or "berth net <id>" in a table made before the
// table's own rules had one).
func reset(lc *conn) error {
	c := lc.Conn
	if _, err := c.ListTableOfFamily(TableName, nftables.TableFamilyINet); err != nil {
		return nil
	}
	if !marked(c, newObjects()) {
		return fmt.Errorf("table inet %s %w; left in place", TableName, ErrNotOurs)
	}
	c.DelTable(&nftables.Table{Name: TableName, Family: nftables.TableFamilyINet})
	if err := lc.commit(); err != nil {
		return fmt.Errorf("delete table inet %s: %w", TableName, err)
	}
	return nil
}

// outbound is what a network's outgoing traffic of family f gets: source
// NAT to the network's outbound address of that family, or masquerade.
func outbound(n firewall.NetworkRules, f byte) []expr.Any {
	a := n.OutboundAddr4
	if f == unix.NFPROTO_IPV6 {
		a = n.OutboundAddr6
	}
	if !a.IsValid() {
		return one(&expr.Masq{})
	}
	return one(&expr.Immediate{Register: 1, Data: a.AsSlice()}, &expr.NAT{Type: expr.NATTypeSourceNAT, Family: uint32(f), RegAddrMin: 1})
}

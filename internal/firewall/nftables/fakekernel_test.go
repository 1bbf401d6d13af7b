package nftables

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nltest"
	"golang.org/x/sys/unix"
)

// fakeKernel stands in for the kernel's nf_tables netlink interface: it
// answers the driver's queries (table, rules of a chain, elements of a
// set) from its state and applies batches all or nothing, as the kernel
// does, refusing a map element whose key is taken with another value and
// the deletion of what does not exist. Every batch it receives is kept,
// decoded into one line per message, so tests can say what the driver
// asked for.
type fakeKernel struct {
	t       *testing.T
	state   kernelState
	batches [][]string // each batch the driver sent, decoded
	queries []string   // each query, decoded
	sizes   []int      // the bytes of each batch the driver sent
	gen     uint32     // the ruleset's generation: one more per batch taken
	gens    int        // the generation reads (NFT_MSG_GETGEN)
}

// fakeCookie is the fake namespace's cookie.
const fakeCookie = 42

// The kernel refuses a send larger than the socket's send buffer (less
// 32 bytes) with EMSGSIZE, "message too long"; 212992 bytes is the default
// (net.core.wmem_default).
const fakeSndbuf = 212992

// dumpElemsPerMsg is how many elements the fake puts in one message of a
// set's listing: the kernel splits a dump into messages of a page or so.
const dumpElemsPerMsg = 100

type kernelState struct {
	table      bool
	rules      []storedRule // in chain order within each chain
	elems      map[string][]storedElem
	nextHandle uint64
}

type storedRule struct {
	chain  string
	handle uint64
	msg    netlink.Message // the NEWRULE request with the handle added
}

type storedElem struct {
	key, val []byte
	raw      []byte // the element's attributes as the driver sent them
}

func (s kernelState) clone() kernelState {
	c := s
	c.rules = slices.Clone(s.rules)
	c.elems = map[string][]storedElem{}
	for k, v := range s.elems {
		c.elems[k] = slices.Clone(v)
	}
	return c
}

func newFakeKernel(t *testing.T) *fakeKernel {
	return &fakeKernel{t: t, state: kernelState{elems: map[string][]storedElem{}, nextHandle: 1}}
}

// driver returns a driver whose netlink socket is k.
func (k *fakeKernel) driver() *Driver {
	return &Driver{nsFd: -1, dial: k.dial, cookie: func() (uint64, error) { return fakeCookie, nil }}
}

// chain returns the rules of a chain in order, as nft prints them.
func (k *fakeKernel) chain(name string) []string {
	var out []string
	for _, r := range k.state.rules {
		if r.chain == name {
			out = append(out, describeRule(k.t, r.msg))
		}
	}
	return out
}

// set returns the elements of a set or map, as nft prints them, sorted.
func (k *fakeKernel) set(name string) []string {
	var out []string
	for _, e := range k.state.elems[name] {
		out = append(out, describeElem(name, e.key, e.val))
	}
	slices.Sort(out)
	return out
}

// lastBatch returns the last batch the driver sent, or nil.
func (k *fakeKernel) lastBatch() []string {
	if len(k.batches) == 0 {
		return nil
	}
	return k.batches[len(k.batches)-1]
}

func nftMsg(h netlink.Header) uint16 {
	if uint16(h.Type)>>8 != unix.NFNL_SUBSYS_NFTABLES {
		return 0xffff
	}
	return uint16(h.Type) & 0xff
}

func (k *fakeKernel) dial(req []netlink.Message) ([]netlink.Message, error) {
	if len(req) == 0 {
		return nil, nil
	}
	if req[0].Header.Type == netlink.HeaderType(unix.NFNL_MSG_BATCH_BEGIN) {
		return k.batch(req)
	}
	if len(req) != 1 {
		k.t.Errorf("query of %d messages", len(req))
	}
	q := req[0]
	attrs := k.attrs(q.Data[4:])
	if nftMsg(q.Header) == unix.NFT_MSG_GETGEN {
		k.gens++
		data := append([]byte{unix.AF_UNSPEC, 0, 0, 0}, nltest.MustMarshalAttributes([]netlink.Attribute{
			{Type: unix.NFTA_GEN_ID, Data: binary.BigEndian.AppendUint32(nil, k.gen)},
		})...)
		return []netlink.Message{reply(q, unix.NFT_MSG_NEWGEN, data)}, nil
	}
	if !k.state.table {
		k.queries = append(k.queries, "query without table")
		return []netlink.Message{errMsg(q, unix.ENOENT)}, nil
	}
	switch nftMsg(q.Header) {
	case unix.NFT_MSG_GETTABLE:
		k.queries = append(k.queries, "get table "+str(attrs[unix.NFTA_TABLE_NAME]))
		data := append([]byte{unix.NFPROTO_INET, 0, 0, 0}, nltest.MustMarshalAttributes([]netlink.Attribute{
			{Type: unix.NFTA_TABLE_NAME, Data: []byte(TableName + "\x00")},
		})...)
		return []netlink.Message{reply(q, unix.NFT_MSG_NEWTABLE, data)}, nil
	case unix.NFT_MSG_GETRULE:
		chain := str(attrs[unix.NFTA_RULE_CHAIN])
		k.queries = append(k.queries, "list chain "+chain)
		var out []netlink.Message
		for _, r := range k.state.rules {
			if r.chain == chain {
				out = append(out, reply(q, unix.NFT_MSG_NEWRULE, r.msg.Data))
			}
		}
		return out, nil
	case unix.NFT_MSG_GETSETELEM:
		set := str(attrs[unix.NFTA_SET_NAME])
		k.queries = append(k.queries, "list set "+set)
		els := k.state.elems[set]
		if len(els) == 0 {
			return nil, nil
		}
		var out []netlink.Message
		for part := range slices.Chunk(els, dumpElemsPerMsg) {
			var items []netlink.Attribute
			for _, e := range part {
				// The kernel tags every element NFTA_LIST_ELEM (the
				// library's requests number them instead).
				items = append(items, netlink.Attribute{Type: unix.NFTA_LIST_ELEM | unix.NLA_F_NESTED, Data: e.raw})
			}
			data := append([]byte{unix.NFPROTO_INET, 0, 0, 0}, nltest.MustMarshalAttributes([]netlink.Attribute{
				{Type: unix.NFTA_SET_ELEM_LIST_TABLE, Data: []byte(TableName + "\x00")},
				{Type: unix.NFTA_SET_ELEM_LIST_SET, Data: []byte(set + "\x00")},
				{Type: unix.NFTA_SET_ELEM_LIST_ELEMENTS | unix.NLA_F_NESTED, Data: nltest.MustMarshalAttributes(items)},
			})...)
			out = append(out, reply(q, unix.NFT_MSG_NEWSETELEM, data))
		}
		return out, nil
	}
	k.t.Errorf("unexpected query type %#x", q.Header.Type)
	return []netlink.Message{errMsg(q, unix.EOPNOTSUPP)}, nil
}

func reply(q netlink.Message, typ uint16, data []byte) netlink.Message {
	return netlink.Message{
		Header: netlink.Header{
			Type:     netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | typ),
			Sequence: q.Header.Sequence,
			PID:      q.Header.PID,
		},
		Data: data,
	}
}

// errMsg is the kernel's error reply to q.
func errMsg(q netlink.Message, errno unix.Errno) netlink.Message {
	data := make([]byte, 4)
	binary.NativeEndian.PutUint32(data, uint32(-int32(errno)))
	return netlink.Message{Header: netlink.Header{Type: netlink.Error, Sequence: q.Header.Sequence, PID: q.Header.PID}, Data: data}
}

// batch applies a batch to a copy of the state and keeps the copy only if
// every message succeeded. Each acknowledged message gets an ack, the
// failing one its error.
func (k *fakeKernel) batch(req []netlink.Message) ([]netlink.Message, error) {
	size := 0
	for _, m := range req {
		size += nlmsgAlign(16 + len(m.Data))
	}
	k.sizes = append(k.sizes, size)
	if size > fakeSndbuf-32 {
		k.batches = append(k.batches, []string{fmt.Sprintf("refused: %d bytes: message too long", size)})
		return nil, unix.EMSGSIZE
	}
	next := k.state.clone()
	var lines, refused []string
	var out []netlink.Message
	failed := false
	for _, m := range req {
		switch m.Header.Type {
		case netlink.HeaderType(unix.NFNL_MSG_BATCH_BEGIN), netlink.HeaderType(unix.NFNL_MSG_BATCH_END):
			continue
		}
		line, errno := "malformed attributes", unix.EINVAL
		if wellFormed(m.Data[4:]) {
			line, errno = k.apply(&next, m)
		}
		lines = append(lines, line)
		switch {
		case errno != 0 && !failed:
			failed = true
			refused = append(refused, fmt.Sprintf("%s: %v", line, errno))
			out = append(out, errMsg(m, errno))
		case m.Header.Flags&netlink.Acknowledge != 0:
			out = append(out, netlink.Message{
				Header: netlink.Header{Type: netlink.Error, Sequence: m.Header.Sequence, PID: m.Header.PID},
				Data:   make([]byte, 4),
			})
		}
	}
	if failed {
		lines = append(lines, "refused: "+strings.Join(refused, "; "))
	} else {
		k.state = next
		if len(lines) > 0 {
			k.gen++
		}
	}
	k.batches = append(k.batches, lines)
	return out, nil
}

// apply applies one message of a batch to s and returns it decoded, with
// the error number the kernel would return.
func (k *fakeKernel) apply(s *kernelState, m netlink.Message) (string, unix.Errno) {
	a := k.attrs(m.Data[4:])
	switch nftMsg(m.Header) {
	case unix.NFT_MSG_NEWTABLE:
		s.table = true
		return fmt.Sprintf("add table %s %s", familyName(m.Data[0]), str(a[unix.NFTA_TABLE_NAME])), 0
	case unix.NFT_MSG_DELTABLE:
		if !s.table {
			return "delete table", unix.ENOENT
		}
		*s = kernelState{elems: map[string][]storedElem{}, nextHandle: s.nextHandle}
		return fmt.Sprintf("delete table %s %s", familyName(m.Data[0]), str(a[unix.NFTA_TABLE_NAME])), 0
	case unix.NFT_MSG_NEWCHAIN:
		return k.chainLine(a), 0
	case unix.NFT_MSG_NEWSET:
		kind := "set"
		if len(a[unix.NFTA_SET_FLAGS]) == 4 && binary.BigEndian.Uint32(a[unix.NFTA_SET_FLAGS])&unix.NFT_SET_MAP != 0 {
			kind = "map"
		}
		return fmt.Sprintf("add %s %s", kind, str(a[unix.NFTA_SET_NAME])), 0
	case unix.NFT_MSG_NEWRULE:
		return k.addRule(s, m, a)
	case unix.NFT_MSG_DELRULE:
		return k.delRule(s, a)
	case unix.NFT_MSG_NEWSETELEM, unix.NFT_MSG_DELSETELEM:
		return k.elements(s, m, a)
	}
	k.t.Errorf("unexpected message type %#x in batch", m.Header.Type)
	return fmt.Sprintf("message %#x", m.Header.Type), unix.EOPNOTSUPP
}

var hooks = map[uint32]string{0: "prerouting", 1: "input", 2: "forward", 3: "output", 4: "postrouting"}

func (k *fakeKernel) chainLine(a map[uint16][]byte) string {
	line := "add chain " + str(a[unix.NFTA_CHAIN_NAME])
	if h, ok := a[unix.NFTA_CHAIN_HOOK]; ok {
		ha := k.attrs(h)
		prio := int32(binary.BigEndian.Uint32(ha[unix.NFTA_HOOK_PRIORITY]))
		line += fmt.Sprintf(" { type %s hook %s priority %d }", str(a[unix.NFTA_CHAIN_TYPE]), hooks[binary.BigEndian.Uint32(ha[unix.NFTA_HOOK_HOOKNUM])], prio)
	}
	return line
}

func (k *fakeKernel) addRule(s *kernelState, m netlink.Message, a map[uint16][]byte) (string, unix.Errno) {
	chain := str(a[unix.NFTA_RULE_CHAIN])
	h := s.nextHandle
	s.nextHandle++
	handle := make([]byte, 8)
	binary.BigEndian.PutUint64(handle, h)
	stored := m
	stored.Data = append(slices.Clone(m.Data), nltest.MustMarshalAttributes([]netlink.Attribute{{Type: unix.NFTA_RULE_HANDLE, Data: handle}})...)
	r := storedRule{chain: chain, handle: h, msg: stored}
	verb := "add"
	if m.Header.Flags&unix.NLM_F_APPEND != 0 {
		s.rules = append(s.rules, r)
	} else {
		verb = "insert"
		s.rules = append([]storedRule{r}, s.rules...)
	}
	return fmt.Sprintf("%s rule %s %s", verb, chain, describeRule(k.t, stored)), 0
}

func (k *fakeKernel) delRule(s *kernelState, a map[uint16][]byte) (string, unix.Errno) {
	if _, ok := a[unix.NFTA_RULE_HANDLE]; !ok {
		// No handle: flush the chain.
		chain := str(a[unix.NFTA_RULE_CHAIN])
		s.rules = slices.DeleteFunc(s.rules, func(r storedRule) bool { return r.chain == chain })
		return "flush chain " + chain, 0
	}
	h := binary.BigEndian.Uint64(a[unix.NFTA_RULE_HANDLE])
	for i, r := range s.rules {
		if r.handle == h {
			s.rules = slices.Delete(s.rules, i, i+1)
			return fmt.Sprintf("delete rule %s %s", r.chain, describeRule(k.t, r.msg)), 0
		}
	}
	return fmt.Sprintf("delete rule handle %d", h), unix.ENOENT
}

// elements adds or deletes the elements of one message.
func (k *fakeKernel) elements(s *kernelState, m netlink.Message, a map[uint16][]byte) (string, unix.Errno) {
	set := str(a[unix.NFTA_SET_ELEM_LIST_SET])
	add := nftMsg(m.Header) == unix.NFT_MSG_NEWSETELEM
	var descs []string
	var errno unix.Errno
	idx := map[string]int{} // key to index in s.elems[set]
	for i, x := range s.elems[set] {
		idx[string(x.key)] = i
	}
	var gone []int // indexes of deleted elements
	for _, raw := range k.list(a[unix.NFTA_SET_ELEM_LIST_ELEMENTS]) {
		ea := k.attrs(raw)
		e := storedElem{key: k.value(ea[unix.NFTA_SET_ELEM_KEY]), val: k.value(ea[unix.NFTA_SET_ELEM_DATA]), raw: raw}
		descs = append(descs, describeElem(set, e.key, e.val))
		i, ok := idx[string(e.key)]
		switch {
		case add && !ok:
			idx[string(e.key)] = len(s.elems[set])
			s.elems[set] = append(s.elems[set], e)
		case add && string(s.elems[set][i].val) != string(e.val):
			errno = unix.EEXIST
		case !add && !ok:
			errno = unix.ENOENT
		case !add:
			delete(idx, string(e.key))
			gone = append(gone, i)
		}
	}
	if len(gone) > 0 {
		slices.Sort(gone)
		for j := len(gone) - 1; j >= 0; j-- {
			s.elems[set] = slices.Delete(s.elems[set], gone[j], gone[j]+1)
		}
	}
	verb := "add"
	if !add {
		verb = "delete"
	}
	return fmt.Sprintf("%s element %s { %s }", verb, set, strings.Join(descs, ", ")), errno
}

func nlmsgAlign(n int) int { return (n + 3) &^ 3 }

// wellFormed reports whether the attribute lengths of b add up to its
// length, as the kernel's parser requires: an attribute longer than the
// 64 KiB its 16-bit length can say does not.
func wellFormed(b []byte) bool {
	for len(b) > 0 {
		if len(b) < 4 {
			return false
		}
		n := int(binary.NativeEndian.Uint16(b))
		if n < 4 || n > len(b) {
			return false
		}
		b = b[min(nlmsgAlign(n), len(b)):]
	}
	return true
}

// attrs decodes one level of netlink attributes (nested flags cleared).
func (k *fakeKernel) attrs(b []byte) map[uint16][]byte {
	out := map[uint16][]byte{}
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		k.t.Fatalf("decode attributes: %v", err)
	}
	for ad.Next() {
		out[ad.Type()] = ad.Bytes()
	}
	if err := ad.Err(); err != nil {
		k.t.Fatalf("decode attributes: %v", err)
	}
	return out
}

// list returns the payloads of a list of nested attributes in order.
func (k *fakeKernel) list(b []byte) [][]byte {
	var out [][]byte
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		k.t.Fatalf("decode list: %v", err)
	}
	for ad.Next() {
		out = append(out, ad.Bytes())
	}
	return out
}

// value returns the NFTA_DATA_VALUE inside a key or data attribute.
func (k *fakeKernel) value(b []byte) []byte {
	if b == nil {
		return nil
	}
	return k.attrs(b)[unix.NFTA_DATA_VALUE]
}

func str(b []byte) string { return strings.TrimRight(string(b), "\x00") }

var (
	familyNames = map[byte]string{unix.NFPROTO_INET: "inet", unix.NFPROTO_IPV4: "ip", unix.NFPROTO_IPV6: "ip6"}
	protoNames  = map[byte]string{unix.IPPROTO_TCP: "tcp", unix.IPPROTO_UDP: "udp", unix.IPPROTO_SCTP: "sctp"}
)

func familyName(f byte) string { return nameOr(familyNames, f, "family") }

func protoName(p byte) string { return nameOr(protoNames, p, "proto") }

func nameOr(names map[byte]string, b byte, what string) string {
	if n, ok := names[b]; ok {
		return n
	}
	return fmt.Sprintf("%s%d", what, b)
}

// describeElem writes a map element as nft prints it: the key's parts
// joined with " . ", then " : " and the value's parts.
func describeElem(set string, key, val []byte) string {
	if set == "bridges" || set == "isolated" {
		return str(key)
	}
	var parts []string
	if n := map[string]int{"pf4": 4, "pf6": 16}[set]; n > 0 {
		host, _ := netip.AddrFromSlice(key[:n])
		parts, key = append(parts, host.String()), key[n:]
	}
	parts = append(parts, protoName(key[0]), fmt.Sprint(binary.BigEndian.Uint16(key[4:6])))
	addr, _ := netip.AddrFromSlice(val[:len(val)-4])
	return fmt.Sprintf("%s : %s . %d", strings.Join(parts, " . "), addr, binary.BigEndian.Uint16(val[len(val)-4:]))
}

// decodeRule decodes a rule message with google/nftables' own parser: it
// is the reply of a GetRules on a connection whose socket returns it.
func decodeRule(t *testing.T, m netlink.Message) *nftables.Rule {
	t.Helper()
	c, err := nftables.New(nftables.WithTestDial(func(req []netlink.Message) ([]netlink.Message, error) {
		if len(req) == 0 {
			return nil, nil
		}
		return []netlink.Message{reply(req[0], unix.NFT_MSG_NEWRULE, m.Data)}, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	tbl := &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}
	rules, err := c.GetRules(tbl, &nftables.Chain{Name: "any", Table: tbl})
	if err != nil || len(rules) != 1 {
		t.Fatalf("decode rule: %v (%d rules)", err, len(rules))
	}
	return rules[0]
}

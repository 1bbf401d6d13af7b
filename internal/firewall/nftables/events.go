package nftables

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/netns"
)

// Events: the kernel announces every commit to the ruleset of a namespace
// on the netlink multicast group NFNLGRP_NFTABLES: a message per object
// the commit changed, then one NFT_MSG_NEWGEN with the new generation and
// the committing process. That covers every writer of the ruleset: nft,
// iptables-nft, firewalld, berth itself. A Monitor passes on the NEWGEN
// messages only, one per commit; the objects are read again by whoever
// checks.

// Commit is one commit to the ruleset the kernel announced.
type Commit struct {
	// Gen is the ruleset's generation after the commit.
	Gen uint32
	// PID and Proc name the committing process (0 and "" when the kernel
	// did not say).
	PID  uint32
	Proc string
	// Lost is set instead when announcements were lost (the socket's
	// receive buffer overran): anything may have changed.
	Lost bool
}

// Monitor receives the commits of one namespace's ruleset.
type Monitor struct {
	conn *netlink.Conn
	c    chan Commit
	self uint32

	once sync.Once
	err  error
}

// monitorBuffer is the receive buffer asked for: a flush of a large
// ruleset announces every object it deletes.
const monitorBuffer = 4 << 20

// Subscribe starts receiving the commits of the ruleset of the namespace
// open at nsFd (-1: the caller's). Commits of this process itself (by
// any of its threads) are left out. Close ends it.
func Subscribe(nsFd int) (*Monitor, error) {
	var c *netlink.Conn
	dial := func() error {
		var err error
		c, err = netlink.Dial(unix.NETLINK_NETFILTER, nil)
		return err
	}
	var err error
	if nsFd >= 0 {
		err = netns.DoFd(nsFd, dial)
	} else {
		err = dial()
	}
	if err != nil {
		return nil, fmt.Errorf("open nftables event socket: %w", err)
	}
	if err := c.JoinGroup(unix.NFNLGRP_NFTABLES); err != nil {
		c.Close()
		return nil, fmt.Errorf("join nftables event group: %w", err)
	}
	_ = c.SetReadBuffer(monitorBuffer)
	m := &Monitor{conn: c, c: make(chan Commit, 64), self: uint32(os.Getpid())}
	go m.receive()
	return m, nil
}

// Commits returns the channel of announced commits. It is closed when
// the monitor ends: after Close, or when the socket fails (Err says why).
// Commits that come while the channel is full are dropped: a reader
// that checks the ruleset after reading one sees their effect too.
func (m *Monitor) Commits() <-chan Commit { return m.c }

// Err returns why the monitor ended on its own (nil after Close).
func (m *Monitor) Err() error { return m.err }

// Close ends the monitor.
func (m *Monitor) Close() error {
	var err error
	m.once.Do(func() { err = m.conn.Close() })
	return err
}

func (m *Monitor) receive() {
	defer close(m.c)
	for {
		msgs, err := m.conn.Receive()
		if errors.Is(err, unix.ENOBUFS) {
			m.send(Commit{Lost: true})
			continue
		}
		if err != nil {
			if !errors.Is(err, os.ErrClosed) && !strings.Contains(err.Error(), "use of closed") {
				m.err = fmt.Errorf("receive nftables events: %w", err)
			}
			return
		}
		for _, msg := range msgs {
			if uint16(msg.Header.Type) != unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_NEWGEN {
				continue
			}
			c, err := parseCommit(msg.Data)
			if err != nil {
				c = Commit{Lost: true}
			}
			if m.own(c.PID) {
				continue
			}
			m.send(c)
		}
	}
}

// own reports whether the committing task was a thread of this process:
// the kernel names the thread (its TID, in the initial PID namespace),
// which is one of this process's while /proc/self/task lists it. A
// thread that has exited since, or a process in a PID namespace of its
// own, makes its commits look like another's: one more check, no harm.
func (m *Monitor) own(pid uint32) bool {
	if pid == 0 {
		return false
	}
	if pid == m.self {
		return true
	}
	_, err := os.Stat("/proc/self/task/" + strconv.FormatUint(uint64(pid), 10))
	return err == nil
}

// send passes c on without waiting.
func (m *Monitor) send(c Commit) {
	select {
	case m.c <- c:
	default:
	}
}

// parseCommit reads a NEWGEN announcement's data: an nfgenmsg header,
// then the generation, the committing process's PID and its name.
func parseCommit(data []byte) (Commit, error) {
	if len(data) < 4 {
		return Commit{}, errors.New("short NEWGEN message")
	}
	ad, err := netlink.NewAttributeDecoder(data[4:])
	if err != nil {
		return Commit{}, fmt.Errorf("NEWGEN message: %w", err)
	}
	var c Commit
	found := false
	for ad.Next() {
		b := ad.Bytes()
		switch ad.Type() {
		case unix.NFTA_GEN_ID:
			if len(b) == 4 {
				c.Gen, found = binary.BigEndian.Uint32(b), true
			}
		case unix.NFTA_GEN_PROC_PID:
			if len(b) == 4 {
				c.PID = binary.BigEndian.Uint32(b)
			}
		case unix.NFTA_GEN_PROC_NAME:
			c.Proc = strings.TrimRight(string(b), "\x00")
		}
	}
	if err := ad.Err(); err != nil {
		return Commit{}, fmt.Errorf("NEWGEN message: %w", err)
	}
	if !found {
		return Commit{}, errors.New("NEWGEN message without a generation")
	}
	return c, nil
}

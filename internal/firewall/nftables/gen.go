package nftables

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/firewall"
)

// Generations: the kernel counts every commit that changes the ruleset of
// a namespace (nf_tables' base_seq, read with NFT_MSG_GETGEN). A driver
// that was asked to follow (Mark) reads the generation before and after
// each of its changes, over the change's own socket, and counts the
// batches the kernel took; when the step equals that count, no other
// writer committed in between (see firewall.Follow). A batch the kernel
// takes but finds empty (every element it adds already there) does not
// count in the kernel: the step falls short and the change is not
// followed, which only costs the caller a full check.

var _ firewall.Versioned = (*Driver)(nil)

// following is what the driver knows of its own changes since Mark.
type following struct {
	on bool                // Mark was called
	ok bool                // only the driver's changes since led to at
	at firewall.Generation // where the last one left the ruleset
}

// ErrNoGeneration is returned when the ruleset's generation cannot be read.
var ErrNoGeneration = errors.New("no ruleset generation")

// Mark implements firewall.Versioned.
func (d *Driver) Mark() (firewall.Generation, error) {
	lc, err := d.conn()
	if err != nil {
		return firewall.Generation{}, err
	}
	defer lc.close()
	g, err := d.generation(lc)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.follow = following{on: err == nil, ok: err == nil, at: g}
	return g, err
}

// Followed implements firewall.Versioned.
func (d *Driver) Followed() (firewall.Generation, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.follow.at, d.follow.on && d.follow.ok
}

// AfterCommit makes f run after each commit of the driver, before it reads
// the generation again: tests use it to change the ruleset in that gap.
func (d *Driver) AfterCommit(f func()) { d.afterCommit = f }

// changing runs change on a call's socket. While following (after Mark)
// it reads the generation before and after and follows the step.
func (d *Driver) changing(change func(lc *conn) error) error {
	lc, err := d.conn()
	if err != nil {
		return err
	}
	defer lc.close()
	d.mu.Lock()
	on := d.follow.on
	d.mu.Unlock()
	if !on {
		return change(lc)
	}
	before, berr := d.generation(lc)
	err = change(lc)
	after, aerr := d.generation(lc)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.follow.at, d.follow.ok = firewall.Follow(d.follow.at, d.follow.ok && berr == nil && aerr == nil, before, after, lc.commits)
	return err
}

// generation reads the ruleset's generation and the namespace's cookie
// over the call's socket.
func (d *Driver) generation(lc *conn) (firewall.Generation, error) {
	if lc.nl == nil {
		return firewall.Generation{}, fmt.Errorf("%w: no netlink socket", ErrNoGeneration)
	}
	cookie, err := d.nsCookie(lc)
	if err != nil {
		return firewall.Generation{}, err
	}
	msgs, err := lc.nl.Execute(netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETGEN), Flags: netlink.Request},
		Data:   []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, 0},
	})
	if err != nil {
		return firewall.Generation{}, fmt.Errorf("%w: %w", ErrNoGeneration, err)
	}
	for _, m := range msgs {
		if uint16(m.Header.Type) == unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_NEWGEN {
			id, err := parseGen(m.Data)
			if err != nil {
				return firewall.Generation{}, err
			}
			return firewall.Generation{NetNS: cookie, ID: id}, nil
		}
	}
	return firewall.Generation{}, fmt.Errorf("%w: no NEWGEN reply", ErrNoGeneration)
}

// nsCookie returns the cookie of the socket's namespace.
func (d *Driver) nsCookie(lc *conn) (uint64, error) {
	if d.cookie != nil {
		return d.cookie()
	}
	if lc.fd < 0 {
		return 0, fmt.Errorf("%w: no socket descriptor", ErrNoGeneration)
	}
	c, err := unix.GetsockoptUint64(lc.fd, unix.SOL_SOCKET, unix.SO_NETNS_COOKIE)
	if err != nil {
		return 0, fmt.Errorf("%w: namespace cookie: %w", ErrNoGeneration, err)
	}
	return c, nil
}

// parseGen returns the generation ID of a NEWGEN message's data (an
// nfgenmsg header, then attributes).
func parseGen(data []byte) (uint32, error) {
	if len(data) < 4 {
		return 0, fmt.Errorf("%w: short NEWGEN message", ErrNoGeneration)
	}
	ad, err := netlink.NewAttributeDecoder(data[4:])
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrNoGeneration, err)
	}
	var id uint32
	found := false
	for ad.Next() {
		if ad.Type() == unix.NFTA_GEN_ID && len(ad.Bytes()) == 4 {
			id, found = binary.BigEndian.Uint32(ad.Bytes()), true
		}
	}
	if err := ad.Err(); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrNoGeneration, err)
	}
	if !found {
		return 0, fmt.Errorf("%w: NEWGEN without an ID", ErrNoGeneration)
	}
	return id, nil
}

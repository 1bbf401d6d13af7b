package nettest

import (
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

// Ping sends one ICMP echo request from ns to the IPv4 address dst over a
// raw socket and waits up to timeout for the reply from dst that carries
// the request's sequence number and payload; a reply whose identifier is
// not the request's is an error (a relay that rewrote it).
func Ping(ns *NS, dst string, timeout time.Duration) error {
	var c *icmp.PacketConn
	if err := ns.Do(func() error {
		var err error
		c, err = icmp.ListenPacket("ip4:icmp", "0.0.0.0")
		return err
	}); err != nil {
		return err
	}
	defer c.Close()
	id, seq, data := os.Getpid()&0x7fff|0x100, 7, []byte(RandName("ping"))
	m := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: seq, Data: data}}
	b, _ := m.Marshal(nil)
	if _, err := c.WriteTo(b, &net.IPAddr{IP: net.ParseIP(dst)}); err != nil {
		return err
	}
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 1500)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return err
		}
		r, err := icmp.ParseMessage(1, buf[:n])
		if err != nil || r.Type != ipv4.ICMPTypeEchoReply {
			continue
		}
		e, ok := r.Body.(*icmp.Echo)
		if ok && from.String() == dst && e.Seq == seq && string(e.Data) == string(data) {
			if e.ID != id {
				return fmt.Errorf("reply with identifier %d, sent %d", e.ID, id)
			}
			return nil
		}
	}
}

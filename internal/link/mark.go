package link

import (
	"crypto/sha256"
	"net"
)

// DerivedMAC is a locally administered unicast MAC hashed from s. berth
// gives links it creates such addresses so it can later recognise them as
// its own (a name alone proves nothing).
func DerivedMAC(s string) net.HardwareAddr {
	h := sha256.Sum256([]byte(s))
	mac := net.HardwareAddr(h[:6])
	mac[0] = (mac[0] | 0x02) &^ 0x01
	return mac
}

// BridgeMAC is the MAC, and the ownership mark, of a bridge berth creates
// under name: stable (the bridge's address does not follow its ports) and
// derived from the name alone, so every part of berth that may make or
// sweep that bridge agrees on it.
func BridgeMAC(name string) net.HardwareAddr { return DerivedMAC("berth-bridge:" + name) }

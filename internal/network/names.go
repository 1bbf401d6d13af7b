package network

import (
	"crypto/sha256"
	"encoding/hex"
)

// NameRule is the pattern network names (and Podman's container names)
// must match, in the words error messages use.
const NameRule = "[a-zA-Z0-9][a-zA-Z0-9_.-]*"

// ValidName reports whether s matches NameRule.
func ValidName(s string) bool {
	if s == "" || !alnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !alnum(c) && c != '_' && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

func alnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// ManagedBridge reports whether n is a bridge network whose bridge berth
// creates, configures and removes (driver bridge, not mode unmanaged).
func (n *Network) ManagedBridge() bool {
	return n.Driver == DriverBridge && !n.Unmanaged()
}

// Firewalled reports whether n has firewall rules of its own
// (masquerade, forwarding, isolation, published ports): a managed bridge
// that is not internal.
func (n *Network) Firewalled() bool {
	return n.ManagedBridge() && !n.Internal
}

// HostVethName names the host end of a container's veth on a bridge
// network where berth chooses the name (the CNI plugins; older berth
// netavark setups): "veth" and 11 hex digits of a hash of attachment (the
// container ID, or ID and interface) and network name, so it is unique per
// attachment, stable for the life of the container and found again
// without the container's namespace.
func HostVethName(attachment, networkName string) string {
	return HashedLinkName("veth", attachment+"/"+networkName)
}

// HashedLinkName is prefix and 11 hex digits of the SHA-256 of key: a link
// name that fits the kernel's 15 characters for a prefix of up to four.
func HashedLinkName(prefix, key string) string {
	h := sha256.Sum256([]byte(key))
	return prefix + hex.EncodeToString(h[:])[:11]
}

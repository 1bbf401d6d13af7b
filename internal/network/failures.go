package network

import (
	"fmt"
	"net/netip"
)

// Typed failures of a setup's steps, for the core to return (wrapping the
// kernel's error) and front-ends to word their own way with errors.As.
// Their text is berth's message.

// InterfaceExistsError: a veth pair could not be made because a name is
// taken: the container's interface Name in the container's namespace,
// or, when HostName is set, that name for the host end. Err is the
// kernel's error.
type InterfaceExistsError struct {
	Name     string
	HostName string
	Err      error
}

func (e *InterfaceExistsError) Error() string {
	if e.HostName != "" {
		return fmt.Sprintf("host interface %q already exists: %v", e.HostName, e.Err)
	}
	return fmt.Sprintf("interface %s already exists in the container namespace", e.Name)
}

// Unwrap returns the kernel's error.
func (e *InterfaceExistsError) Unwrap() error { return e.Err }

// BridgeAddrError: the kernel refused a gateway address on the bridge
// (for an IPv6 address, typically because IPv6 is off on the host). Its
// text is Err's, which names the address and the bridge.
type BridgeAddrError struct {
	Addr   netip.Prefix
	Bridge string
	Err    error
}

func (e *BridgeAddrError) Error() string { return e.Err.Error() }

// Unwrap returns the kernel's error.
func (e *BridgeAddrError) Unwrap() error { return e.Err }

// DNSStartError: the container DNS server (aardvark-dns) exited instead
// of reporting ready. Stderr is what it wrote, trimmed; Err its exit.
type DNSStartError struct {
	Stderr string
	Err    error
}

func (e *DNSStartError) Error() string {
	if e.Stderr == "" {
		return fmt.Sprintf("aardvark-dns exited at start without an error message (%v)", e.Err)
	}
	return fmt.Sprintf("aardvark-dns failed to start: %s (%v)", e.Stderr, e.Err)
}

// Unwrap returns the exit error.
func (e *DNSStartError) Unwrap() error { return e.Err }

// SysctlWriteError: a kernel setting could not be written (and did not
// already hold the value). Key is dotted ("net.ipv4.ip_forward").
type SysctlWriteError struct {
	Key   string
	Value string
	Err   error
}

func (e *SysctlWriteError) Error() string {
	return fmt.Sprintf("write sysctl %s=%s: %v", e.Key, e.Value, e.Err)
}

// Unwrap returns the write's error.
func (e *SysctlWriteError) Unwrap() error { return e.Err }

// MissingLinkError: a link the network names does not exist: its VRF
// (Role "vrf") or, in mode unmanaged, its bridge (Role "bridge").
type MissingLinkError struct {
	Role, Name string
	Err        error
}

func (e *MissingLinkError) Error() string {
	if e.Role == "bridge" {
		return fmt.Sprintf("bridge %s does not exist (mode=unmanaged uses an existing bridge)", e.Name)
	}
	return fmt.Sprintf("%s %s: %v", e.Role, e.Name, e.Err)
}

// Unwrap returns the lookup's error.
func (e *MissingLinkError) Unwrap() error { return e.Err }

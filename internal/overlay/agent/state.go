package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// DefaultStateDir is where agents and the plugin meet unless told otherwise.
const DefaultStateDir = "/run/berth/overlay"

// ErrAgentNotRunning: no agent holds the network's lock on this host.
var ErrAgentNotRunning = errors.New("overlay agent is not running")

// HostState is what the agent tells the plugin about this host's share of a
// network: written by the agent as <state dir>/<network>.json (replaced
// atomically) once it holds a lease, read by the plugin on every call.
type HostState struct {
	Network  string       `json:"network"`
	Range    netip.Prefix `json:"range"`
	Subnet   netip.Prefix `json:"subnet"`
	Gateway  netip.Addr   `json:"gateway"`
	Bridge   string       `json:"bridge"`
	VXLAN    string       `json:"vxlan"`
	MTU      int          `json:"mtu"`
	PublicIP netip.Addr   `json:"publicIP"`
	PID      int          `json:"pid"`
}

// StatePath returns the host state file of a network.
func StatePath(dir, network string) string { return filepath.Join(dir, network+".json") }

// LockPath returns the file the network's agent keeps locked while it runs.
func LockPath(dir, network string) string { return filepath.Join(dir, network+".lock") }

// AttachDir returns the directory where the plugin's attach service keeps a
// network's attachment records and addresses.
func AttachDir(dir, network string) string { return filepath.Join(dir, network) }

// IPAMPath returns the address database of a network (in AttachDir).
func IPAMPath(dir, network string) string { return filepath.Join(AttachDir(dir, network), "ipam.db") }

// WriteHostState replaces the state file atomically (temporary file, fsync,
// rename).
func WriteHostState(dir string, st HostState) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create state directory: %w", err)
	}
	b, _ := json.MarshalIndent(st, "", "  ")
	path := StatePath(dir, st.Network)
	tmp, err := os.CreateTemp(dir, "."+st.Network+".json.*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = tmp.Write(append(b, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// ReadHostState reads a network's state file; a missing file wraps
// os.ErrNotExist.
func ReadHostState(dir, network string) (HostState, error) {
	var st HostState
	b, err := os.ReadFile(StatePath(dir, network))
	if err != nil {
		return st, fmt.Errorf("read overlay host state: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("decode %s: %w", StatePath(dir, network), err)
	}
	if !st.Subnet.IsValid() || !st.Gateway.IsValid() || st.Bridge == "" {
		return st, fmt.Errorf("%s: no subnet, gateway or bridge", StatePath(dir, network))
	}
	return st, nil
}

// lockAgent takes the network's agent lock without waiting; the lock lives
// as long as the returned file stays open.
func lockAgent(dir, network string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	f, err := os.OpenFile(LockPath(dir, network), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open agent lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("another overlay agent for network %s is running (%s is locked)", network, LockPath(dir, network))
		}
		return nil, fmt.Errorf("lock %s: %w", LockPath(dir, network), err)
	}
	return f, nil
}

// Running reports whether an agent holds the network's lock: it tries
// to take a shared lock, which fails while the agent's exclusive one is
// held, and drops it again at once.
func Running(dir, network string) bool {
	f, err := os.Open(LockPath(dir, network))
	if err != nil {
		return false
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); err != nil {
		return errors.Is(err, unix.EWOULDBLOCK)
	}
	_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return false
}

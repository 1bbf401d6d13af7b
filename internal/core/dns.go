package core

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/aardvarkconf"
	"github.com/berthnet/berth/internal/link"
	"github.com/berthnet/berth/internal/network"
	"github.com/berthnet/berth/internal/safefile"
)

// reloadWait bounds how long a setup or teardown waits for the DNS server
// to confirm a reload; past it, the server is signalled as aardvark-dns is.
const reloadWait = 5 * time.Second

// signalDNS has the running DNS server reload its configuration and
// returns once it has: berth's server is asked over its control socket
// and answers when the new names are served. A server without one
// (aardvark-dns itself, or one that does not answer in time) gets SIGHUP,
// as netavark sends it, and reloads shortly after. When none runs (no pid
// file, a dead PID, or a server in another network namespace) and start is
// set, it starts one the way netavark does: `<aardvark> --config <dir> -p
// <port> run`, which forks and returns once the server is ready.
func (m *Manager) signalDNS(start bool) error {
	dir := m.dnsDir()
	if pid, ok := runningPID(dir.PidFile(), m.hostNSLink()); ok {
		err := dir.RequestReload(pid, reloadWait)
		if err == nil {
			return nil
		}
		if !errors.Is(err, aardvarkconf.ErrNoControl) {
			m.log.Warn("the DNS server did not confirm the reload; signalling it", "pid", pid, "error", err)
		}
		if err := unix.Kill(pid, unix.SIGHUP); err == nil {
			return nil
		} else if !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("signal aardvark-dns (pid %d): %w", pid, err)
		}
	}
	if !start {
		return nil
	}
	if !m.haveDNSServer() {
		return nil
	}
	return m.startDNS(dir)
}

// dnsCommand is the command that starts the DNS server on dir: the binary
// itself, or, on a host run by systemd, the binary in a systemd scope of
// its own (a user scope when rootless), so it outlives its caller's unit.
func (m *Manager) dnsCommand(dir aardvarkconf.Dir) *exec.Cmd {
	cmd := scoped(m.cfg.AardvarkBinary, []string{"--config", dir.Path, "-p", strconv.Itoa(int(m.cfg.DNSPort)), "run"}, m.cfg.Rootless)
	cmd.Env = append(os.Environ(), m.cfg.AardvarkEnv...)
	return cmd
}

// startDNS starts the DNS server on dir (dnsCommand) in the host namespace
// and waits for the command to return, which it does once the forked
// server is ready. A failure's error carries the command's stderr; a
// command that has not returned within 30 s is killed.
func (m *Manager) startDNS(dir aardvarkconf.Dir) error {
	cmd := m.dnsCommand(dir)
	// A file, not a pipe: the daemonised child may keep stderr open, and
	// Wait must return when the parent exits.
	errFile, err := os.CreateTemp("", "berth-aardvark-stderr")
	if err != nil {
		return fmt.Errorf("start aardvark-dns: %w", err)
	}
	defer os.Remove(errFile.Name())
	defer errFile.Close()
	cmd.Stderr = errFile
	done := make(chan error, 1)
	startIt := func() error { return cmd.Start() }
	var startErr error
	if m.cfg.HostNS != nil {
		// fork inherits the namespace of the forking thread.
		startErr = m.cfg.HostNS.Do(startIt)
	} else {
		startErr = startIt()
	}
	if startErr != nil {
		return fmt.Errorf("aardvark-dns failed to start: Failed to find executable %s: %w", m.cfg.AardvarkBinary, unwrapPath(startErr))
	}
	go func() { done <- cmd.Wait() }()

	select {
	case err := <-done:
		if err != nil {
			msg, _ := os.ReadFile(errFile.Name())
			m.log.Debug("aardvark-dns failed to start", "error", err)
			return &network.DNSStartError{Stderr: strings.TrimSpace(string(msg)), Err: err}
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		return errors.New("aardvark-dns did not report ready within 30s")
	}
	return nil
}

// unwrapPath returns the error inside a path error (whose text repeats
// the path), else err.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// ErrDNSLoop is a DNS server that is the listen address of one of the
// container's DNS-enabled networks: the DNS server would forward queries
// to itself.
var ErrDNSLoop = errors.New("would cause aardvark-dns to forward queries to itself")

// checkDNSLoop refuses a container DNS server, or a network DNS server,
// that is an address the DNS server listens on for one of the networks of
// att (what netavark 2.1 checks before it writes any entry).
func checkDNSLoop(o *network.Options, att []*attachment) error {
	owner := map[netip.Addr]string{}
	var dnsAtt []*attachment
	for _, at := range att {
		if at.net.Driver != network.DriverBridge || !at.net.DNSEnabled {
			continue
		}
		dnsAtt = append(dnsAtt, at)
		for _, a := range at.dnsBind {
			if _, ok := owner[a]; !ok {
				owner[a] = at.net.Name
			}
		}
	}
	for _, at := range dnsAtt {
		for _, d := range o.DNSServers {
			if n, ok := owner[d]; ok {
				return fmt.Errorf("DNS server %s is the gateway of network %q; using it %w", d, n, ErrDNSLoop)
			}
		}
		for _, d := range at.net.NetworkDNSServers {
			if n, ok := owner[d]; ok {
				return fmt.Errorf("network DNS server %s matches the gateway of network %q; using it %w", d, n, ErrDNSLoop)
			}
		}
	}
	return nil
}

// ErrNoDNSAddress is an unmanaged bridge with no address for the DNS
// server to listen on.
var ErrNoDNSAddress = errors.New("no usable IP addresses")

// NoDNSAddressError names the unmanaged bridge that has no address the
// DNS server could bind; it matches ErrNoDNSAddress.
type NoDNSAddressError struct{ Bridge string }

func (e *NoDNSAddressError) Error() string {
	return fmt.Sprintf("bridge '%s' in unmanaged mode has %v: the DNS server needs one that is not IPv6 link-local; add an address or disable DNS for this network (--disable-dns)", e.Bridge, ErrNoDNSAddress)
}

// Is makes errors.Is(err, ErrNoDNSAddress) true.
func (e *NoDNSAddressError) Is(target error) bool { return target == ErrNoDNSAddress }

// dnsBindAddrs returns the addresses the DNS server listens on for the
// dns_enabled bridge network n on bridge br: its gateways, or, for an
// unmanaged bridge (whose gateway may be a router elsewhere), the
// bridge's own IPv4 and non-link-local IPv6 addresses, of which there must
// be one.
func dnsBindAddrs(n network.Network, br link.Link) ([]netip.Addr, error) {
	if !n.Unmanaged() {
		return n.Gateways(), nil
	}
	addrs, err := br.Addrs()
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, p := range addrs {
		if a := p.Addr(); !a.IsLinkLocalUnicast() {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return nil, &NoDNSAddressError{Bridge: br.Name}
	}
	return out, nil
}

// runningPID reads a pid file and reports whether that process is alive,
// in this process's network namespace, and a DNS server of the pid file's
// directory (its command line names the directory, as `--config DIR`
// does): a stale pid file whose PID now belongs to another program never
// gets that program signalled.
func runningPID(pidFile, ours string) (int, bool) {
	b, err := safefile.Read(pidFile, 64)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	theirs, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		return 0, false
	}
	if theirs != ours || !servesDir(pid, filepath.Dir(pidFile)) {
		return 0, false
	}
	return pid, true
}

// servesDir reports whether process pid was started with dir as an
// argument (`--config DIR` or `--config=DIR`).
func servesDir(pid int, dir string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	for _, arg := range strings.Split(string(b), "\x00") {
		if v, ok := strings.CutPrefix(arg, "--config="); ok {
			arg = v
		}
		if arg != "" && filepath.Clean(arg) == filepath.Clean(dir) {
			return true
		}
	}
	return false
}

// hostNSLink returns the host namespace's identity as /proc/PID/ns/net
// links print it ("net:[inode]").
func (m *Manager) hostNSLink() string {
	if m.cfg.HostNS != nil {
		if ino, err := m.cfg.HostNS.Inode(); err == nil {
			return fmt.Sprintf("net:[%d]", ino)
		}
	}
	l, _ := os.Readlink("/proc/self/ns/net")
	return l
}

// SetDNSNames replaces the names of a container's DNS entries, network by
// network (its addresses stay), and has the DNS server reload: a pod's
// infra container gains and loses its members' names this way. Networks
// with no entry for the container are left alone.
func (m *Manager) SetDNSNames(containerID string, names map[string][]string) error {
	dir := m.dnsDir()
	entries := map[string]aardvarkconf.Entry{}
	headers := map[string]aardvarkconf.Header{}
	for netName, n := range names {
		file := m.dnsFileNamed(netName)
		f, err := dir.Read(file)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read dns entries of network %s: %w", netName, err)
		}
		for _, e := range f.Entries {
			if e.ID == containerID {
				e.Names = n
				entries[file], headers[file] = e, f.Header
			}
		}
	}
	if len(entries) == 0 {
		return nil
	}
	if err := dir.Add(entries, headers); err != nil {
		return fmt.Errorf("write dns entries: %w", err)
	}
	return m.signalDNS(false)
}

// AddDNSEntry adds (or replaces) a container's entry in the network's DNS
// configuration, with the header (listen addresses, upstream servers) given,
// and starts the DNS server or has it reload. It is how a CNI meta plugin
// registers names on a network some other plugin set up.
func (m *Manager) AddDNSEntry(netName string, h aardvarkconf.Header, e aardvarkconf.Entry) error {
	if err := m.dnsDir().Add(map[string]aardvarkconf.Entry{netName: e}, map[string]aardvarkconf.Header{netName: h}); err != nil {
		return fmt.Errorf("write dns entries: %w", err)
	}
	return m.signalDNS(true)
}

// RemoveDNSEntries removes the containers' entries from the network's DNS
// configuration and has the server reload (it exits with the last
// network). Missing entries are not an error.
func (m *Manager) RemoveDNSEntries(netName string, containerIDs ...string) error {
	var errs []error
	for _, id := range containerIDs {
		if _, err := m.dnsDir().Remove(id, []string{m.dnsFileNamed(netName)}); err != nil {
			errs = append(errs, fmt.Errorf("remove dns entries of %s: %w", id, err))
		}
	}
	if err := m.signalDNS(false); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// DNSEntries returns the network's DNS configuration, or an error wrapping
// os.ErrNotExist.
func (m *Manager) DNSEntries(netName string) (*aardvarkconf.File, error) {
	return m.dnsDir().Read(m.dnsFileNamed(netName))
}

// dnsFile names network n's file in the DNS server's directory: an
// internal network's carries aardvark-dns's "%int" suffix (as netavark
// writes it), so the server answers a container only on internal networks
// NXDOMAIN for names outside them instead of forwarding.
func dnsFile(n network.Network) string {
	if n.Internal {
		return n.Name + aardvarkconf.InternalSuffix
	}
	return n.Name
}

// dnsFileNamed is the DNS file of the network called netName when only
// the name is known: the internal network's when only that exists.
func (m *Manager) dnsFileNamed(netName string) string {
	exists := func(name string) bool {
		_, err := os.Lstat(filepath.Join(m.dnsDir().Path, aardvarkconf.FileName(name)))
		return err == nil
	}
	if internal := netName + aardvarkconf.InternalSuffix; !exists(netName) && exists(internal) {
		return internal
	}
	return netName
}

// DNSServerPID returns the PID of the running DNS server of this state
// directory, or 0.
func (m *Manager) DNSServerPID() int {
	pid, _ := runningPID(m.dnsDir().PidFile(), m.hostNSLink())
	return pid
}

// Package netstore keeps network definitions the way Podman does: one JSON
// file per network, <dir>/<name>.json, indented with five spaces, in
// /etc/containers/networks (rootful) or
// ~/.local/share/containers/storage/networks (rootless). Podman reads the
// files berth writes and berth reads the files Podman wrote.
//
// The default network ("podman" unless containers.conf says otherwise) lives
// in memory only, with a fixed ID, until a file of that name exists; then the
// file wins. Writes are atomic (a temporary file renamed over the target) and
// every change runs under the lock Podman 4.3.1 takes on
// <dir>/netavark.lock (a POSIX record lock), so berth and Podman changing the
// same directory at once do not lose each other's networks.
package netstore

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/berthnet/berth/internal/network"
	"github.com/berthnet/berth/internal/safefile"
)

// DefaultNetworkID is the fixed ID of the memory-only default network,
// whatever its name.
const DefaultNetworkID = "2f259bab93aaaaa2542ba43ef33eb990d0999ee1b9924b557b7be53c0b7a1bb9"

// DefaultBridge is the bridge of the default network.
const DefaultBridge = "podman0"

// ZeroCreated is what Podman shows for a file without "created".
const ZeroCreated = "0001-01-01T00:00:00Z"

// Errors callers branch on.
var (
	// ErrNotFound: no network has that name or ID.
	ErrNotFound = errors.New("network not found")
	// ErrExists: a network of that name exists.
	ErrExists = errors.New("network already exists")
	// ErrAmbiguous: an ID prefix matches more than one network.
	ErrAmbiguous = errors.New("ambiguous network ID")
	// ErrDefault: the default network cannot be removed.
	ErrDefault = errors.New("default network cannot be removed")
)

// msgError prints only its message (Podman's wording) and unwraps to a
// sentinel.
type msgError struct {
	msg string
	err error
}

func (e *msgError) Error() string { return e.msg }
func (e *msgError) Unwrap() error { return e.err }

// Rootful and rootless default directories (rootless relative to the home
// directory, as $graphroot/networks with the default graphroot).
const (
	RootfulDir  = "/etc/containers/networks"
	RootlessRel = ".local/share/containers/storage/networks"
)

// Config configures a Store.
type Config struct {
	// Dir holds the network files; it is created on the first write.
	Dir string
	// DefaultName is the name of the default network ("podman").
	DefaultName string
	// DefaultSubnet is its subnet (10.88.0.0/16).
	DefaultSubnet netip.Prefix
	// Logger receives warnings about files that are skipped.
	Logger *slog.Logger
	// Now is the clock (the default network's "created"); nil: time.Now.
	Now func() time.Time
}

// Store is a directory of network files.
type Store struct {
	cfg Config
	log *slog.Logger
	// mu serialises this process's writers; the file lock serialises
	// processes (record locks do not exclude threads of one process).
	mu sync.Mutex
}

// New returns a store for cfg.Dir.
func New(cfg Config) (*Store, error) {
	if cfg.Dir == "" {
		return nil, errors.New("netstore: no directory")
	}
	if cfg.DefaultName == "" {
		cfg.DefaultName = "podman"
	}
	if !cfg.DefaultSubnet.IsValid() {
		cfg.DefaultSubnet = netip.MustParsePrefix("10.88.0.0/16")
	}
	cfg.DefaultSubnet = cfg.DefaultSubnet.Masked()
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	l := cfg.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return &Store{cfg: cfg, log: l}, nil
}

// Dir returns the directory of the network files.
func (s *Store) Dir() string { return s.cfg.Dir }

// DefaultName returns the name of the default network.
func (s *Store) DefaultName() string { return s.cfg.DefaultName }

// Default returns the memory-only default network as it is before export.
func (s *Store) Default() network.Network {
	sub := network.Subnet{Subnet: s.cfg.DefaultSubnet}
	if s.cfg.DefaultSubnet.Bits() < s.cfg.DefaultSubnet.Addr().BitLen()-1 {
		sub.Gateway = s.cfg.DefaultSubnet.Addr().Next()
	}
	return network.Network{
		Name:             s.cfg.DefaultName,
		ID:               DefaultNetworkID,
		Driver:           network.DriverBridge,
		NetworkInterface: DefaultBridge,
		Created:          s.cfg.Now().Format(time.RFC3339Nano),
		Subnets:          []network.Subnet{sub},
		IPv6Enabled:      s.cfg.DefaultSubnet.Addr().Is6(),
		DNSEnabled:       false,
		IPAMOptions:      map[string]string{"driver": network.IPAMHostLocal},
	}
}

// IsDefault reports whether n is the default network (by name).
func (s *Store) IsDefault(n network.Network) bool { return n.Name == s.cfg.DefaultName }

// List returns every network, sorted by name, with the default network
// included. Files that cannot be used are skipped with a warning, as Podman
// skips them.
func (s *Store) List() ([]network.Network, error) {
	ents, err := os.ReadDir(s.cfg.Dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read network directory: %w", err)
	}
	var out []network.Network
	haveDefault := false
	for _, e := range ents {
		if e.IsDir() || filepath.Ext(e.Name()) != ".json" {
			continue
		}
		p := filepath.Join(s.cfg.Dir, e.Name())
		n, err := LoadFile(p)
		if err != nil {
			s.log.Warn("skipping network config file", "file", p, "error", err)
			continue
		}
		if n.Name == s.cfg.DefaultName {
			haveDefault = true
		}
		out = append(out, n)
	}
	if !haveDefault {
		out = append(out, s.Default())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// LoadFile reads and checks one network file the way Podman does: the name
// must match the file name, the ID must be 64 hex characters, gateways and
// lease ranges must lie in their subnets. Subnets are normalised and missing
// gateways filled in memory only.
func LoadFile(path string) (network.Network, error) {
	var n network.Network
	b, err := readConfigFile(path)
	if err != nil {
		return n, err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return n, fmt.Errorf("read network config file %q: %w", path, io.EOF)
	}
	if err := json.Unmarshal(b, &n); err != nil {
		return n, fmt.Errorf("parse network config file %q: %w", path, err)
	}
	want := strings.TrimSuffix(filepath.Base(path), ".json")
	if n.Name != want {
		return n, fmt.Errorf("network config name %q does not match file name %q", n.Name, filepath.Base(path))
	}
	if !network.ValidName(n.Name) {
		return n, fmt.Errorf("network config %q: invalid name (names must match "+network.NameRule+")", path)
	}
	if len(n.ID) != 64 {
		return n, fmt.Errorf("network config %q: invalid network ID %q", path, n.ID)
	}
	if _, err := hex.DecodeString(n.ID); err != nil {
		return n, fmt.Errorf("network config %q: invalid network ID %q", path, n.ID)
	}
	if n.Created == "" {
		n.Created = ZeroCreated
	}
	addGateway := !n.Internal || n.DNSEnabled
	for i := range n.Subnets {
		sn := &n.Subnets[i]
		if !sn.Subnet.IsValid() {
			return n, fmt.Errorf("network config %q: subnet %d is missing", path, i)
		}
		sn.Subnet = sn.Subnet.Masked()
		if sn.Subnet.Addr().Is6() {
			n.IPv6Enabled = true
		}
		if sn.Gateway.IsValid() {
			if !sn.Subnet.Contains(sn.Gateway) {
				return n, fmt.Errorf("network config %q: gateway %s not in subnet %s", path, sn.Gateway, sn.Subnet)
			}
		} else if addGateway {
			sn.Gateway = sn.Subnet.Addr().Next()
			if !sn.Subnet.Contains(sn.Gateway) {
				return n, fmt.Errorf("network config %q: subnet %s has no address for a gateway", path, sn.Subnet)
			}
		}
		if lr := sn.LeaseRange; lr != nil {
			if lr.StartIP.IsValid() && !sn.Subnet.Contains(lr.StartIP) {
				return n, fmt.Errorf("network config %q: lease range start ip %s not in subnet %s", path, lr.StartIP, sn.Subnet)
			}
			if lr.EndIP.IsValid() && !sn.Subnet.Contains(lr.EndIP) {
				return n, fmt.Errorf("network config %q: lease range end ip %s not in subnet %s", path, lr.EndIP, sn.Subnet)
			}
		}
	}
	return n, nil
}

// MaxFileSize is the largest network file berth reads: Podman's are a
// few hundred bytes, so anything near this is not a network definition.
const MaxFileSize = safefile.DefaultLimit

// readConfigFile reads a network file without ever blocking or reading
// without bound (see safefile.Read: a FIFO, a link to /dev/zero or a huge
// file is an error naming the file).
func readConfigFile(path string) ([]byte, error) {
	b, err := safefile.Read(path, MaxFileSize)
	if err != nil {
		return nil, fmt.Errorf("read network config file: %w", err)
	}
	return b, nil
}

// Get finds a network by name, full ID or unique ID prefix.
func (s *Store) Get(nameOrID string) (network.Network, error) {
	all, err := s.List()
	if err != nil {
		return network.Network{}, err
	}
	return Find(all, nameOrID)
}

// Find looks nameOrID up in nets as Podman does: an exact name first, then
// an ID prefix that must be unique.
func Find(nets []network.Network, nameOrID string) (network.Network, error) {
	for _, n := range nets {
		if n.Name == nameOrID {
			return n, nil
		}
	}
	var found *network.Network
	for i := range nets {
		if nameOrID != "" && strings.HasPrefix(nets[i].ID, nameOrID) {
			if found != nil {
				return network.Network{}, &msgError{msg: "more than one result for network ID " + nameOrID, err: ErrAmbiguous}
			}
			found = &nets[i]
		}
	}
	if found == nil {
		return network.Network{}, fmt.Errorf("unable to find network with name or ID %s: %w", nameOrID, ErrNotFound)
	}
	return *found, nil
}

// Lock takes the directory's lock (<dir>/netavark.lock, the lock Podman
// 4.3.1 takes) and returns its release. Create, Update and Remove take it
// themselves; a caller that reads, decides and then writes holds it across.
func (s *Store) Lock() (func(), error) {
	s.mu.Lock()
	if err := os.MkdirAll(s.cfg.Dir, 0o755); err != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("create network directory: %w", err)
	}
	p := filepath.Join(s.cfg.Dir, "netavark.lock")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("open lock %s: %w", p, err)
	}
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: io.SeekStart}
	for {
		err = syscall.FcntlFlock(f.Fd(), syscall.F_SETLKW, &lk)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		s.mu.Unlock()
		return nil, fmt.Errorf("lock %s: %w", p, err)
	}
	return func() {
		f.Close() // closing releases the record lock
		s.mu.Unlock()
	}, nil
}

// Marshal renders a network file: Podman's five-space indent and a final
// newline.
func Marshal(n network.Network) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "     ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(n); err != nil {
		return nil, fmt.Errorf("encode network %s: %w", n.Name, err)
	}
	return buf.Bytes(), nil
}

func (s *Store) path(name string) string { return filepath.Join(s.cfg.Dir, name+".json") }

// Create writes a new network file; the caller holds the lock when it
// chose the name, subnet or bridge from what exists. A name that exists
// gives ErrExists.
func (s *Store) Create(n network.Network) error {
	if !network.ValidName(n.Name) {
		return fmt.Errorf("network name %s invalid: names must match %s: %w", n.Name, network.NameRule, network.ErrInvalid)
	}
	if _, err := os.Stat(s.path(n.Name)); err == nil {
		return fmt.Errorf("network name %s already used: %w", n.Name, ErrExists)
	}
	return s.write(n)
}

// Update rewrites an existing network's file (the default network is
// exported by this).
func (s *Store) Update(n network.Network) error {
	if !network.ValidName(n.Name) {
		return fmt.Errorf("network name %s invalid: %w", n.Name, network.ErrInvalid)
	}
	return s.write(n)
}

// write stores n atomically: a temporary file in the same directory, synced,
// then renamed over <name>.json.
func (s *Store) write(n network.Network) error {
	b, err := Marshal(n)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.cfg.Dir, 0o755); err != nil {
		return fmt.Errorf("create network directory: %w", err)
	}
	f, err := os.CreateTemp(s.cfg.Dir, "."+n.Name+".json.tmp-")
	if err != nil {
		return fmt.Errorf("write network %s: %w", n.Name, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(b); err != nil {
		return fmt.Errorf("write network %s: %w", n.Name, err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("write network %s: %w", n.Name, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write network %s: %w", n.Name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write network %s: %w", n.Name, err)
	}
	if err := os.Rename(tmp, s.path(n.Name)); err != nil {
		return fmt.Errorf("write network %s: %w", n.Name, err)
	}
	ok = true
	if d, err := os.Open(s.cfg.Dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// Remove deletes a network's file. The default network gives ErrDefault.
func (s *Store) Remove(name string) error {
	if name == s.cfg.DefaultName {
		return fmt.Errorf("default network %s cannot be removed: %w", name, ErrDefault)
	}
	if err := os.Remove(s.path(name)); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("unable to find network with name or ID %s: %w", name, ErrNotFound)
		}
		return fmt.Errorf("remove network %s: %w", name, err)
	}
	return nil
}

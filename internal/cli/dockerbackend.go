package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/buildinfo"
	"github.com/berthnet/berth/internal/dockerapi"
	"github.com/berthnet/berth/internal/engine"
	"github.com/berthnet/berth/internal/image"
	"github.com/berthnet/berth/internal/netstore"
	"github.com/berthnet/berth/internal/network"
)

// dockerBackend is the world seen through the Docker Engine API: the
// same stores and engine the CLI uses, with errors sorted into the
// status classes dockerapi answers with.
type dockerBackend struct{ w *world }

var _ dockerapi.Backend = dockerBackend{}

// apiErr classifies berth's errors for the API (the message stays).
func apiErr(err error) error {
	var class error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, netstore.ErrNotFound), errors.Is(err, engine.ErrNoSuchContainer),
		errors.Is(err, engine.ErrNoSuchPod), errors.Is(err, engine.ErrNoSuchVolume):
		class = dockerapi.ErrNotFound
	case errors.Is(err, netstore.ErrExists), errors.Is(err, engine.ErrNameInUse), errors.Is(err, engine.ErrVolumeExists):
		class = dockerapi.ErrConflict
	case errors.Is(err, engine.ErrAlreadyConnected), errors.Is(err, ErrNetworkInUse), errors.Is(err, netstore.ErrDefault):
		class = dockerapi.ErrForbidden
	case errors.Is(err, network.ErrInvalid), errors.Is(err, netstore.ErrAmbiguous):
		class = dockerapi.ErrInvalid
	default:
		return err
	}
	return fmt.Errorf("%w: %w", err, class)
}

func (b dockerBackend) Info(ctx context.Context) (dockerapi.HostInfo, error) {
	hi := dockerapi.HostInfo{
		OS: osName(), Arch: runtime.GOARCH, NCPU: runtime.NumCPU(), MemTotal: memTotal(),
		Root: b.w.root, Rootless: b.w.env.Rootless, Version: buildinfo.Version,
	}
	hi.Name, _ = os.Hostname()
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		hi.KernelVersion = unix.ByteSliceToString(u.Release[:])
	}
	e, err := b.w.engine()
	if err != nil {
		return hi, err
	}
	ctrs, err := e.List()
	if err != nil {
		return hi, err
	}
	for _, c := range ctrs {
		if c.Config.Infra || c.Config.Registered {
			continue
		}
		hi.Containers++
		switch c.State.Status {
		case engine.StateRunning:
			hi.Running++
		case "paused":
			hi.Paused++
		default:
			hi.Stopped++
		}
	}
	if st, err := image.Open(filepath.Join(b.w.root, "images")); err == nil {
		if imgs, err := st.List(); err == nil {
			hi.Images = len(imgs)
		}
	}
	return hi, nil
}

// osName is /etc/os-release's PRETTY_NAME, as Docker reports it.
func osName() string {
	f, err := os.Open("/etc/os-release")
	if err != nil {
		return "linux"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "linux"
}

// memTotal is MemTotal of /proc/meminfo in bytes.
func memTotal() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

func (b dockerBackend) Networks(ctx context.Context) ([]dockerapi.NetworkInfo, error) {
	nets, err := b.w.store.List()
	if err != nil {
		return nil, err
	}
	inUse, ctrs, err := b.w.inUse()
	if err != nil {
		return nil, err
	}
	out := make([]dockerapi.NetworkInfo, 0, len(nets))
	for _, n := range nets {
		out = append(out, networkInfo(n, inUse, ctrs))
	}
	return out, nil
}

func networkInfo(n network.Network, inUse map[string]bool, ctrs []*engine.Container) dockerapi.NetworkInfo {
	info := dockerapi.NetworkInfo{Network: n, InUse: inUse[n.Name]}
	for _, c := range ctrs {
		for _, a := range c.State.Attachments {
			if a.Network.Name != n.Name {
				continue
			}
			ep := dockerapi.Endpoint{ContainerID: c.Config.ID, Name: c.Config.Name, MAC: a.Opts.StaticMAC}
			for _, ip := range a.Opts.StaticIPs {
				p := prefixIn(n, ip)
				if ip.Is4() {
					ep.IPv4 = p
				} else {
					ep.IPv6 = p
				}
			}
			info.Endpoints = append(info.Endpoints, ep)
		}
	}
	return info
}

// prefixIn is ip with the length of the network's subnet that holds it.
func prefixIn(n network.Network, ip netip.Addr) netip.Prefix {
	for _, s := range n.Subnets {
		if s.Subnet.Contains(ip) {
			return netip.PrefixFrom(ip, s.Subnet.Bits())
		}
	}
	return netip.PrefixFrom(ip, ip.BitLen())
}

func (b dockerBackend) Network(ctx context.Context, ref string) (dockerapi.NetworkInfo, error) {
	n, err := b.w.store.Get(ref)
	if err != nil {
		return dockerapi.NetworkInfo{}, apiErr(err)
	}
	inUse, ctrs, err := b.w.inUse()
	if err != nil {
		return dockerapi.NetworkInfo{}, err
	}
	return networkInfo(n, inUse, ctrs), nil
}

func (b dockerBackend) CreateNetwork(ctx context.Context, n network.Network) (network.Network, error) {
	out, err := b.w.create(n, false)
	if errors.Is(err, netstore.ErrExists) {
		return out, fmt.Errorf("network with name %s already exists: %w", n.Name, dockerapi.ErrConflict)
	}
	return out, apiErr(err)
}

func (b dockerBackend) RemoveNetwork(ctx context.Context, ref string) error {
	n, err := b.w.store.Get(ref)
	if err != nil {
		return apiErr(err)
	}
	if _, err := b.w.removeNetwork(ctx, ref, false); err != nil {
		if errors.Is(err, ErrNetworkInUse) {
			return fmt.Errorf("error while removing network: network %s id %s has active endpoints: %w", n.Name, n.ID, dockerapi.ErrForbidden)
		}
		return apiErr(err)
	}
	return nil
}

func (b dockerBackend) Connect(ctx context.Context, ctr string, r engine.ConnectRequest) error {
	e, err := b.w.engine()
	if err != nil {
		return err
	}
	return apiErr(e.Connect(ctx, ctr, r))
}

func (b dockerBackend) Disconnect(ctx context.Context, ctr, net string, force bool) error {
	e, err := b.w.engine()
	if err != nil {
		return err
	}
	return apiErr(e.Disconnect(ctx, ctr, net, force))
}

func (b dockerBackend) IsDefaultNetwork(n network.Network) bool { return b.w.store.IsDefault(n) }

func (b dockerBackend) Engine() (dockerapi.ContainerEngine, error) { return b.w.engine() }

func (b dockerBackend) InspectInfo(c *engine.Container) dockerapi.InspectInfo {
	e, err := b.w.engine()
	if err != nil {
		return dockerapi.InspectInfo{}
	}
	run := e.RunDir(c.Config.ID)
	return dockerapi.InspectInfo{
		LogPath: e.LogPath(c.Config.ID), HostsPath: filepath.Join(run, "hosts"),
		ResolvConfPath: filepath.Join(run, "resolv.conf"), HostnamePath: filepath.Join(run, "hostname"),
	}
}

// Package agent is the per-host agent of berth's overlay network
// (`berth-overlay agent`): it claims a subnet of the network's range in
// etcd (a transaction that writes the lease key only if it does not exist,
// confirmed by reading it back, attached to an etcd lease it keeps alive),
// creates the host's VXLAN device and container bridge through the kernel
// adapter vxlan, keeps one FDB entry, neighbour and route per other host's
// lease in sync from an etcd watch, and publishes the host's subnet in a
// state file that the CNI plugin reads.
package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sort"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/berthnet/berth/internal/overlay/lease"
	"github.com/berthnet/berth/internal/vxlan"
)

// Config configures the per-host agent of one overlay network.
type Config struct {
	// Network is the network's name: the CNI conflist's "name".
	Network string
	// Overlay is the configuration every host must agree on.
	Overlay lease.Config
	// Endpoints are the etcd client URLs; TLS is optional.
	Endpoints []string
	TLS       *tls.Config
	// Prefix is the etcd key prefix (default /berth/overlay/<network>).
	Prefix string
	// Iface is the underlay link (default: the link of the default route);
	// PublicIP its address other hosts reach (default: its first IPv4).
	Iface    string
	PublicIP netip.Addr
	// Subnet asks for one subnet; a claim of a subnet another host holds
	// fails. Without it the agent reclaims the subnet of its state file,
	// else takes the first free one.
	Subnet netip.Prefix
	// TTL of the etcd lease: how long a dead host's routes outlive it.
	TTL time.Duration
	// Resync is the interval of full re-reads of etcd and the kernel.
	Resync time.Duration
	// StateDir is where the host state file, the agent lock and the
	// plugin's attachment directory (AttachDir) live.
	StateDir string
	// VXLAN and Bridge name the devices; MTU 0 derives it from the underlay.
	VXLAN, Bridge string
	MTU           int
	// Host names this host in its lease (default: the hostname).
	Host string
	// ReleaseOnExit deletes the lease when the agent stops, so other hosts
	// withdraw the routes at once (default: they stay until the TTL ends,
	// which lets a restarted agent take its subnet back without a gap).
	ReleaseOnExit bool
	Log           *slog.Logger
}

func (c *Config) defaults() error {
	if c.Network == "" {
		return errors.New("--network: name the overlay network (the CNI conflist's name)")
	}
	if len(c.Endpoints) == 0 {
		return errors.New("--etcd-endpoints: give at least one etcd client URL, such as http://198.18.0.1:2379")
	}
	if c.Overlay.Port == 0 {
		c.Overlay.Port = 4789
	}
	if c.Overlay.SubnetLen == 0 {
		c.Overlay.SubnetLen = 24
	}
	if err := c.Overlay.Validate(); err != nil {
		return err
	}
	if c.Subnet.IsValid() && !c.Overlay.Contains(c.Subnet) {
		return fmt.Errorf("--subnet %s: want a /%d subnet of %s", c.Subnet, c.Overlay.SubnetLen, c.Overlay.Network)
	}
	if c.Prefix == "" {
		c.Prefix = "/berth/overlay/" + c.Network
	}
	if c.TTL == 0 {
		c.TTL = 20 * time.Second
	}
	if c.TTL < 2*time.Second {
		return fmt.Errorf("--lease-ttl %s: want at least 2s", c.TTL)
	}
	if c.Resync == 0 {
		c.Resync = time.Minute
	}
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	if c.VXLAN == "" {
		c.VXLAN = fmt.Sprintf("berth.%d", c.Overlay.VNI)
	}
	if c.Bridge == "" {
		c.Bridge = fmt.Sprintf("berthbr%d", c.Overlay.VNI)
	}
	for _, n := range []string{c.VXLAN, c.Bridge} {
		if len(n) > 15 {
			return fmt.Errorf("device name %q is longer than 15 characters", n)
		}
	}
	if c.Host == "" {
		c.Host, _ = os.Hostname()
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Agent keeps one host's share of an overlay network: its subnet lease in
// etcd (kept alive), and the VXLAN forwarding entries and routes to every
// other host's subnet (kept in sync from an etcd watch).
type Agent struct {
	cfg Config
	dev *vxlan.Device
	reg *Registry
	cli *clientv3.Client
	own lease.Lease
	id  clientv3.LeaseID
	// ownRev is the revision the claim was written at: older delete
	// events of the key are history.
	ownRev int64
	// kaCancel stops the current keep-alive.
	kaCancel context.CancelFunc
	// remotes are the leases seen in etcd, by key.
	remotes map[string]lease.Lease
}

// Run sets the host up and keeps it in sync until ctx ends or the
// host loses its subnet for good. The kernel state stays when it returns,
// so containers keep their connectivity across an agent restart.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.defaults(); err != nil {
		return err
	}
	lock, err := lockAgent(cfg.StateDir, cfg.Network)
	if err != nil {
		return err
	}
	defer lock.Close()
	a := &Agent{cfg: cfg, remotes: map[string]lease.Lease{}}
	if err := a.setupHost(); err != nil {
		return err
	}
	defer a.dev.Close()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            cfg.Endpoints,
		TLS:                  cfg.TLS,
		DialTimeout:          5 * time.Second,
		DialKeepAliveTime:    5 * time.Second,
		DialKeepAliveTimeout: 3 * time.Second,
		Logger:               zap.NewNop(),
		Context:              ctx,
	})
	if err != nil {
		return fmt.Errorf("connect to etcd %v: %w", cfg.Endpoints, err)
	}
	defer cli.Close()
	a.cli = cli
	a.reg, err = NewRegistry(cli, cfg.Prefix)
	if err != nil {
		return err
	}
	if err := a.reg.EnsureConfig(ctx, cfg.Overlay); err != nil {
		return err
	}
	want, strict := cfg.Subnet, cfg.Subnet.IsValid()
	if !want.IsValid() {
		if st, err := ReadHostState(cfg.StateDir, cfg.Network); err == nil && cfg.Overlay.Contains(st.Subnet) {
			want = st.Subnet
		}
	}
	ka, err := a.claim(ctx, want, strict)
	if err != nil {
		return err
	}
	err = a.loop(ctx, ka)
	if cfg.ReleaseOnExit {
		rctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		rerr := a.reg.Release(rctx, a.own.Subnet, a.id)
		if rerr == nil {
			_, rerr = a.cli.Revoke(rctx, a.id)
		}
		cancel()
		if rerr != nil {
			cfg.Log.Warn("release lease", "err", rerr)
		}
	}
	if ctx.Err() != nil && err == nil {
		return nil
	}
	return err
}

// setupHost finds the underlay, enables forwarding and creates the devices.
func (a *Agent) setupHost() error {
	dev, err := vxlan.Ensure(nil, vxlan.Spec{VXLAN: a.cfg.VXLAN, Bridge: a.cfg.Bridge, VNI: a.cfg.Overlay.VNI,
		Port: a.cfg.Overlay.Port, Iface: a.cfg.Iface, PublicIP: a.cfg.PublicIP, MTU: a.cfg.MTU})
	if errors.Is(err, vxlan.ErrNoAddress) {
		return fmt.Errorf("set up host: %w; give --public-ip", err)
	}
	if err != nil {
		return fmt.Errorf("set up host: %w", err)
	}
	a.dev, a.cfg.PublicIP = dev, dev.PublicIP()
	return nil
}

// claim grants an etcd lease, claims a subnet under it, starts its
// keep-alive and publishes the host state. With strict, only want will do;
// otherwise a taken want falls back to any free subnet.
func (a *Agent) claim(ctx context.Context, want netip.Prefix, strict bool) (<-chan *clientv3.LeaseKeepAliveResponse, error) {
	g, err := a.cli.Grant(ctx, int64((a.cfg.TTL+time.Second-1)/time.Second))
	if err != nil {
		return nil, fmt.Errorf("grant etcd lease: %w", err)
	}
	me := lease.Lease{PublicIP: a.cfg.PublicIP, BackendType: "vxlan", Host: a.cfg.Host,
		BackendData: lease.BackendData{VNI: a.cfg.Overlay.VNI, VtepMAC: a.dev.MAC().String()}}
	l, rev, err := a.reg.Claim(ctx, a.cfg.Overlay, me, want, g.ID)
	if err != nil && !strict && want.IsValid() && errors.Is(err, lease.ErrTaken) {
		a.cfg.Log.Warn("previous subnet is taken; claiming another", "subnet", want)
		l, rev, err = a.reg.Claim(ctx, a.cfg.Overlay, me, netip.Prefix{}, g.ID)
	}
	if err != nil {
		rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, _ = a.cli.Revoke(rctx, g.ID)
		cancel()
		return nil, err
	}
	a.own, a.id, a.ownRev = l, g.ID, rev
	if a.kaCancel != nil {
		a.kaCancel()
	}
	kctx, kcancel := context.WithCancel(ctx)
	a.kaCancel = kcancel
	ka, err := a.cli.KeepAlive(kctx, g.ID)
	if err != nil {
		return nil, fmt.Errorf("keep etcd lease alive: %w", err)
	}
	if err := a.dev.SetSubnet(l.Subnet); err != nil {
		return nil, err
	}
	st := HostState{Network: a.cfg.Network, Range: a.cfg.Overlay.Network, Subnet: l.Subnet, Gateway: lease.Gateway(l.Subnet),
		Bridge: a.cfg.Bridge, VXLAN: a.cfg.VXLAN, MTU: a.dev.MTU(), PublicIP: a.cfg.PublicIP, PID: os.Getpid()}
	if err := WriteHostState(a.cfg.StateDir, st); err != nil {
		return nil, err
	}
	a.cfg.Log.Info("subnet leased", "subnet", l.Subnet, "lease", fmt.Sprintf("%x", int64(g.ID)), "ttl", a.cfg.TTL, "vtep", a.cfg.PublicIP, "mac", me.BackendData.VtepMAC)
	return ka, nil
}

// loop keeps the lease alive and the kernel in sync with etcd.
func (a *Agent) loop(ctx context.Context, ka <-chan *clientv3.LeaseKeepAliveResponse) error {
	for {
		rev, err := a.relist(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			a.cfg.Log.Warn("list leases", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
				continue
			}
		}
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		wch := a.cli.Watch(wctx, lease.SubnetsDir(a.reg.Prefix()), clientv3.WithPrefix(), clientv3.WithRev(rev+1))
		ka, err = a.watch(ctx, ka, wch)
		cancel()
		if err != nil || ctx.Err() != nil {
			return err
		}
	}
}

// watch follows the lease keys until the watch breaks (the caller relists
// and watches again), ctx ends, or the lease is lost for good.
func (a *Agent) watch(ctx context.Context, ka <-chan *clientv3.LeaseKeepAliveResponse, wch clientv3.WatchChan) (<-chan *clientv3.LeaseKeepAliveResponse, error) {
	tick := time.NewTicker(a.cfg.Resync)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ka, nil
		case _, ok := <-ka:
			if ok {
				continue
			}
			if ctx.Err() != nil {
				return ka, nil
			}
			// The lease expired (etcd unreachable for a TTL) or was revoked:
			// take the same subnet back, or stop.
			a.cfg.Log.Warn("etcd lease lost; reclaiming the subnet", "subnet", a.own.Subnet)
			nka, err := a.reclaim(ctx)
			if err != nil {
				return ka, err
			}
			ka = nka
		case wr, ok := <-wch:
			if !ok || wr.Err() != nil || wr.Canceled {
				if wr.Err() != nil {
					a.cfg.Log.Warn("watch broke; relisting", "err", wr.Err())
				}
				return ka, nil
			}
			ownLost := false
			for _, ev := range wr.Events {
				key := string(ev.Kv.Key)
				s, err := lease.ParseKey(a.reg.Prefix(), key)
				if err != nil {
					continue
				}
				if ev.Type == clientv3.EventTypeDelete {
					delete(a.remotes, key)
					if s == a.own.Subnet && ev.Kv.ModRevision > a.ownRev {
						ownLost = true
					}
					continue
				}
				l, err := lease.Decode(a.reg.Prefix(), key, ev.Kv.Value)
				if err != nil {
					a.cfg.Log.Warn("ignoring lease", "err", err)
					delete(a.remotes, key)
					continue
				}
				a.remotes[key] = l
				if s == a.own.Subnet && clientv3.LeaseID(ev.Kv.Lease) != a.id {
					a.cfg.Log.Error("own subnet key was overwritten", "key", key, "value", string(ev.Kv.Value))
				}
			}
			if ownLost {
				a.cfg.Log.Warn("own lease key deleted; reclaiming the subnet", "subnet", a.own.Subnet)
				a.kaCancel()
				rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_, _ = a.cli.Revoke(rctx, a.id)
				cancel()
				nka, err := a.reclaim(ctx)
				if err != nil {
					return ka, err
				}
				ka = nka
			}
			a.reconcile()
		case <-tick.C:
			return ka, nil
		}
	}
}

// reclaim claims the same subnet again under a new etcd lease, retrying
// while etcd is unreachable; a subnet another host took meanwhile is fatal,
// since containers here hold addresses in it.
func (a *Agent) reclaim(ctx context.Context) (<-chan *clientv3.LeaseKeepAliveResponse, error) {
	for {
		ka, err := a.claim(ctx, a.own.Subnet, true)
		if err == nil {
			return ka, nil
		}
		if errors.Is(err, lease.ErrTaken) {
			return nil, fmt.Errorf("lost subnet %s to another host while etcd was unreachable: %w", a.own.Subnet, err)
		}
		if ctx.Err() != nil {
			return nil, nil
		}
		a.cfg.Log.Warn("reclaim subnet", "err", err)
		select {
		case <-ctx.Done():
			return nil, nil
		case <-time.After(time.Second):
		}
	}
}

// relist reads every lease, replaces the remote view and reconciles.
func (a *Agent) relist(ctx context.Context) (int64, error) {
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	leases, rev, bad, err := a.reg.List(lctx)
	if err != nil {
		return 0, err
	}
	for _, b := range bad {
		a.cfg.Log.Warn("ignoring lease", "err", b)
	}
	a.remotes = map[string]lease.Lease{}
	for _, l := range leases {
		a.remotes[lease.Key(a.reg.Prefix(), l.Subnet)] = l
	}
	a.reconcile()
	return rev, nil
}

// reconcile programs the kernel from the remote view.
func (a *Agent) reconcile() {
	var ls []lease.Lease
	for _, l := range a.remotes {
		if l.BackendData.VNI == a.cfg.Overlay.VNI {
			ls = append(ls, l)
		}
	}
	sort.Slice(ls, func(i, j int) bool { return ls[i].Subnet.Addr().Less(ls[j].Subnet.Addr()) })
	del, set, err := a.dev.Reconcile(lease.Desired(a.own.Subnet, ls))
	if !del.Empty() {
		a.cfg.Log.Info("withdrawn", "entries", del.String())
	}
	if !set.Empty() {
		a.cfg.Log.Info("programmed", "entries", set.String())
	}
	if err != nil {
		a.cfg.Log.Warn("program forwarding entries", "err", err)
	}
}

// ParseEndpoints splits a comma-separated list of etcd URLs and checks each.
func ParseEndpoints(list []string) ([]string, error) {
	var out []string
	for _, e := range list {
		if e == "" {
			continue
		}
		host := e
		for _, p := range []string{"http://", "https://", "unix://", "unixs://"} {
			if len(e) > len(p) && e[:len(p)] == p {
				host = e[len(p):]
			}
		}
		if _, _, err := net.SplitHostPort(host); err != nil {
			return nil, fmt.Errorf("--etcd-endpoints %q: want URLs such as http://198.18.0.1:2379", e)
		}
		out = append(out, e)
	}
	return out, nil
}

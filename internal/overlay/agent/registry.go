package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthnet/berth/internal/overlay/lease"
)

// ErrConfigMismatch: the network's configuration in etcd differs from the
// one this host was started with.
var ErrConfigMismatch = errors.New("overlay configuration differs from the one stored in etcd")

// Registry is the overlay's shared state in etcd: the network configuration
// and the subnet leases, under one key prefix.
type Registry struct {
	cli    *clientv3.Client
	prefix string
}

// NewRegistry returns a registry on an etcd client under prefix.
func NewRegistry(cli *clientv3.Client, prefix string) (*Registry, error) {
	if cli == nil {
		return nil, errors.New("overlay registry: nil etcd client")
	}
	if prefix == "" || prefix[0] != '/' {
		return nil, fmt.Errorf("etcd prefix %q: want an absolute key prefix such as /berth/overlay/NETWORK", prefix)
	}
	return &Registry{cli: cli, prefix: prefix}, nil
}

// Prefix returns the registry's key prefix.
func (r *Registry) Prefix() string { return r.prefix }

// EnsureConfig stores cfg as the network's configuration unless one is
// stored already (first writer wins), then reads the stored one back; it
// fails with ErrConfigMismatch when the two differ.
func (r *Registry) EnsureConfig(ctx context.Context, cfg lease.Config) error {
	key := lease.ConfigKey(r.prefix)
	b, _ := json.Marshal(cfg)
	if _, err := r.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(b))).
		Commit(); err != nil {
		return fmt.Errorf("store overlay configuration %s: %w", key, err)
	}
	resp, err := r.cli.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("read overlay configuration %s: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return fmt.Errorf("read overlay configuration %s: deleted while starting", key)
	}
	var stored lease.Config
	if err := json.Unmarshal(resp.Kvs[0].Value, &stored); err != nil {
		return fmt.Errorf("decode overlay configuration %s: %w", key, err)
	}
	if stored != cfg {
		return fmt.Errorf("%s holds %s, this host has %s: %w", key, resp.Kvs[0].Value, b, ErrConfigMismatch)
	}
	return nil
}

// List returns every valid lease and the revision it was read at; keys
// that do not parse are skipped and reported in bad.
func (r *Registry) List(ctx context.Context) (leases []lease.Lease, rev int64, bad []error, err error) {
	resp, err := r.cli.Get(ctx, lease.SubnetsDir(r.prefix), clientv3.WithPrefix())
	if err != nil {
		return nil, 0, nil, fmt.Errorf("list leases under %s: %w", lease.SubnetsDir(r.prefix), err)
	}
	for _, kv := range resp.Kvs {
		l, err := lease.Decode(r.prefix, string(kv.Key), kv.Value)
		if err != nil {
			bad = append(bad, err)
			continue
		}
		leases = append(leases, l)
	}
	return leases, resp.Header.Revision, bad, nil
}

// Claim claims a subnet for the host described by me (PublicIP, VTEP MAC,
// VNI, host name) under the etcd lease id, and returns the claimed lease.
//
// With want set, only that subnet is tried; if another host holds it, the
// claim fails with lease.ErrTaken. Without want, the subnet this host (same
// PublicIP) already holds is taken over (an agent restarted before its old
// etcd lease expired), else the first free subnet is claimed.
//
// A claim is a transaction that writes the key only if it does not exist
// (create_revision == 0; a takeover only if the key is unchanged since it
// was read): the first writer wins. Its outcome is then decided by reading
// the key back, which also settles an ambiguous result (a timeout after the
// write was committed).
// It returns the claimed lease and the revision of the claim's write.
func (r *Registry) Claim(ctx context.Context, cfg lease.Config, me lease.Lease, want netip.Prefix, id clientv3.LeaseID) (lease.Lease, int64, error) {
	var lastErr error
	for attempt := 0; attempt < 16; attempt++ {
		resp, err := r.cli.Get(ctx, lease.SubnetsDir(r.prefix), clientv3.WithPrefix())
		if err != nil {
			return lease.Lease{}, 0, fmt.Errorf("list leases: %w", err)
		}
		taken := map[netip.Prefix]bool{}
		mine := map[netip.Prefix]int64{} // subnets held under this host's PublicIP → mod revision
		for _, kv := range resp.Kvs {
			s, err := lease.ParseKey(r.prefix, string(kv.Key))
			if err != nil {
				continue
			}
			taken[s] = true
			if l, err := lease.Decode(r.prefix, string(kv.Key), kv.Value); err == nil && l.PublicIP == me.PublicIP {
				mine[s] = kv.ModRevision
			}
		}
		target := want
		if !target.IsValid() {
			for s := range mine {
				if !target.IsValid() || s.Addr().Less(target.Addr()) {
					target = s
				}
			}
		}
		modRev, takeover := mine[target]
		if !takeover {
			target, err = lease.Pick(cfg, taken, target)
			if err != nil {
				return lease.Lease{}, 0, fmt.Errorf("claim subnet: %w", err)
			}
		}
		l := me
		l.Subnet = target
		l.BackendType = "vxlan"
		key := lease.Key(r.prefix, target)
		val := l.Encode()
		cond := clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
		if takeover {
			cond = clientv3.Compare(clientv3.ModRevision(key), "=", modRev)
		}
		_, txnErr := r.cli.Txn(ctx).If(cond).Then(clientv3.OpPut(key, val, clientv3.WithLease(id))).Commit()
		got, err := r.cli.Get(ctx, key)
		if err != nil {
			return lease.Lease{}, 0, fmt.Errorf("read back claim of %s: %w", target, errors.Join(txnErr, err))
		}
		if len(got.Kvs) == 1 && string(got.Kvs[0].Value) == val && clientv3.LeaseID(got.Kvs[0].Lease) == id {
			return l, got.Kvs[0].ModRevision, nil
		}
		lastErr = fmt.Errorf("subnet %s: %w", target, lease.ErrTaken)
		if txnErr != nil {
			lastErr = fmt.Errorf("claim subnet %s: %w", target, txnErr)
		}
		if want.IsValid() && txnErr == nil {
			return lease.Lease{}, 0, fmt.Errorf("claim subnet: %w", lastErr)
		}
		if err := ctx.Err(); err != nil {
			return lease.Lease{}, 0, err
		}
	}
	return lease.Lease{}, 0, fmt.Errorf("claim subnet: gave up after 16 attempts: %w", lastErr)
}

// Release deletes the host's lease key if it still holds it (same etcd
// lease), so other hosts withdraw its routes at once.
func (r *Registry) Release(ctx context.Context, s netip.Prefix, id clientv3.LeaseID) error {
	key := lease.Key(r.prefix, s)
	_, err := r.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.LeaseValue(key), "=", id)).
		Then(clientv3.OpDelete(key)).
		Commit()
	if err != nil {
		return fmt.Errorf("release subnet %s: %w", s, err)
	}
	return nil
}

package engine

// The intent journal makes the engine's network operations crash
// consistent. An attachment lives in three places that no single
// transaction covers: its addresses in the address database (ipam.db,
// which Podman may share), its record in containers.db and its kernel
// objects (veth pair, namespace pin, firewall rules and port map
// elements). A command killed between two of those steps used to leave
// an address held by no container, or a container recorded as connected
// whose interface or address does not exist.
//
// So every multi-step operation first writes an intent into the
// containers.db "intents" bucket (container ID, network, namespace, and
// the attachments as soon as they are known) and removes it in the same
// transaction as its last record change. Intents are written and removed
// only while the engine lock is held, and every holder of the lock first
// settles the intents it finds: their owner is dead, since a live one
// would hold the lock. Settling is idempotent (a settle killed midway is
// settled again by the next command):
//
//   - connect and attach (a start's networks) are rolled back: the
//     kernel objects of the intent's attachments are torn down, exactly
//     this container's addresses on the intent's network (all networks
//     for attach) are released, the attachment records are dropped, an
//     engine-owned namespace pin is removed, and a registered namespace
//     left on no network is forgotten. The command did not report
//     success, so nothing the user relies on is lost.
//   - disconnect and detach (a stop's or removal's networks) are rolled
//     forward: they were asked to remove everything, and removing is
//     what settling does. A reload (teardown, then setup again) is
//     redone.
//
// Addresses are only ever released by container ID and network name from
// an intent or from a record the engine owns; an address whose owner
// berth does not know (a Podman container sharing ipam.db) is never
// touched.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/netns"
	"github.com/berthnet/berth/internal/network"
	"github.com/berthnet/berth/internal/runopts"
)

// Operations an intent records.
const (
	opConnect    = "connect"
	opDisconnect = "disconnect"
	opAttach     = "attach"
	opDetach     = "detach"
	opReload     = "reload"
)

var intentBucket = []byte("intents")

// ErrInterrupted: the command was interrupted (SIGINT, SIGTERM) while it
// waited for a lock.
var ErrInterrupted = errors.New("interrupted")

// intent is one unfinished network operation on one container.
type intent struct {
	Op string `json:"op"`
	ID string `json:"id"`
	// Network is the network of a connect or disconnect ("" for attach
	// and detach, which concern every network of the container).
	Network string `json:"network,omitempty"`
	// NetNS is the container's namespace; OwnNetNS: the operation pinned
	// it (attach) and a rollback removes the pin.
	NetNS    string `json:"netns,omitempty"`
	OwnNetNS bool   `json:"own_netns,omitempty"`
	// NewRecord: the operation created the container's record (connect
	// registering a namespace).
	NewRecord bool `json:"new_record,omitempty"`
	// Attachments are the attachments whose kernel objects may exist.
	Attachments []Attachment `json:"attachments,omitempty"`
	// Forwards are rootless uplink forwards to remove (detach).
	Forwards []int     `json:"forwards,omitempty"`
	Since    time.Time `json:"since"`
}

func (in *intent) key() []byte { return []byte(in.ID + "/" + in.Network) }

func putIntent(tx *bolt.Tx, in *intent) error {
	b, err := tx.CreateBucketIfNotExists(intentBucket)
	if err != nil {
		return err
	}
	v, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return b.Put(in.key(), v)
}

func dropIntent(tx *bolt.Tx, in *intent) error {
	if b := tx.Bucket(intentBucket); b != nil {
		return b.Delete(in.key())
	}
	return nil
}

// tx runs fn in one write transaction of containers.db.
func (e *Engine) tx(fn func(tx *bolt.Tx) error) error {
	db, err := e.open(false)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.Update(fn)
}

// journal records in (replacing an intent with the same key).
func (e *Engine) journal(in *intent) error {
	return e.tx(func(tx *bolt.Tx) error { return putIntent(tx, in) })
}

// intents returns the unfinished operations.
func (e *Engine) intents() ([]*intent, error) {
	return readAll[intent](e, intentBucket, "intent")
}

// getRecord and putRecord read and write a container record inside tx
// (nil: no such record).
func getRecord(tx *bolt.Tx, id string) (*Container, error) {
	b := tx.Bucket(bucket)
	if b == nil {
		return nil, nil
	}
	v := b.Get([]byte(id))
	if v == nil {
		return nil, nil
	}
	var c Container
	if err := json.Unmarshal(v, &c); err != nil {
		return nil, fmt.Errorf("container record %s: %w", id, err)
	}
	return &c, nil
}

func putRecord(tx *bolt.Tx, c *Container) error {
	b, err := tx.CreateBucketIfNotExists(bucket)
	if err != nil {
		return err
	}
	v, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return b.Put([]byte(c.Config.ID), v)
}

// engineLock is the engine-wide lock of one process: flock on a file
// under the run root, taken once per process and counted, so an
// operation holding it may call another that takes it.
type engineLock struct {
	mu    sync.Mutex
	depth int
	f     *os.File
}

// LockPath is the engine lock's file. Network operations (connect,
// disconnect, a start's or stop's networks) hold it while their intent
// exists.
func (e *Engine) LockPath() string { return filepath.Join(e.cfg.RunRoot, "locks", "engine") }

// ctx is the context of the command the engine serves.
func (e *Engine) ctx() context.Context {
	if e.cfg.Context != nil {
		return e.cfg.Context
	}
	return context.Background()
}

// lockEngine takes the engine lock, waiting until ctx is done; the first
// holder in this process settles the journal's intents first. unlock is
// never nil, and calling it more than once is harmless.
func (e *Engine) lockEngine(ctx context.Context) (unlock func(), err error) {
	l := &e.elock
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.depth > 0 {
		l.depth++
		return sync.OnceFunc(e.unlockEngine), nil
	}
	f, err := flockCtx(ctx, e.LockPath())
	if err != nil {
		return func() {}, err
	}
	l.f, l.depth = f, 1
	if err := e.repair(context.WithoutCancel(ctx)); err != nil {
		e.log.Warn("repairing interrupted network operations", "error", err)
	}
	return sync.OnceFunc(e.unlockEngine), nil
}

func (e *Engine) unlockEngine() {
	l := &e.elock
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.depth--; l.depth == 0 {
		l.f.Close()
		l.f = nil
	}
}

// flockCtx takes an exclusive flock on path, polling so that a cancelled
// ctx (SIGINT, SIGTERM) ends the wait at once; the polls start a fraction
// of a millisecond apart (the holders are mostly quick) and grow to 20 ms.
func flockCtx(ctx context.Context, path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	step := 250 * time.Microsecond
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("%w while waiting for the lock %s (another berth command holds it): %w", ErrInterrupted, path, context.Cause(ctx))
		case <-time.After(step):
		}
		step = min(2*step, 20*time.Millisecond)
	}
}

// Repair settles the intents of interrupted network operations (see the
// package's journal) under the engine lock. It is cheap when there are
// none, and every command that takes the engine lock runs it first.
func (e *Engine) Repair(ctx context.Context) error {
	ins, err := e.intents()
	if err != nil || len(ins) == 0 {
		return err
	}
	unlock, err := e.lockEngine(ctx) // settles them
	unlock()
	return err
}

// repairIfFree settles the intents unless the engine lock is taken.
func (e *Engine) repairIfFree() {
	now, cancel := context.WithCancel(context.Background())
	cancel() // one try at the lock
	if err := e.Repair(now); err != nil && !errors.Is(err, ErrInterrupted) {
		e.log.Warn("repairing interrupted network operations", "error", err)
	}
}

// repair settles every intent; the caller holds the engine lock.
func (e *Engine) repair(ctx context.Context) error {
	ins, err := e.intents()
	if err != nil {
		return err
	}
	var errs []error
	for _, in := range ins {
		e.log.Warn("settling an interrupted network operation", "operation", in.Op, "container", in.ID, "network", in.Network, "since", in.Since)
		if err := e.settle(ctx, in, false); err != nil {
			errs = append(errs, fmt.Errorf("%s of container %s: %w", in.Op, in.ID, err))
		}
	}
	return errors.Join(errs...)
}

// settle undoes (connect, attach) or completes (disconnect, detach) the
// operation in, then drops the intent. strict: a failed teardown is
// returned, and only the intent is dropped (the records still name what
// may exist, so a retry can clean it); otherwise a failed teardown is
// logged and the records are cleared anyway (after a crash, a wedged
// intent would make every later command fail).
func (e *Engine) settle(ctx context.Context, in *intent, strict bool) error {
	if in.Op == opReload {
		if err := e.reloadOne(ctx, in); err != nil && !errors.Is(err, ErrNoSuchContainer) {
			e.log.Warn("redoing an interrupted reload", "container", in.ID, "error", err)
		}
		return e.tx(func(tx *bolt.Tx) error { return dropIntent(tx, in) })
	}
	if err := e.settleKernel(ctx, in); err != nil {
		if strict {
			return errors.Join(err, e.tx(func(tx *bolt.Tx) error { return dropIntent(tx, in) }))
		}
		e.log.Warn("tearing down after an interrupted operation", "operation", in.Op, "container", in.ID, "error", err)
	}
	if err := e.releaseAddresses(in); err != nil {
		return err
	}
	if in.OwnNetNS && in.NetNS != "" {
		if err := netns.Unpin(in.NetNS); err != nil {
			return err
		}
	}
	return e.tx(func(tx *bolt.Tx) error {
		if err := e.settleRecord(tx, in); err != nil {
			return err
		}
		return dropIntent(tx, in)
	})
}

// settleKernel tears down the kernel objects the intent's attachments may
// have (the teardown tolerates objects that never were created).
func (e *Engine) settleKernel(ctx context.Context, in *intent) error {
	if len(in.Forwards) > 0 && e.cfg.Network != nil {
		removeForwards(e.cfg.Network.RootlessNetNS.API(), in.Forwards)
	}
	if e.cfg.Network == nil {
		return nil
	}
	c, err := e.record(in.ID)
	if errors.Is(err, ErrNoSuchContainer) {
		c, err = &Container{Config: Config{ID: in.ID, Name: network.ShortID(in.ID)}}, nil
	}
	if err != nil {
		return err
	}
	if c.Config.Net.Kind == runopts.ModeSlirp && in.Network == "" {
		return e.detachSlirp(c)
	}
	if c.Config.Net.Kind == runopts.ModePasta && in.Network == "" {
		return e.detachPasta(c)
	}
	if len(in.Attachments) == 0 {
		return nil
	}
	h, err := e.OpenHost()
	if err != nil {
		return err
	}
	defer h.Close()
	return h.TeardownNetavark(ctx, in.NetNS, e.netOptions(c, in.Attachments))
}

// releaseAddresses frees exactly the addresses the intent concerns: the
// container's on its network (connect, disconnect) or on every network
// (attach, detach).
func (e *Engine) releaseAddresses(in *intent) error {
	if e.cfg.Network == nil {
		return nil
	}
	h, err := e.OpenHost()
	if err != nil {
		return err
	}
	defer h.Close()
	if in.Network != "" {
		return h.ReleaseNetavark(in.ID, in.Network)
	}
	return h.ReleaseAllNetavark(in.ID)
}

// settleRecord brings the container's record in line with a settled
// intent.
func (e *Engine) settleRecord(tx *bolt.Tx, in *intent) error {
	c, err := getRecord(tx, in.ID)
	if err != nil || c == nil {
		return err
	}
	switch in.Network {
	case "":
		c.State.Attachments, c.State.Forwards, c.State.Fwd = nil, nil, nil
		if in.Op == opAttach && c.State.NetNS == in.NetNS {
			c.State.NetNS, c.State.OwnNetNS, c.State.Networks = "", false, nil
		}
	default:
		if i := findAttachment(c.State.Attachments, in.Network); i >= 0 {
			c.State.Attachments = append(c.State.Attachments[:i], c.State.Attachments[i+1:]...)
		}
		delete(c.State.Networks, in.Network)
		if in.Op == opDisconnect {
			c.Config.Net.Networks = e.withoutNetwork(c.Config.Net.Networks, in.Network)
		}
	}
	if c.Config.Registered && len(c.State.Attachments) == 0 {
		return tx.Bucket(bucket).Delete([]byte(c.Config.ID))
	}
	return putRecord(tx, c)
}

// withoutNetwork drops the requests for network name.
func (e *Engine) withoutNetwork(reqs []runopts.NetworkRequest, name string) []runopts.NetworkRequest {
	var keep []runopts.NetworkRequest
	for _, r := range reqs {
		if r.Name != name && e.netName(r.Name) != name {
			keep = append(keep, r)
		}
	}
	return keep
}

// Package engine runs containers: it keeps their records (bbolt under the
// storage root: configuration, state and the networks each is attached
// to), creates their network namespaces and attaches them through
// berthnet (addresses from ipam, published ports, rootless uplink
// forwards), writes /etc/hosts and /etc/resolv.conf, generates the OCI
// spec, and starts a monitor process (berth's conmon) that runs runc and
// outlives the command. Stop, kill, exec and remove drive runc directly;
// the state each command reads is reconciled with the monitor's exit file
// and runc, so a killed monitor does not make the engine lie. Network
// namespaces registered with `berth network connect --netns` are records
// too: attached, never run.
//
// Files: engine.go (records), create.go, start.go and lifecycle.go (the
// container's life), runtime.go (runc and the spec), etcfiles.go,
// locks.go, network.go and connect.go (attachments), journal.go (the
// intent journal that makes network operations crash consistent, and the
// engine lock), restart.go (restart policies), health.go (health
// checks), caps.go (the capabilities inspect shows), usermode.go
// (rootless uplink and slirp4netns), pod.go, migrate.go (the CLI's former
// records), volume.go (named volumes) and mounts.go (a container's bind
// mounts, volumes and tmpfs mounts, and the copy-up into new volumes),
// restartcmd.go (the restart command), pause.go, rename.go, cp.go and cpfs.go (copies resolved
// inside a container's root), top.go, stats.go and cgroup.go (a running
// container's processes and resource use), rootlessports.go, events.go
// (the event journal's entries).
package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/berthnet/berth/internal/boltfile"
	"github.com/berthnet/berth/internal/events"
	"github.com/berthnet/berth/internal/network"
	"github.com/berthnet/berth/internal/runopts"
	"github.com/berthnet/berth/internal/usernet"
)

// Container states, as Podman names them.
const (
	StateCreated = "created"
	StateRunning = "running"
	StateExited  = "exited"
	StateStopped = "stopped" // set by stop before the exit is recorded
	StatePaused  = "paused"  // shown for a running container runc froze
	// StateRegistered is the state of a registered namespace (Config.Registered).
	StateRegistered = "registered"
)

// ImageInfo is what the engine needs from an image.
type ImageInfo struct {
	ID, Name     string
	Entrypoint   []string
	Cmd          []string
	Env          []string
	WorkingDir   string
	User         string
	StopSignal   string
	ExposedPorts []string // "80/tcp"
	Volumes      []string // the image's VOLUME paths
	// Healthcheck is the image's HEALTHCHECK.
	Healthcheck *Healthcheck
}

// ImageSource resolves images and provides container root filesystems.
type ImageSource interface {
	Resolve(ref string) (ImageInfo, error)
	// Mount returns a writable root filesystem for the container; it is
	// idempotent.
	Mount(imageID, containerID string) (rootfs string, err error)
	Unmount(containerID string) error
	RemoveRootfs(containerID string) error
}

// Config is a container's configuration, fixed at create.
type Config struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	// Image is the reference given; ImageID the resolved ID; Rootfs a
	// directory given with --rootfs instead of an image.
	Image   string `json:"image,omitempty"`
	ImageID string `json:"image_id,omitempty"`
	Rootfs  string `json:"rootfs,omitempty"`

	Entrypoint  []string          `json:"entrypoint,omitempty"`
	Cmd         []string          `json:"cmd,omitempty"`
	Args        []string          `json:"args"`
	Env         []string          `json:"env,omitempty"`
	WorkingDir  string            `json:"working_dir,omitempty"`
	User        string            `json:"user,omitempty"`
	Terminal    bool              `json:"terminal,omitempty"`
	Stdin       bool              `json:"stdin,omitempty"`
	Hostname    string            `json:"hostname"`
	StopSignal  string            `json:"stop_signal,omitempty"`
	StopTimeout uint              `json:"stop_timeout"`
	Remove      bool              `json:"remove,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	ReadOnly    bool              `json:"read_only,omitempty"`
	// Mounts are the bind mounts, volumes and tmpfs mounts.
	Mounts []runopts.Mount `json:"mounts,omitempty"`

	Net          runopts.NetMode       `json:"net"`
	Ports        []network.PortMapping `json:"ports,omitempty"`
	ExposedPorts []string              `json:"exposed_ports,omitempty"`
	DNS          runopts.DNS           `json:"dns"`
	AddHosts     []runopts.ExtraHost   `json:"add_hosts,omitempty"`
	NoHosts      bool                  `json:"no_hosts,omitempty"`

	// Pod is the pod the container belongs to; Infra marks the pod's
	// infra container.
	Pod   string `json:"pod,omitempty"`
	Infra bool   `json:"infra,omitempty"`
	// PodMembers (on an infra container) are the names of the pod's other
	// containers: they resolve in DNS to the pod's addresses.
	PodMembers []string `json:"pod_members,omitempty"`

	// Registered marks a network namespace registered with `network
	// connect --netns` (Net is ns:PATH): the engine attaches it to
	// networks but does not run it, lists it only among Attached and
	// forgets it when it leaves its last network.
	Registered bool `json:"registered,omitempty"`

	// Runtime: capabilities, privileged mode, limits, sysctls, ulimits,
	// devices, --init.
	Runtime runopts.Runtime `json:"runtime,omitzero"`

	// RestartPolicy is --restart (see restart.go).
	RestartPolicy RestartPolicy `json:"restart_policy,omitzero"`
	// Healthcheck is the health check (see health.go); HealthOnFailure
	// its --health-on-failure action ("" is none).
	Healthcheck     *Healthcheck `json:"healthcheck,omitempty"`
	HealthOnFailure string       `json:"health_on_failure,omitempty"`
	// EmbeddedDNS: the container's resolver is 127.0.0.11, served in its
	// namespace by its monitor (see embeddns.go).
	EmbeddedDNS bool `json:"embedded_dns,omitempty"`
}

// State is a container's runtime state.
type State struct {
	Status     string    `json:"status"`
	Pid        int       `json:"pid,omitempty"`
	MonitorPid int       `json:"monitor_pid,omitempty"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	ExitCode   int       `json:"exit_code"`
	// NetNS is the namespace the container uses while it is set up (a pin
	// under the run root for private namespaces).
	NetNS string `json:"netns,omitempty"`
	// OwnNetNS is true when the engine created NetNS and must remove it.
	OwnNetNS bool `json:"own_netns,omitempty"`
	// Networks is what the networks reported at start.
	Networks map[string]network.StatusBlock `json:"networks,omitempty"`
	// Attachments are the networks the namespace is attached to, as they
	// were set up.
	Attachments []Attachment `json:"attachments,omitempty"`
	// Forwards are the IDs of the container's port forwards on the
	// rootless netns's uplink; Fwd are those forwards (to add them again
	// when the uplink restarted).
	Forwards []int             `json:"forwards,omitempty"`
	Fwd      []usernet.Forward `json:"fwd,omitempty"`
	// Mounted is the root filesystem while it is mounted.
	Mounted string `json:"mounted,omitempty"`
	// Error is why the last start failed.
	Error string `json:"error,omitempty"`
	// Paused is true while runc has the running container frozen.
	Paused bool `json:"paused,omitempty"`
	// StartCount counts starts.
	StartCount int `json:"start_count"`
	// RestartCount counts the restarts by the restart policy since the
	// last start through berth; Restarting is set while the monitor waits
	// to restart the container; StoppedByUser is set by stop and kill
	// through berth, which no restart policy overrides.
	RestartCount  uint `json:"restart_count,omitempty"`
	Restarting    bool `json:"restarting,omitempty"`
	StoppedByUser bool `json:"stopped_by_user,omitempty"`
	// Health is the health checks' state; HealthRestart is set by the
	// restart action of --health-on-failure for the monitor.
	Health        Health `json:"health,omitzero"`
	HealthRestart bool   `json:"health_restart,omitempty"`
}

// Container is one record.
type Container struct {
	Config Config `json:"config"`
	State  State  `json:"state"`
}

// ShortID is the 12-character ID.
func (c *Container) ShortID() string { return network.ShortID(c.Config.ID) }

// Running reports whether the container's process is up (also when
// paused).
func (c *Container) Running() bool { return c.State.Status == StateRunning }

// Status is the state as Podman shows it: paused for a frozen running
// container, exited for a stopped one.
func (c *Container) Status() string {
	switch {
	case c.Running() && c.State.Paused:
		return StatePaused
	case c.State.Status == StateStopped:
		return StateExited
	}
	return c.State.Status
}

// Errors callers branch on.
var (
	ErrNoSuchContainer = errors.New("no such container")
	ErrNameInUse       = errors.New("name is already in use")
	ErrRunning         = errors.New("container state improper")
	ErrNoImages        = errors.New("no image store")
)

// EngineConfig configures an Engine.
type EngineConfig struct {
	// Root keeps records and logs; RunRoot runtime state (namespace pins,
	// runc state, sockets, exit files).
	Root, RunRoot string
	// Runtime is the OCI runtime binary (default /usr/sbin/runc).
	Runtime string
	Images  ImageSource
	// Network attaches containers to their networks; nil: containers
	// cannot use bridge, slirp4netns or pasta networks.
	Network *NetworkConfig
	// MonitorCommand returns the command that runs the monitor of a
	// container (berth's hidden `container monitor` subcommand).
	MonitorCommand func(id string) *exec.Cmd
	// HostsFile and ResolvConf are the host's files (default /etc/hosts,
	// /etc/resolv.conf).
	HostsFile, ResolvConf string
	// Rootless: the engine runs as root of an unprivileged user's
	// namespace: no cgroups, published ports are held by the user-mode
	// network, and a host-network container gets the host's /sys bound.
	Rootless bool
	Logger   *slog.Logger
	Now      func() time.Time
	// Context is the command's: when it is done (SIGINT, SIGTERM), a
	// wait for the engine lock ends with ErrInterrupted and the
	// operation rolls back. Nil: never.
	Context context.Context
	// Events is the event journal (default: the run root's, see
	// events.PathIn).
	Events *events.Journal
}

// Engine manages containers.
type Engine struct {
	cfg   EngineConfig
	log   *slog.Logger
	elock engineLock
	// evlog is the event journal the engine appends to.
	evlog *events.Journal
}

// New returns an Engine.
func New(cfg EngineConfig) (*Engine, error) {
	if cfg.Root == "" || cfg.RunRoot == "" {
		return nil, errors.New("engine: root and run root are required")
	}
	if cfg.Runtime == "" {
		cfg.Runtime = "/usr/sbin/runc"
	}
	if cfg.HostsFile == "" {
		cfg.HostsFile = "/etc/hosts"
	}
	if cfg.ResolvConf == "" {
		cfg.ResolvConf = "/etc/resolv.conf"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	l := cfg.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	if cfg.Events == nil {
		cfg.Events = events.Open(events.PathIn(cfg.RunRoot))
	}
	e := &Engine{cfg: cfg, log: l, evlog: cfg.Events}
	if cfg.Network != nil {
		if err := e.migrateLegacy(cfg.Network.LegacyRecords); err != nil {
			return nil, err
		}
		// Operations an earlier command left unfinished (killed) are
		// settled before this one looks at any record, unless another
		// command holds the engine lock (it settles them).
		e.repairIfFree()
	}
	return e, nil
}

// Runtime returns the OCI runtime binary.
func (e *Engine) Runtime() string { return e.cfg.Runtime }

// RuncRoot is runc's --root.
func (e *Engine) RuncRoot() string { return filepath.Join(e.cfg.RunRoot, "runc") }

// RunDir is the container's runtime directory (bundle, hosts, resolv.conf,
// sockets, exit file).
func (e *Engine) RunDir(id string) string { return filepath.Join(e.cfg.RunRoot, "containers", id) }

// DataDir is the container's persistent directory (logs).
func (e *Engine) DataDir(id string) string { return filepath.Join(e.cfg.Root, "containers", id) }

// LogPath is the container's log file (k8s-file format).
func (e *Engine) LogPath(id string) string { return filepath.Join(e.DataDir(id), "ctr.log") }

// ExitFile is where the monitor records the exit code.
func (e *Engine) ExitFile(id string) string { return filepath.Join(e.RunDir(id), "exit") }

// AttachSocket is the monitor's attach socket.
func (e *Engine) AttachSocket(id string) string { return filepath.Join(e.RunDir(id), "attach") }

// ResizeSocket is where the monitor of a container with a terminal
// takes size changes (see ResizeTerminal).
func (e *Engine) ResizeSocket(id string) string { return filepath.Join(e.RunDir(id), "resize") }

// NetNSPath is where a private namespace is pinned.
func (e *Engine) NetNSPath(id string) string {
	return filepath.Join(e.cfg.RunRoot, "netns", "berth-"+network.ShortID(id))
}

func (e *Engine) dbPath() string { return filepath.Join(e.cfg.Root, "containers.db") }

var bucket = []byte("containers")

func (e *Engine) open(readOnly bool) (*bolt.DB, error) {
	if readOnly {
		if st, err := os.Stat(e.dbPath()); errors.Is(err, os.ErrNotExist) || (err == nil && st.Size() == 0) { // empty: still being created (bbolt must not initialise it read-only)
			return nil, nil
		}
	} else if err := os.MkdirAll(e.cfg.Root, 0o700); err != nil {
		return nil, fmt.Errorf("create storage root: %w", err)
	}
	db, err := boltfile.Open(e.dbPath(), 0o600, &bolt.Options{Timeout: time.Minute, ReadOnly: readOnly})
	if err != nil {
		return nil, fmt.Errorf("open container records %s: %w", e.dbPath(), err)
	}
	return db, nil
}

// list returns the stored records by creation, without reconciling.
func (e *Engine) list() ([]*Container, error) {
	out, err := readAll[Container](e, bucket, "container")
	sort.Slice(out, func(i, j int) bool { return out[i].Config.Created.Before(out[j].Config.Created) })
	return out, err
}

// readAll decodes every record of a bucket (none when the database does
// not exist yet).
func readAll[T any](e *Engine, bkt []byte, what string) ([]*T, error) {
	db, err := e.open(true)
	if err != nil || db == nil {
		return nil, err
	}
	defer db.Close()
	var out []*T
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bkt)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var r T
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("%s record %s: %w", what, k, err)
			}
			out = append(out, &r)
			return nil
		})
	})
	return out, err
}

// MatchRef finds the item whose name or ID is ref, else the one whose ID
// starts with ref; ambiguous is true when several IDs do.
func MatchRef[T any](all []T, ref string, id, name func(T) string) (found T, ok, ambiguous bool) {
	for _, x := range all {
		if name(x) == ref || id(x) == ref {
			return x, true, false
		}
	}
	for _, x := range all {
		if ref != "" && strings.HasPrefix(id(x), ref) {
			if ok {
				return found, false, true
			}
			found, ok = x, true
		}
	}
	return found, ok, false
}

// update runs fn on the container bucket in one write transaction.
func (e *Engine) update(fn func(b *bolt.Bucket) error) error {
	db, err := e.open(false)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucket)
		if err != nil {
			return err
		}
		return fn(b)
	})
}

// put stores c; when isNew the name must be free.
func (e *Engine) put(c *Container, isNew bool) error {
	return e.update(func(b *bolt.Bucket) error {
		if isNew {
			if err := checkNameFree(b.Tx(), c); err != nil {
				return err
			}
			if err := checkVolumesExist(b.Tx(), c); err != nil {
				return err
			}
		} else if b.Get([]byte(c.Config.ID)) == nil {
			return fmt.Errorf("container %s: %w", c.Config.ID, ErrNoSuchContainer)
		}
		v, err := json.Marshal(c)
		if err != nil {
			return err
		}
		return b.Put([]byte(c.Config.ID), v)
	})
}

// checkNameFree fails when a record other than c has c's name.
func checkNameFree(tx *bolt.Tx, c *Container) error {
	b := tx.Bucket(bucket)
	if b == nil {
		return nil
	}
	return b.ForEach(func(k, v []byte) error {
		var o Container
		if json.Unmarshal(v, &o) == nil && o.Config.Name == c.Config.Name && o.Config.ID != c.Config.ID {
			return fmt.Errorf("the container name %q is already in use by %s. You have to remove that container to be able to reuse that name: %w", c.Config.Name, o.Config.ID, ErrNameInUse)
		}
		return nil
	})
}

// modify applies fn to the stored record of id in one transaction.
func (e *Engine) modify(id string, fn func(c *Container) error) (*Container, error) {
	var out Container
	err := e.update(func(b *bolt.Bucket) error {
		v := b.Get([]byte(id))
		if v == nil {
			return fmt.Errorf("container %s: %w", id, ErrNoSuchContainer)
		}
		if err := json.Unmarshal(v, &out); err != nil {
			return err
		}
		if err := fn(&out); err != nil {
			return err
		}
		nv, err := json.Marshal(&out)
		if err != nil {
			return err
		}
		return b.Put([]byte(id), nv)
	})
	return &out, err
}

func (e *Engine) delete(id string) error {
	db, err := e.open(false)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		if b == nil {
			return nil
		}
		return b.Delete([]byte(id))
	})
}

// Lookup finds a container by name, full ID or unique ID prefix.
func Lookup(all []*Container, ref string) (*Container, error) {
	c, ok, ambiguous := MatchRef(all, ref, func(c *Container) string { return c.Config.ID }, func(c *Container) string { return c.Config.Name })
	switch {
	case ambiguous:
		return nil, fmt.Errorf("more than one result for container ID %s", ref)
	case !ok:
		return nil, fmt.Errorf("no container with name or ID %q found: %w", ref, ErrNoSuchContainer)
	}
	return c, nil
}

// List returns every container with its state reconciled (registered
// namespaces are no containers the engine runs: see Attached).
func (e *Engine) List() ([]*Container, error) {
	all, err := e.list()
	if err != nil {
		return nil, err
	}
	var out []*Container
	for _, c := range all {
		if c.Config.Registered {
			continue
		}
		if c.State.Status == StateRunning || c.State.Status == StateStopped || c.State.Restarting {
			if r, err := e.reconcile(c.Config.ID); err == nil {
				c = r
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// Get returns the container ref names, reconciled.
func (e *Engine) Get(ref string) (*Container, error) {
	all, err := e.List()
	if err != nil {
		return nil, err
	}
	return Lookup(all, ref)
}

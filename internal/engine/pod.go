package engine

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/berthnet/berth/internal/network"
	"github.com/berthnet/berth/internal/rollback"
	"github.com/berthnet/berth/internal/runopts"
)

// Pod states, as Podman names them.
const (
	PodCreated  = "Created"
	PodRunning  = "Running"
	PodDegraded = "Degraded"
	PodExited   = "Exited"
)

// ErrNoSuchPod: no pod has that name or ID.
var ErrNoSuchPod = errors.New("no such pod")

// Pod is a group of containers sharing the network, IPC and UTS
// namespaces of an infra container (catatonit -P), which owns them.
type Pod struct {
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	Created  time.Time         `json:"created"`
	InfraID  string            `json:"infra_id"`
	Hostname string            `json:"hostname"`
	Labels   map[string]string `json:"labels,omitempty"`
}

// PodOptions are the options of `berth pod create`; the network options
// belong to the pod and its infra container.
type PodOptions struct {
	Name, Hostname string
	Labels         map[string]string
	Net            runopts.NetMode
	Ports          []network.PortMapping
	DNS            runopts.DNS
	AddHosts       []runopts.ExtraHost
	NoHosts        bool
	// Pause is the infra process (a static binary; default
	// /usr/bin/catatonit, run as `catatonit -P`).
	Pause string
}

var podBucket = []byte("pods")

// CreatePod creates a pod and its infra container (not started).
func (e *Engine) CreatePod(o PodOptions) (p *Pod, err error) {
	if p, err = e.newPod(o); err != nil {
		return nil, err
	}
	var rb rollback.Stack
	defer rb.OnError(&err)
	// The infra container's root filesystem holds only the pause binary.
	rootfs := filepath.Join(e.cfg.Root, "pods", p.ID, "rootfs")
	rb.Defer(func() { os.RemoveAll(filepath.Dir(rootfs)) })
	if err := os.MkdirAll(rootfs, 0o755); err != nil {
		return nil, err
	}
	pause := cmp.Or(o.Pause, "/usr/bin/catatonit")
	if err := copyFile(pause, filepath.Join(rootfs, "catatonit")); err != nil {
		return nil, fmt.Errorf("infra process %s: %w", pause, err)
	}
	// The pod's name resolves on its networks: an alias of the infra.
	for i := range o.Net.Networks {
		o.Net.Networks[i].Aliases = append(o.Net.Networks[i].Aliases, p.Name)
	}
	c, _, err := e.Create(CreateOptions{
		Name: network.ShortID(p.ID) + "-infra", Rootfs: rootfs, Args: []string{"/catatonit", "-P"},
		Hostname: p.Hostname, Net: o.Net, Ports: o.Ports, DNS: o.DNS, AddHosts: o.AddHosts, NoHosts: o.NoHosts,
		infraOf: p.ID,
	})
	if err != nil {
		return nil, err
	}
	rb.Defer(func() { _ = e.removeContainer(c, true, true, false) })
	p.InfraID = c.Config.ID
	if err := e.putPod(p); err != nil {
		return nil, err
	}
	e.PodEvent("create", p)
	return p, nil
}

// newPod is the record of a new pod, with a free random name when none is
// given.
func (e *Engine) newPod(o PodOptions) (*Pod, error) {
	p := &Pod{ID: randomID(), Name: o.Name, Created: e.cfg.Now().UTC(), Hostname: o.Hostname, Labels: o.Labels}
	pods, err := e.Pods()
	if err != nil {
		return nil, err
	}
	taken := func(n string) bool {
		for _, q := range pods {
			if q.Name == n {
				return true
			}
		}
		return false
	}
	if p.Name == "" {
		p.Name = freeName(taken)
	}
	p.Hostname = cmp.Or(p.Hostname, p.Name)
	if taken(p.Name) {
		return nil, fmt.Errorf("adding pod to state: name %q is in use: pod already exists", p.Name)
	}
	return p, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func (e *Engine) putPod(p *Pod) error {
	db, err := e.open(false)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(podBucket)
		if err != nil {
			return err
		}
		v, err := json.Marshal(p)
		if err != nil {
			return err
		}
		return b.Put([]byte(p.ID), v)
	})
}

func (e *Engine) deletePod(id string) error {
	db, err := e.open(false)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.Update(func(tx *bolt.Tx) error {
		if b := tx.Bucket(podBucket); b != nil {
			return b.Delete([]byte(id))
		}
		return nil
	})
}

// Pods returns every pod by creation time.
func (e *Engine) Pods() ([]*Pod, error) {
	out, err := readAll[Pod](e, podBucket, "pod")
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, err
}

// GetPod finds a pod by name, ID or unique ID prefix.
func (e *Engine) GetPod(ref string) (*Pod, error) {
	pods, err := e.Pods()
	if err != nil {
		return nil, err
	}
	p, ok, ambiguous := MatchRef(pods, ref, func(p *Pod) string { return p.ID }, func(p *Pod) string { return p.Name })
	switch {
	case ambiguous:
		return nil, fmt.Errorf("more than one result for pod ID %s", ref)
	case !ok:
		return nil, fmt.Errorf("no pod with name or ID %s found: %w", ref, ErrNoSuchPod)
	}
	return p, nil
}

// PodContainers returns the pod's infra container and its members.
func (e *Engine) PodContainers(p *Pod) (infra *Container, members []*Container, err error) {
	all, err := e.List()
	if err != nil {
		return nil, nil, err
	}
	for _, c := range all {
		switch {
		case c.Config.ID == p.InfraID:
			infra = c
		case c.Config.Pod == p.ID:
			members = append(members, c)
		}
	}
	return infra, members, nil
}

// PodStatus is Podman's pod status from its containers.
func PodStatus(infra *Container, members []*Container) string {
	all := append([]*Container{infra}, members...)
	running, created := 0, 0
	for _, c := range all {
		if c == nil {
			continue
		}
		if c.Running() {
			running++
		}
		if c.State.Status == StateCreated {
			created++
		}
	}
	switch {
	case running == len(all):
		return PodRunning
	case running > 0:
		return PodDegraded
	case created == len(all):
		return PodCreated
	}
	return PodExited
}

// StartPod starts the infra container, then the members.
func (e *Engine) StartPod(ref string) (*Pod, error) {
	p, err := e.GetPod(ref)
	if err != nil {
		return nil, err
	}
	if _, err := e.Start(p.InfraID, StartOptions{}); err != nil {
		return nil, fmt.Errorf("start the infra container of pod %s: %w", p.Name, err)
	}
	_, members, err := e.PodContainers(p)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, c := range members {
		if _, err := e.Start(c.Config.ID, StartOptions{}); err != nil {
			errs = append(errs, fmt.Errorf("start %s: %w", c.Config.Name, err))
		}
	}
	e.PodEvent("start", p)
	return p, errors.Join(errs...)
}

// StopPod stops the members, then the infra container.
func (e *Engine) StopPod(ref string, timeout *uint) (*Pod, error) {
	p, err := e.GetPod(ref)
	if err != nil {
		return nil, err
	}
	_, members, err := e.PodContainers(p)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, c := range members {
		if _, err := e.Stop(c.Config.ID, timeout); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := e.Stop(p.InfraID, timeout); err != nil {
		errs = append(errs, err)
	}
	e.PodEvent("stop", p)
	return p, errors.Join(errs...)
}

// RemovePod removes the members, the infra container and the pod; force
// stops running containers first.
func (e *Engine) RemovePod(ref string, force bool) (*Pod, error) {
	p, err := e.GetPod(ref)
	if err != nil {
		return nil, err
	}
	infra, members, err := e.PodContainers(p)
	if err != nil {
		return nil, err
	}
	if !force {
		for _, c := range append(members, infra) {
			if c != nil && c.Running() {
				return nil, fmt.Errorf("pod %s has containers that are not ready to be removed: cannot remove container %s as it is running: %w", p.ID, c.Config.ID, ErrRunning)
			}
		}
	}
	for _, c := range members {
		if err := e.removeContainer(c, force, false, false); err != nil && !errors.Is(err, ErrNoSuchContainer) {
			return nil, err
		}
	}
	if infra != nil {
		if err := e.removeContainer(infra, force, true, false); err != nil && !errors.Is(err, ErrNoSuchContainer) {
			return nil, err
		}
	}
	if err := e.deletePod(p.ID); err != nil {
		return nil, err
	}
	e.PodEvent("remove", p)
	return p, os.RemoveAll(filepath.Join(e.cfg.Root, "pods", p.ID))
}

// podMembersChanged records the names of a pod's member containers on its
// infra container, which answers for them in DNS (Podman 4.3.1 answers
// NXDOMAIN), and updates the DNS entries of a running infra. Failures are
// logged: the member itself is fine.
func (e *Engine) podMembersChanged(podID string) {
	p, err := e.GetPod(podID)
	if err != nil {
		return
	}
	all, err := e.list()
	if err != nil {
		e.log.Warn("pod member names", "pod", p.Name, "error", err)
		return
	}
	var names []string
	for _, c := range all {
		if c.Config.Pod == p.ID && !c.Config.Infra {
			names = append(names, c.Config.Name)
		}
	}
	sort.Strings(names)
	infra, err := e.modify(p.InfraID, func(r *Container) error {
		r.Config.PodMembers = names
		return nil
	})
	if err != nil {
		e.log.Warn("pod member names", "pod", p.Name, "error", err)
		return
	}
	if infra.State.NetNS != "" && len(infra.State.Networks) > 0 {
		if err := e.renameDNS(infra); err != nil {
			e.log.Warn("pod member names in DNS", "pod", p.Name, "error", err)
		}
	}
}

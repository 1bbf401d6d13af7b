package engine

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/berthnet/berth/internal/netstore"
	"github.com/berthnet/berth/internal/network"
	"github.com/berthnet/berth/internal/runopts"
)

// Network connect, disconnect and reload. Besides its own containers the
// engine attaches network namespaces registered with `berth network
// connect --netns PATH NET NAME` (or NET ns:PATH): records marked
// Registered, which it never runs and forgets when they leave their last
// network.

// ConnectRequest is one network a container joins.
type ConnectRequest struct {
	// Network is the network's name or ID.
	Network string
	// NetNS registers the container as the namespace at this path when
	// no record has its name.
	NetNS   string
	Aliases []string
	IPs     []netip.Addr
	MAC     string
	// GwPriority orders the container's default routes (see
	// runopts.NetworkRequest).
	GwPriority int
}

// Connect attaches a container to one more network: a running engine
// container or registered namespace at once, a created or stopped engine
// container at its next start.
func (e *Engine) Connect(ctx context.Context, ref string, r ConnectRequest) error {
	if err := e.connect(ctx, ref, r); err != nil {
		return err
	}
	c, _ := e.Get(ref)
	e.attachEvent("connect", c, r.Network)
	return nil
}

// attachEvent records a network connect or disconnect of the container
// c (not of a registered namespace).
func (e *Engine) attachEvent(action string, c *Container, netRef string) {
	if c == nil || c.Config.Registered {
		return
	}
	id, name := netRef, netRef
	if n, err := e.networkOf(netRef); err == nil {
		id, name = n.ID, n.Name
	}
	e.NetworkEvent(action, id, name, c)
}

func (e *Engine) connect(ctx context.Context, ref string, r ConnectRequest) error {
	n, err := e.networkOf(r.Network)
	if err != nil {
		return err
	}
	if err := checkNetwork(n, r.IPs); err != nil {
		return err
	}
	c, isNew, err := e.connectTarget(ref, r.NetNS)
	if err != nil {
		return err
	}
	if !c.Config.Registered {
		if c.Config.Net.Kind != runopts.ModeBridge {
			return fmt.Errorf("container %s uses network mode %s: only containers on bridge networks can be connected", c.Config.Name, c.Config.Net.Kind)
		}
		if e.configured(c, n.Name) {
			return fmt.Errorf("container %s is already connected to network %q: %w", c.Config.ID, n.Name, ErrAlreadyConnected)
		}
		if !c.Running() {
			return e.recordNetwork(c.Config.ID, runopts.NetworkRequest{Name: n.Name, Aliases: r.Aliases, MAC: r.MAC, IPs: r.IPs}, true)
		}
	}
	if findAttachment(c.State.Attachments, n.Name) >= 0 {
		return fmt.Errorf("container %s is already connected to network %q: %w", c.Config.ID, n.Name, ErrAlreadyConnected)
	}
	return e.connectNow(ctx, c, isNew, n, r)
}

// connectTarget finds the record ref names, or a new registered namespace
// when a namespace path is given (isNew: not stored yet).
func (e *Engine) connectTarget(ref, nsPath string) (c *Container, isNew bool, err error) {
	all, err := e.list()
	if err != nil {
		return nil, false, err
	}
	if nsPath != "" {
		if nsPath, err = filepath.Abs(nsPath); err != nil {
			return nil, false, err
		}
	}
	if p, ok := strings.CutPrefix(ref, "ns:"); ok {
		p, _ = filepath.Abs(p)
		if nsPath != "" && nsPath != p {
			return nil, false, fmt.Errorf("--netns %s and %s name different namespaces", nsPath, ref)
		}
		nsPath, ref = p, filepath.Base(p)
		if c, err := lookupAttachable(all, "ns:"+p); err == nil {
			return c, false, nil
		}
	}
	if nsPath == "" {
		c, err := Lookup(all, ref)
		if errors.Is(err, ErrNoSuchContainer) {
			err = fmt.Errorf("%w (register a network namespace with --netns PATH or give ns:PATH)", err)
		}
		if err == nil && !c.Config.Registered {
			c, err = e.reconcile(c.Config.ID)
		}
		return c, false, err
	}
	// With a namespace path only an exact name or ID is the same container
	// (an ID prefix could be a new container's name).
	for _, c := range all {
		if c.Config.Name == ref || c.Config.ID == ref {
			if c.State.NetNS != nsPath {
				return nil, false, fmt.Errorf("container %s is registered with namespace %s, not %s", c.Config.Name, c.State.NetNS, nsPath)
			}
			return c, false, nil
		}
	}
	if !ValidName(ref) {
		return nil, false, fmt.Errorf("container name %q invalid: names must match [a-zA-Z0-9][a-zA-Z0-9_.-]*", ref)
	}
	if _, err := os.Stat(nsPath); err != nil {
		return nil, false, fmt.Errorf("--netns %s: %w", nsPath, err)
	}
	return registeredNamespace(randomID(), ref, nsPath, e.cfg.Now().UTC()), true, nil
}

// registeredNamespace is the record of a namespace berth attaches but
// does not run.
func registeredNamespace(id, name, nsPath string, created time.Time) *Container {
	return &Container{
		Config: Config{ID: id, Name: name, Created: created, Registered: true, Net: runopts.NetMode{Kind: runopts.ModeNS, Target: nsPath}},
		State:  State{Status: StateRegistered, NetNS: nsPath},
	}
}

// configured reports whether engine container c is configured with
// network name.
func (e *Engine) configured(c *Container, name string) bool {
	for _, r := range c.Config.Net.Networks {
		if e.netName(r.Name) == name {
			return true
		}
	}
	return false
}

// netName resolves a configured network reference ("" is the default).
func (e *Engine) netName(ref string) string {
	if n, err := e.networkOf(ref); err == nil {
		return n.Name
	}
	return ref
}

// recordNetwork adds (or removes) a network in an engine container's
// configuration (the networks it joins at its next start).
func (e *Engine) recordNetwork(id string, req runopts.NetworkRequest, add bool) error {
	_, err := e.modify(id, func(c *Container) error {
		var keep []runopts.NetworkRequest
		for _, r := range c.Config.Net.Networks {
			if e.netName(r.Name) != req.Name {
				keep = append(keep, r)
			}
		}
		if add {
			keep = append(keep, req)
		}
		c.Config.Net.Networks = keep
		return nil
	})
	return err
}

// connectNow attaches the namespace of c to n now, under the engine lock
// and journaled (see journal.go): an interrupted connect is rolled back.
func (e *Engine) connectNow(ctx context.Context, c *Container, isNew bool, n network.Network, r ConnectRequest) error {
	unlock, err := e.lockEngine(ctx)
	defer unlock()
	if err != nil {
		return err
	}
	in := &intent{Op: opConnect, ID: c.Config.ID, Network: n.Name, NetNS: c.State.NetNS, NewRecord: isNew, Since: e.cfg.Now().UTC()}
	if err := e.beginConnect(c, isNew, in); err != nil {
		return err
	}
	res, err := e.connectSteps(ctx, c, n, r, in)
	if err != nil {
		if rerr := e.settle(context.WithoutCancel(ctx), in, false); rerr != nil {
			err = errors.Join(err, fmt.Errorf("roll back: %w", rerr))
		}
		return err
	}
	unlock()
	if !c.Config.Registered {
		return e.NetworksChanged(c.Config.ID, res, nil)
	}
	return nil
}

// beginConnect journals the connect of c, storing the record of a new
// registered namespace in the same transaction; an attachment to the
// same network that appeared meanwhile makes it fail.
func (e *Engine) beginConnect(c *Container, isNew bool, in *intent) error {
	return e.tx(func(tx *bolt.Tx) error {
		cur, err := getRecord(tx, c.Config.ID)
		if err != nil {
			return err
		}
		switch {
		case isNew && cur != nil:
			return fmt.Errorf("container %s: %w", c.Config.ID, ErrNameInUse)
		case isNew:
			if err := checkNameFree(tx, c); err != nil {
				return err
			}
			if err := putRecord(tx, c); err != nil {
				return err
			}
		case cur == nil:
			return fmt.Errorf("container %s: %w", c.Config.ID, ErrNoSuchContainer)
		case findAttachment(cur.State.Attachments, in.Network) >= 0:
			return fmt.Errorf("container %s is already connected to network %q: %w", cur.Config.ID, in.Network, ErrAlreadyConnected)
		}
		return putIntent(tx, in)
	})
}

// connectSteps allocates, records and sets up the attachment, then
// records the connect and drops the intent in one transaction.
func (e *Engine) connectSteps(ctx context.Context, c *Container, n network.Network, r ConnectRequest, in *intent) (map[string]network.StatusBlock, error) {
	h, err := e.OpenHost()
	if err != nil {
		return nil, err
	}
	defer h.Close()
	att, err := allocateOne(h, c.Config.ID, n, runopts.NetworkRequest{IPs: r.IPs, Aliases: r.Aliases, MAC: r.MAC, GwPriority: r.GwPriority})
	if err != nil {
		return nil, err
	}
	// The attachment is recorded (and journaled) before any kernel
	// object exists: this reserves the interface name.
	if err := e.tx(func(tx *bolt.Tx) error {
		cur, err := getRecord(tx, c.Config.ID)
		if err != nil || cur == nil {
			return cmpErr(err, fmt.Errorf("container %s: %w", c.Config.ID, ErrNoSuchContainer))
		}
		att.Opts.InterfaceName = nextInterface(cur.State.Attachments)
		cur.State.Attachments = append(cur.State.Attachments, att)
		in.Attachments = []Attachment{att}
		*c = *cur
		return errors.Join(putRecord(tx, cur), putIntent(tx, in))
	}); err != nil {
		return nil, err
	}
	res, err := h.SetupNetavark(ctx, c.State.NetNS, e.netOptions(c, []Attachment{att}))
	if err != nil {
		return nil, fmt.Errorf("connect container %s to network %s: %w", c.Config.Name, n.Name, err)
	}
	if err := e.tx(func(tx *bolt.Tx) error { return e.finishConnect(tx, c, att, r, res, in) }); err != nil {
		return nil, err
	}
	e.log.Info("connected", "container", c.Config.Name, "network", n.Name, "interface", att.Opts.InterfaceName, "addresses", att.Opts.StaticIPs)
	return res, nil
}

// finishConnect records the MAC the kernel chose and the network in the
// container's configuration, and drops the intent.
func (e *Engine) finishConnect(tx *bolt.Tx, c *Container, att Attachment, r ConnectRequest, res map[string]network.StatusBlock, in *intent) error {
	cur, err := getRecord(tx, c.Config.ID)
	if err != nil || cur == nil {
		return cmpErr(err, fmt.Errorf("container %s: %w", c.Config.ID, ErrNoSuchContainer))
	}
	if i := findAttachment(cur.State.Attachments, att.Network.Name); i >= 0 && att.Opts.StaticMAC == "" {
		atts := []Attachment{att}
		keepMACs(atts, res)
		cur.State.Attachments[i].Opts.StaticMAC = atts[0].Opts.StaticMAC
	}
	if !cur.Config.Registered {
		req := runopts.NetworkRequest{Name: att.Network.Name, Aliases: r.Aliases, MAC: r.MAC, IPs: r.IPs, Interface: att.Opts.InterfaceName, GwPriority: r.GwPriority}
		cur.Config.Net.Networks = append(e.withoutNetwork(cur.Config.Net.Networks, att.Network.Name), req)
	}
	if err := putRecord(tx, cur); err != nil {
		return err
	}
	return dropIntent(tx, in)
}

// cmpErr is err, else alt.
func cmpErr(err, alt error) error {
	if err != nil {
		return err
	}
	return alt
}

// Disconnect detaches a container from one network; force forgets the
// attachment even if tearing it down fails. A created or stopped engine
// container only changes its configuration.
func (e *Engine) Disconnect(ctx context.Context, ref, netRef string, force bool) error {
	c, _ := e.Get(ref)
	if err := e.disconnect(ctx, ref, netRef, force); err != nil {
		return err
	}
	e.attachEvent("disconnect", c, netRef)
	return nil
}

func (e *Engine) disconnect(ctx context.Context, ref, netRef string, force bool) error {
	all, err := e.list()
	if err != nil {
		return err
	}
	c, err := lookupAttachable(all, ref)
	if err != nil {
		return err
	}
	if !c.Config.Registered {
		if c, err = e.reconcile(c.Config.ID); err != nil {
			return err
		}
	}
	netName, err := e.disconnectName(c, netRef)
	if err != nil {
		return err
	}
	i := findAttachment(c.State.Attachments, netName)
	if !c.Config.Registered && (i < 0 || !c.Running()) {
		// Not attached now: only the configuration changes.
		if !e.configured(c, netName) {
			return fmt.Errorf("container %s is not connected to network %s", ref, netName)
		}
		return e.recordNetwork(c.Config.ID, runopts.NetworkRequest{Name: netName}, false)
	}
	if i < 0 {
		return fmt.Errorf("container %s is not connected to network %s", ref, netName)
	}
	if err := e.disconnectNow(ctx, c.Config.ID, netName, force); err != nil {
		return err
	}
	if !c.Config.Registered {
		return e.NetworksChanged(c.Config.ID, nil, nil)
	}
	return nil
}

// disconnectNow tears one attachment down, frees its addresses and
// forgets it, under the engine lock and journaled: an interrupted
// disconnect is completed by the next command. force: the attachment is
// forgotten even if the teardown fails.
func (e *Engine) disconnectNow(ctx context.Context, id, netName string, force bool) error {
	unlock, err := e.lockEngine(ctx)
	defer unlock()
	if err != nil {
		return err
	}
	c, err := e.record(id)
	if err != nil {
		return err
	}
	i := findAttachment(c.State.Attachments, netName)
	if i < 0 {
		return fmt.Errorf("container %s is not connected to network %s", c.Config.Name, netName)
	}
	in := &intent{Op: opDisconnect, ID: id, Network: netName, NetNS: c.State.NetNS, Attachments: c.State.Attachments[i : i+1], Since: e.cfg.Now().UTC()}
	if err := e.journal(in); err != nil {
		return err
	}
	if err := e.settle(context.WithoutCancel(ctx), in, !force); err != nil {
		return fmt.Errorf("disconnect container %s from network %s: %w", c.Config.Name, netName, err)
	}
	return nil
}

// disconnectName resolves the network of a disconnect: a configured
// network's name, or the name of an attachment whose network is gone.
func (e *Engine) disconnectName(c *Container, netRef string) (string, error) {
	n, err := e.networkOf(netRef)
	switch {
	case err == nil:
		return n.Name, nil
	case errors.Is(err, netstore.ErrNotFound) && findAttachment(c.State.Attachments, netRef) >= 0:
		return netRef, nil
	}
	return "", err
}

// Reload tears down and sets up again the attachments of the containers
// refs name (all: every attached one; latest: the newest), with the same
// interfaces, addresses and MACs, and returns the IDs it reloaded.
func (e *Engine) Reload(ctx context.Context, refs []string, all, latest bool) ([]string, error) {
	unlock, err := e.lockEngine(ctx)
	defer unlock()
	if err != nil {
		return nil, err
	}
	attached, err := e.Attached()
	if err != nil {
		return nil, err
	}
	sel, err := selectReload(attached, refs, all, latest)
	if err != nil {
		return nil, err
	}
	e.restoreFirewall(ctx)
	var ids []string
	var errs []error
	for _, c := range sel {
		// Journaled: a reload killed between its teardown and its setup
		// is redone by the next command.
		in := &intent{Op: opReload, ID: c.Config.ID, NetNS: c.State.NetNS, Attachments: c.State.Attachments, Since: e.cfg.Now().UTC()}
		if err := e.journal(in); err != nil {
			return ids, errors.Join(append(errs, err)...)
		}
		if err := e.reloadOne(ctx, in); err != nil {
			errs = append(errs, fmt.Errorf("reload container %s: %w", c.Config.Name, err))
		} else {
			ids = append(ids, c.Config.ID)
		}
		if err := e.tx(func(tx *bolt.Tx) error { return dropIntent(tx, in) }); err != nil {
			errs = append(errs, err)
		}
	}
	return ids, errors.Join(errs...)
}

// restoreFirewall restores the firewall rules of every container from
// berth's records before a reload redoes the selected ones: the user asked
// for the repair, so the per-container steps find the rules whole and need
// not warn that they were damaged.
func (e *Engine) restoreFirewall(ctx context.Context) {
	h, err := e.OpenHost()
	if err != nil {
		return // reloadOne reports it
	}
	defer h.Close()
	if _, err := h.ReloadFirewall(ctx); err != nil {
		e.log.Info("restoring the firewall rules of every container before reload", "error", err)
	}
}

// reloadOne tears down and sets up again the attachments of a reload
// intent.
func (e *Engine) reloadOne(ctx context.Context, in *intent) error {
	c, err := e.record(in.ID)
	if err != nil {
		return err
	}
	h, err := e.OpenHost()
	if err != nil {
		return err
	}
	defer h.Close()
	o := e.netOptions(c, in.Attachments)
	if err := h.TeardownNetavark(ctx, in.NetNS, o); err != nil {
		e.log.Info("tearing down network namespace configuration before reload", "container", c.Config.Name, "error", err)
	}
	_, err = h.SetupNetavark(ctx, in.NetNS, o)
	return err
}

func selectReload(attached []*Container, refs []string, all, latest bool) ([]*Container, error) {
	switch {
	case all:
		return attached, nil
	case latest:
		var sel []*Container
		for _, c := range attached {
			if len(sel) == 0 || c.Config.Created.After(sel[0].Config.Created) {
				sel = []*Container{c}
			}
		}
		return sel, nil
	}
	var sel []*Container
	for _, a := range refs {
		c, err := lookupAttachable(attached, a)
		if err != nil {
			return nil, err
		}
		sel = append(sel, c)
	}
	return sel, nil
}

// DetachRegistered detaches every registered namespace from its networks
// and forgets it (system reset).
func (e *Engine) DetachRegistered(ctx context.Context) []error {
	attached, err := e.Attached()
	if err != nil {
		return []error{err}
	}
	var errs []error
	for _, c := range attached {
		if !c.Config.Registered {
			continue
		}
		if err := e.detach(c); err != nil {
			errs = append(errs, fmt.Errorf("detach container %s: %w", c.Config.Name, err))
			continue
		}
		if err := e.removeIfDone(c.Config.ID); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// ValidName reports whether s is a valid container name (Podman's rule).
func ValidName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if i > 0 {
			ok = ok || r == '_' || r == '.' || r == '-'
		}
		if !ok {
			return false
		}
	}
	return true
}

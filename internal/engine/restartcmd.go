package engine

import (
	"fmt"
	"slices"

	"github.com/berthnet/berth/internal/runopts"
)

// Restart stops a running container (timeout as for Stop) and starts it
// again; a container that is not running is started. The container keeps
// its addresses and MACs when they are still free.
func (e *Engine) Restart(ref string, timeout *uint) (*Container, error) {
	c, err := e.Get(ref)
	if err != nil {
		return nil, err
	}
	id := c.Config.ID
	if c.State.Paused {
		return nil, fmt.Errorf("cannot restart paused container %s: %w", id, ErrRunning)
	}
	pinned := keepAddresses(c.Config.Net.Networks, c.State.Attachments)
	if c.Running() {
		if _, err := e.Stop(id, timeout); err != nil {
			return nil, err
		}
	}
	started, err := e.restartStart(id, c.Config.Name, pinned)
	if err == nil {
		e.containerEvent(started, "restart", nil)
	}
	return started, err
}

// restartStart starts a restarted container with its previous
// addresses (pinned) when it can.
func (e *Engine) restartStart(id, name string, pinned []runopts.NetworkRequest) (*Container, error) {
	if pinned == nil {
		return e.Start(id, StartOptions{})
	}
	started, err := e.Start(id, StartOptions{Networks: pinned})
	if err != nil {
		// An address taken meanwhile: start with fresh ones.
		e.log.Info("restart with the previous addresses failed, retrying", "container", name, "error", err)
		return e.Start(id, StartOptions{})
	}
	return started, nil
}

// keepAddresses returns reqs with each network's addresses and MAC from
// the attachment that was set up for it (same position and interface),
// where reqs asks for none; nil when nothing would change.
func keepAddresses(reqs []runopts.NetworkRequest, atts []Attachment) []runopts.NetworkRequest {
	out := slices.Clone(reqs)
	changed := false
	for i := range out {
		if i >= len(atts) {
			break
		}
		ifname := out[i].Interface
		if ifname == "" {
			ifname = fmt.Sprintf("eth%d", i)
		}
		a := atts[i]
		if a.Opts.InterfaceName != ifname || (out[i].Name != "" && out[i].Name != a.Network.Name && out[i].Name != a.Network.ID) {
			continue
		}
		if len(out[i].IPs) == 0 && len(a.Opts.StaticIPs) > 0 {
			out[i].IPs = slices.Clone(a.Opts.StaticIPs)
			changed = true
		}
		if out[i].MAC == "" && a.Opts.StaticMAC != "" {
			out[i].MAC = a.Opts.StaticMAC
			changed = true
		}
	}
	if !changed {
		return nil
	}
	return out
}

package cli

import (
	"github.com/berthnet/berth/internal/engine"
	"github.com/berthnet/berth/internal/network"
)

// publishedPorts are the ports c publishes: a pod member's are its pod's
// (held by the infra container), as Podman shows them.
func publishedPorts(e *engine.Engine, c *engine.Container) []network.PortMapping {
	if len(c.Config.Ports) > 0 || c.Config.Pod == "" || c.Config.Infra {
		return c.Config.Ports
	}
	p, err := e.GetPod(c.Config.Pod)
	if err != nil {
		return nil
	}
	infra, err := e.Get(p.InfraID)
	if err != nil {
		return nil
	}
	return infra.Config.Ports
}

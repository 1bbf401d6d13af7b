package engine

import (
	"maps"
	"strconv"

	"github.com/berthnet/berth/internal/events"
)

// Events is the run root's event journal, which the engine appends to.
func (e *Engine) Events() *events.Journal { return e.evlog }

// emit appends an event; a failing write is logged, never an error of
// the operation.
func (e *Engine) emit(ev events.Event) {
	if e.evlog == nil {
		return
	}
	ev.Time = e.cfg.Now()
	if err := e.evlog.Append(ev); err != nil {
		e.log.Warn("record event", "type", ev.Type, "action", ev.Action, "error", err)
	}
}

// containerEvent records action on c, with its name, image and labels
// (as Docker puts them into the actor's attributes) and extra.
func (e *Engine) containerEvent(c *Container, action string, extra map[string]string) {
	if c == nil {
		return
	}
	e.emit(ContainerEvent(c, action, extra))
}

// ContainerEvent is the event of action on c.
func ContainerEvent(c *Container, action string, extra map[string]string) events.Event {
	attrs := map[string]string{}
	maps.Copy(attrs, c.Config.Labels)
	maps.Copy(attrs, extra)
	if c.Config.Pod != "" {
		attrs["pod"] = c.Config.Pod
	}
	// A --rootfs container has no image (Podman shows image=).
	return events.Event{Type: events.TypeContainer, Action: action, ID: c.Config.ID,
		Name: c.Config.Name, Image: c.Config.Image, Attributes: attrs}
}

// exitAttrs are a died event's attributes.
func exitAttrs(code int) map[string]string {
	return map[string]string{"exitCode": strconv.Itoa(code)}
}

// NetworkEvent records action (create, remove, connect, disconnect) on
// a network; c is the container of a connect or disconnect.
func (e *Engine) NetworkEvent(action, id, name string, c *Container) {
	ev := events.Event{Type: events.TypeNetwork, Action: action, ID: id, Name: name}
	if c != nil {
		ev.Attributes = map[string]string{"container": c.Config.ID, "containerName": c.Config.Name}
	}
	e.emit(ev)
}

// VolumeEvent records action (create, remove) on a volume.
func (e *Engine) VolumeEvent(action, name string) {
	e.emit(events.Event{Type: events.TypeVolume, Action: action, ID: name, Name: name})
}

// PodEvent records action on a pod.
func (e *Engine) PodEvent(action string, p *Pod) {
	if p == nil {
		return
	}
	e.emit(events.Event{Type: events.TypePod, Action: action, ID: p.ID, Name: p.Name})
}

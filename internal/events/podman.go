package events

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Attribute keys the journal keeps beside an object's labels; Podman
// shows them as fields of their own.
const (
	AttrExitCode = "exitCode"
	AttrPod      = "pod"
	AttrHealth   = "health_status"
	AttrSignal   = "signal"
	// AttrExecCommand is the command line of an exec.
	AttrExecCommand = "execCommand"
	// AttrContainer and AttrContainerName name the container of a
	// network connect or disconnect.
	AttrContainer     = "container"
	AttrContainerName = "containerName"
)

// Podman is an event as `podman events` shows it (its JSON and the keys
// of its --format templates).
type Podman struct {
	ContainerExitCode int    `json:",omitempty"`
	ID                string `json:",omitempty"`
	Image             string `json:",omitempty"`
	Name              string `json:",omitempty"`
	Network           string `json:",omitempty"`
	Status            string
	Time              time.Time
	Type              string
	HealthStatus      string `json:",omitempty"`
	PodID             string `json:",omitempty"`
	Attributes        map[string]string
}

// ToPodman is e as Podman reports it: a network connect is about the
// container (ID, Name) and names the network; exit code, pod and health
// status leave the attributes for fields of their own.
func ToPodman(e Event) Podman {
	p := Podman{ID: e.ID, Image: e.Image, Name: e.Name, Status: e.Action, Time: e.Time, Type: e.Type}
	var attrs map[string]string
	for k, v := range e.Attributes {
		switch k {
		case AttrExitCode:
			p.ContainerExitCode, _ = strconv.Atoi(v)
			continue
		case AttrPod:
			p.PodID = v
			continue
		case AttrHealth:
			p.HealthStatus = v
			continue
		case AttrExecCommand:
			continue
		}
		if e.Type == TypeNetwork && (k == AttrContainer || k == AttrContainerName) {
			continue
		}
		if attrs == nil {
			attrs = map[string]string{}
		}
		attrs[k] = v
	}
	p.Attributes = attrs
	if e.Type == TypeVolume {
		p.ID = "" // Podman names volumes only
	}
	if e.Type == TypeNetwork {
		p.Network = e.Name
		if c := e.Attributes[AttrContainer]; c != "" {
			p.ID, p.Name = c, e.Attributes[AttrContainerName]
		}
	}
	return p
}

// JSON is the line `podman events --format json` prints.
func (p Podman) JSON() string {
	b, _ := json.Marshal(p) // a struct of strings, ints and a time
	return string(b)
}

// String is Podman's default line; trunc shortens IDs to 12 characters
// (`--no-trunc=false`).
func (p Podman) String(trunc bool) string {
	id := p.ID
	if trunc && len(id) > 12 {
		id = id[:12]
	}
	head := fmt.Sprintf("%s %s %s", p.Time, p.Type, p.Status)
	switch p.Type {
	case TypeContainer, TypePod:
		var b strings.Builder
		fmt.Fprintf(&b, "%s %s (image=%s, name=%s", head, id, p.Image, p.Name)
		if p.PodID != "" {
			fmt.Fprintf(&b, ", pod_id=%s", p.PodID)
		}
		if p.HealthStatus != "" {
			fmt.Fprintf(&b, ", health_status=%s", p.HealthStatus)
		}
		keys := make([]string, 0, len(p.Attributes))
		for k := range p.Attributes {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, ", %s=%s", k, p.Attributes[k])
		}
		b.WriteString(")")
		return b.String()
	case TypeNetwork:
		return fmt.Sprintf("%s %s (container=%s, name=%s)", head, id, id, p.Network)
	case TypeImage:
		return fmt.Sprintf("%s %s %s", head, id, p.Name)
	case TypeVolume:
		return fmt.Sprintf("%s %s", head, p.Name)
	}
	return fmt.Sprintf("%s %s %s", head, id, p.Name)
}

package engine

import (
	"encoding/json"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// ErrInvalidName is a name Podman would refuse.
var ErrInvalidName = errors.New("invalid argument")

// Rename gives a container a new name. A running container's DNS
// records follow at once; a pod member's name in the pod's DNS too.
func (e *Engine) Rename(ref, name string) (*Container, error) {
	if !ValidName(name) {
		return nil, fmt.Errorf("names must match [a-zA-Z0-9][a-zA-Z0-9_.-]*: %w", ErrInvalidName)
	}
	c, err := e.Get(ref)
	if err != nil {
		return nil, err
	}
	if c.Config.Infra {
		return nil, fmt.Errorf("cannot rename %s: infra containers cannot be renamed: %w", c.Config.ID, ErrRunning)
	}
	if c.Config.Name == name {
		return c, nil
	}
	oldName := c.Config.Name
	c.Config.Name = name
	err = e.update(func(b *bolt.Bucket) error {
		if err := checkNameFree(b.Tx(), c); err != nil {
			return err
		}
		v := b.Get([]byte(c.Config.ID))
		if v == nil {
			return fmt.Errorf("container %s: %w", c.Config.ID, ErrNoSuchContainer)
		}
		var cur Container
		if err := json.Unmarshal(v, &cur); err != nil {
			return err
		}
		cur.Config.Name = name
		*c = cur
		nv, err := json.Marshal(&cur)
		if err != nil {
			return err
		}
		return b.Put([]byte(c.Config.ID), nv)
	})
	if err != nil {
		return nil, err
	}
	e.containerEvent(c, "rename", map[string]string{"oldName": oldName})
	if c.Config.Pod != "" {
		e.podMembersChanged(c.Config.Pod)
	} else if c.Running() && len(c.State.Attachments) > 0 {
		if err := e.renameDNS(c); err != nil {
			e.log.Warn("new name in DNS", "container", name, "error", err)
		}
	}
	return c, nil
}

package cli

import (
	"errors"

	"github.com/berthnet/berth/internal/engine"
)

// startAll is `start --all` (or `start --filter`): it starts every
// container --filter matches and prints the IDs, as Podman does.
func startAll(env Env, g *globals, w *world, e *engine.Engine, args, filters []string, attach bool) error {
	if len(args) > 0 {
		return errors.New("either start all containers or the container(s) provided in the arguments")
	}
	if attach {
		return errors.New("you cannot start and attach multiple containers at once")
	}
	match, err := parsePsFilters(filters)
	if err != nil {
		return err
	}
	cs, err := e.List()
	if err != nil {
		return err
	}
	pods, err := e.Pods()
	if err != nil {
		return err
	}
	info := psInfo{now: env.now(), pods: map[string]*engine.Pod{}, byID: map[string]*engine.Container{}, images: imageNamer(env, g), defNet: w.store.DefaultName()}
	for _, p := range pods {
		info.pods[p.ID] = p
	}
	var ids []string
	for _, c := range cs {
		info.byID[c.Config.ID] = c
	}
	for _, c := range cs {
		if match(info.row(c), info) {
			ids = append(ids, c.Config.ID)
		}
	}
	return forEach(env, ids, func(id string) (string, error) {
		if _, err := e.Start(id, engine.StartOptions{}); err != nil {
			return "", startError(err)
		}
		return id, nil
	})
}

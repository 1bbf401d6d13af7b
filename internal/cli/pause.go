package cli

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/berthnet/berth/internal/engine"
)

func pauseCmd(env Env, g *globals) *cobra.Command {
	return freezeCmd(env, g, "pause", "Pause all the processes in one or more containers",
		"Freeze every process of running containers (runc pause, the cgroup freezer); ps shows them as paused.",
		func(c *engine.Container) bool { return c.Running() && !c.State.Paused },
		(*engine.Engine).Pause)
}

func unpauseCmd(env Env, g *globals) *cobra.Command {
	return freezeCmd(env, g, "unpause", "Unpause the processes in one or more containers",
		"Thaw paused containers (runc resume).",
		func(c *engine.Container) bool { return c.State.Paused },
		(*engine.Engine).Unpause)
}

// freezeCmd builds pause and unpause: --all acts on the containers
// selected by which.
func freezeCmd(env Env, g *globals, name, short, long string, which func(*engine.Container) bool, op func(*engine.Engine, string) (*engine.Container, error)) *cobra.Command {
	var all bool
	c := &cobra.Command{
		Use:   name + " [options] CONTAINER...",
		Short: short,
		Long:  long,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, e, err := openEngine(env, g)
			if err != nil {
				return err
			}
			if all {
				if len(args) > 0 {
					return errAllWithNames
				}
				cs, err := e.List()
				if err != nil {
					return err
				}
				for _, c := range cs {
					if which(c) && !c.Config.Infra {
						args = append(args, c.Config.Name)
					}
				}
			} else if len(args) == 0 {
				return errNoNames
			}
			return forEach(env, args, func(a string) (string, error) {
				_, err := op(e, a)
				return a, notFound(err, 125)
			})
		},
	}
	c.Flags().BoolVarP(&all, "all", "a", false, name+" every container that can be")
	return c
}

// Podman's errors for a wrong set of container arguments.
var (
	errAllWithNames = errors.New("--all and container names cannot be used together")
	errNoNames      = errors.New("you must provide at least one name or id")
)

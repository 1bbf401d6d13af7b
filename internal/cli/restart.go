package cli

import (
	"github.com/spf13/cobra"

	"github.com/berthnet/berth/internal/engine"
)

func restartCmd(env Env, g *globals) *cobra.Command {
	var timeout uint
	var all, running bool
	c := &cobra.Command{
		Use:   "restart [options] CONTAINER...",
		Short: "Restart one or more containers",
		Long: "Stop a running container (the stop signal, then SIGKILL after --time) and start it again; a\n" +
			"container that is not running is started. The container keeps its addresses, MAC and\n" +
			"published ports; its process is new.",
		RunE: func(cmd *cobra.Command, args []string) error {
			_, e, err := openEngine(env, g)
			if err != nil {
				return err
			}
			if args, err = allOr(e, args, all, true); err != nil {
				return err
			}
			var t *uint
			if cmd.Flags().Changed("time") {
				t = &timeout
			}
			return forEach(env, args, func(a string) (string, error) {
				if running {
					c, err := e.Get(a)
					if err != nil {
						return "", notFound(err, 125)
					}
					if !c.Running() {
						return "", errSkip
					}
				}
				_, err := e.Restart(a, t)
				return a, notFound(startError(err), 125)
			})
		},
	}
	c.Flags().UintVarP(&timeout, "time", "t", 10, "seconds to wait for stop before killing the container")
	c.Flags().BoolVarP(&all, "all", "a", false, "restart every container")
	c.Flags().BoolVar(&running, "running", false, "restart only running containers")
	return c
}

// killAll is kill --all: every running container.
func killAll(e *engine.Engine) ([]string, error) {
	cs, err := e.List()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, c := range cs {
		if c.Running() && !c.Config.Infra {
			out = append(out, c.Config.Name)
		}
	}
	return out, nil
}

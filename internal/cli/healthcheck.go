package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/berthnet/berth/internal/engine"
)

// healthcheckCmd is `berth healthcheck run CTR` (Podman's) and the hidden
// `healthcheck loop ID` the engine starts for a container with a
// healthcheck interval.
func healthcheckCmd(env Env, g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "healthcheck",
		Short: "Run containers' healthchecks",
	}
	c.AddCommand(&cobra.Command{
		Use:   "run CONTAINER",
		Short: "Run a container's healthcheck once",
		Long: `Run the container's healthcheck command in it once and record the result.
Prints the health state and exits 1 when the container is not healthy.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, e, err := openEngine(env, g)
			if err != nil {
				return err
			}
			status, err := e.RunHealthcheck(args[0])
			if err != nil {
				return notFound(err, 125)
			}
			if status != engine.HealthHealthy {
				fmt.Fprintln(env.Stdout, status)
				return &exitError{code: 1}
			}
			return nil
		},
	}, &cobra.Command{
		Use:    "loop ID",
		Short:  "Run a container's healthcheck every interval (started by the engine; not for direct use)",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, e, err := openEngine(env, g)
			if err != nil {
				return err
			}
			return e.HealthLoop(cmd.Context(), args[0])
		},
	})
	return c
}

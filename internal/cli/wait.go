package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthnet/berth/internal/engine"
)

// waitConditions maps wait --condition values to the states they wait
// for; "" stands for the container's exit.
var waitConditions = map[string]string{
	"stopped": "", "exited": "",
	"created": engine.StateCreated, "configured": engine.StateCreated,
	"running": engine.StateRunning, "paused": engine.StatePaused,
}

// parseConditions checks wait's --condition values: forExit is true when
// one of them is the exit, states holds the others.
func parseConditions(conds []string) (forExit bool, states map[string]bool, err error) {
	states = map[string]bool{}
	if len(conds) == 0 {
		return true, states, nil
	}
	for _, c := range conds {
		st, ok := waitConditions[c]
		switch {
		case !ok:
			return false, nil, fmt.Errorf("unknown container state: %s: invalid argument", c)
		case st == "":
			forExit = true
		default:
			states[st] = true
		}
	}
	return forExit, states, nil
}

func waitCmd(env Env, g *globals) *cobra.Command {
	var conds []string
	var interval string
	c := &cobra.Command{
		Use:   "wait [options] CONTAINER...",
		Short: "Block on one or more containers",
		Long: "Wait until each container stops and print its exit code; with --condition, until it\n" +
			"reaches one of the given states (then -1 is printed, as Podman does).",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return fmt.Errorf("%q requires a name, id, or the \"--latest\" flag", cmd.CommandPath())
			}
			forExit, states, err := parseConditions(conds)
			if err != nil {
				return err
			}
			every, err := parseInterval(interval)
			if err != nil {
				return err
			}
			_, e, err := openEngine(env, g)
			if err != nil {
				return err
			}
			return forEach(env, args, func(a string) (string, error) {
				code, err := waitOne(cmd, e, a, forExit, states, every)
				return fmt.Sprint(code), notFound(err, 125)
			})
		},
	}
	c.Flags().StringSliceVar(&conds, "condition", nil, "condition to wait on: stopped, exited, running, paused, created")
	c.Flags().StringVarP(&interval, "interval", "i", "250ms", "time interval to wait before polling for completion")
	return c
}

// waitOne polls the container until it exited (forExit: returns its exit
// code) or is in one of states (returns -1).
func waitOne(cmd *cobra.Command, e *engine.Engine, ref string, forExit bool, states map[string]bool, every time.Duration) (int, error) {
	for {
		c, err := e.Get(ref)
		if err != nil {
			return 0, err
		}
		if states[c.Status()] {
			return -1, nil
		}
		if forExit && (c.State.Status == engine.StateExited || (c.State.Status == engine.StateCreated && c.State.StartCount > 0)) {
			return c.State.ExitCode, nil
		}
		if forExit && len(states) == 0 && c.State.Status != engine.StateCreated {
			c, err = e.Wait(c.Config.ID)
			if err != nil {
				return 0, err
			}
			return c.State.ExitCode, nil
		}
		select {
		case <-cmd.Context().Done():
			return 0, cmd.Context().Err()
		case <-time.After(every):
		}
	}
}

// parseInterval reads wait's --interval: a duration, or a number of
// milliseconds, as Podman reads it.
func parseInterval(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		var err2 error
		if d, err2 = time.ParseDuration(s + "ms"); err2 != nil {
			return 0, err
		}
	}
	if d <= 0 {
		return 0, fmt.Errorf("--interval %q: must be positive", s)
	}
	return d, nil
}

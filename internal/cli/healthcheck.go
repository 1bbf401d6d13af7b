package cli

// Health checks: the --health-* flags of run and create, `berth
// healthcheck run` and the hidden helper the monitor starts beside each
// run of a container with a check.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/berthnet/berth/internal/engine"
)

// healthFlags are the --health-* flags.
type healthFlags struct {
	engine.HealthOptions
	onFailure string
}

// registerHealth registers the health check flags with Podman's defaults.
func (h *healthFlags) register(fl *pflag.FlagSet) {
	d := engine.DefaultHealthOptions
	fl.StringVar(&h.Cmd, "health-cmd", "", "set a healthcheck command for the container ('none' disables the existing healthcheck)")
	fl.StringVar(&h.Interval, "health-interval", d.Interval, "set an interval for the healthchecks (a value of disable results in no automatic timer setup)")
	fl.UintVar(&h.Retries, "health-retries", d.Retries, "the number of retries allowed before a healthcheck is considered to be unhealthy")
	fl.StringVar(&h.StartPeriod, "health-start-period", d.StartPeriod, "the initialization time needed for a container to bootstrap")
	fl.StringVar(&h.Timeout, "health-timeout", d.Timeout, "the maximum time allowed to complete the healthcheck before an interval is considered failed")
	fl.BoolVar(&h.None, "no-healthcheck", false, "disable healthchecks on container")
	fl.StringVar(&h.onFailure, "health-on-failure", engine.HealthActionNone, "action to take once the container turns unhealthy: none, kill, restart, stop")
}

// options fills the health check of o.
func (h *healthFlags) options(o *engine.CreateOptions) error {
	hc, err := engine.MakeHealthcheck(h.HealthOptions)
	if err != nil {
		return err
	}
	o.Healthcheck = hc
	o.HealthOnFailure, err = engine.ParseHealthOnFailure(h.onFailure)
	return err
}

// healthcheckCmd is `healthcheck run`.
func healthcheckCmd(env Env, g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "healthcheck",
		Short: "Manage health checks of containers",
		Args:  noArgs,
	}
	c.AddCommand(&cobra.Command{
		Use:   "run CONTAINER",
		Short: "Run the health check of a container",
		Long: `Run the container's health check once and record the result. Exit code 0:
the check passed; 1: it failed ("unhealthy" is printed); 125: an error (no
such container, not running, no health check).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, e, err := openEngine(env, g)
			if err != nil {
				return err
			}
			ok, _, err := e.HealthCheck(args[0])
			if err != nil {
				return err
			}
			if !ok {
				fmt.Fprintln(env.Stdout, engine.HealthUnhealthy)
				return &exitError{code: 1}
			}
			return nil
		},
	})
	return c
}

// healthCommand returns the helper command that runs the health checks
// of container id's run of process pid.
func (w *world) healthCommand(id string, pid int) *exec.Cmd {
	cmd := w.monitorCommand(id)
	cmd.Args = append(cmd.Args[:len(cmd.Args)-2], "container-health", id, strconv.Itoa(pid))
	return cmd
}

// startHealthChecks starts the health check helper beside the run of pid
// (when c has a check with an interval) and returns what stops it.
func (w *world) startHealthChecks(c *engine.Container, pid int) func() {
	hc := c.Config.Healthcheck
	if !hc.Defined() || hc.Interval <= 0 {
		return nil
	}
	cmd := w.healthCommand(c.Config.ID, pid)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		w.log.Warn("start health checks", "container", c.Config.Name, "error", err)
		return nil
	}
	// The monitor's reaper collects its exit; Release drops the handle.
	return func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Process.Release()
	}
}

// healthHelperCmd is the hidden helper that runs a container's health
// checks every interval (started by the monitor; not for direct use).
func healthHelperCmd(env Env, g *globals) *cobra.Command {
	return &cobra.Command{
		Use:    "container-health ID PID",
		Short:  "Run a container's health checks (started by its monitor; not for direct use)",
		Hidden: true,
		Args:   cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			pid, err := strconv.Atoi(args[1])
			if err != nil {
				return err
			}
			_, e, err := openEngine(env, g)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			return e.HealthLoop(ctx, args[0], pid, os.Getppid())
		},
	}
}

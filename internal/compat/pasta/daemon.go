package pasta

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime/pprof"
	"strings"
	"syscall"
)

// daemonEnv marks the background process; its value is the descriptor of
// the pipe that reports readiness to the foreground one.
const daemonEnv = "BERTH_PASTA_DAEMON"

// startDaemon starts this program again, in the background (a session of
// its own, no standard streams: Podman reads the foreground process's
// output until every writer is gone), and waits for it to report the
// network ready or why it failed.
func startDaemon(args []string, env Env) int {
	r, w, err := os.Pipe()
	if err != nil {
		fmt.Fprintf(env.Stderr, "Failed to create pipe: %v\n", err)
		return 1
	}
	cmd, err := self(args, daemonEnv, w)
	if err != nil {
		fmt.Fprintln(env.Stderr, err)
		return 1
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(env.Stderr, "Failed to fork: %v\n", err)
		return 1
	}
	w.Close()
	line, _ := bufio.NewReader(r).ReadString(0)
	r.Close()
	if line == "ok\x00" {
		_ = cmd.Process.Release()
		return 0
	}
	_ = cmd.Wait()
	msg := strings.TrimSuffix(strings.TrimPrefix(line, "error "), "\x00")
	if msg == "" {
		msg = "pasta: the background process ended before the network was ready"
	}
	fmt.Fprintln(env.Stderr, msg)
	return 1
}

// self is this program again with args, as argv[0] (berth's multi-call
// binary dispatches on it), marked by the environment variable envVar
// naming the descriptor (3) f becomes in it.
func self(args []string, envVar string, f *os.File) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		//lint:ignore ST1005 pasta's own message, which Podman shows
		return nil, fmt.Errorf("Failed to find own executable: %w", err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Args[0] = os.Args[0]
	cmd.Env = append(os.Environ(), envVar+"=3")
	cmd.ExtraFiles = []*os.File{f}
	return cmd, nil
}

// runDaemon is the background process: it serves the network and reports
// readiness (or the error) on the inherited pipe.
func runDaemon(ctx context.Context, args []string) int {
	report := os.NewFile(3, "ready")
	o, err := Parse(args)
	if err != nil {
		fmt.Fprintf(report, "error %v\x00", err)
		return ExitUsage
	}
	log := logger(o, discard{})
	if p := os.Getenv("BERTH_CPUPROFILE"); p != "" { // profiling the stack (bench)
		if f, err := os.Create(p); err == nil && pprof.StartCPUProfile(f) == nil {
			defer pprof.StopCPUProfile()
		}
	}
	err = serve(ctx, o, log, func(err error) {
		if err != nil {
			fmt.Fprintf(report, "error %v\x00", err)
		} else {
			fmt.Fprint(report, "ok\x00")
		}
		report.Close()
	})
	if err != nil {
		return 1
	}
	return 0
}

// discard is a writer that drops everything (the daemon has no stderr).
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

package pasta

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
)

// execEnv marks the process that becomes the command to run: it waits
// for the network on the inherited pipe, then executes the command.
const execEnv = "BERTH_PASTA_EXEC"

// runCommand is pasta's form without a namespace: the command (default:
// the user's shell) runs in new user and network namespaces that pasta
// connects, and pasta stays in the foreground until it ends, with its exit
// status.
func runCommand(ctx context.Context, o *Options, env Env) int {
	argv := o.Target
	if len(argv) == 0 {
		sh := os.Getenv("SHELL")
		if sh == "" {
			sh = "/bin/sh"
		}
		argv = []string{sh}
	}
	r, w, err := os.Pipe()
	if err != nil {
		fmt.Fprintf(env.Stderr, "Failed to create pipe: %v\n", err)
		return 1
	}
	cmd, err := self(argv, execEnv, r)
	if err != nil {
		fmt.Fprintln(env.Stderr, err)
		return 1
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, env.Stdout, env.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:                 syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET,
		UidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
		GidMappingsEnableSetgroups: false,
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(env.Stderr, "Failed to start %s in new namespaces: %v\n", argv[0], err)
		return 1
	}
	r.Close()
	o.NetNS = "/proc/" + strconv.Itoa(cmd.Process.Pid) + "/ns/net"
	o.Target = nil
	sctx, cancel := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() {
		served <- serve(sctx, o, logger(o, env.Stderr), func(err error) {
			if err == nil {
				_, _ = w.Write([]byte{1})
			}
			w.Close()
		})
	}()
	werr := cmd.Wait()
	cancel()
	if err := <-served; err != nil {
		fmt.Fprintln(env.Stderr, err)
		return 1
	}
	var ee *exec.ExitError
	if errors.As(werr, &ee) {
		return ee.ExitCode()
	}
	return 0
}

// execCommand is the command's side: once the network is ready (a byte on
// the pipe; none means pasta failed) it becomes the command.
func execCommand(args []string, env Env) int {
	p := os.NewFile(3, "ready")
	b := make([]byte, 1)
	if n, _ := p.Read(b); n != 1 {
		return 1
	}
	p.Close()
	if len(args) == 0 {
		return 1
	}
	path, err := exec.LookPath(args[0])
	if err != nil {
		fmt.Fprintf(env.Stderr, "%s: %v\n", args[0], err)
		return 127
	}
	environ := os.Environ()
	for i, e := range environ {
		if len(e) > len(execEnv) && e[:len(execEnv)+1] == execEnv+"=" {
			environ = append(environ[:i], environ[i+1:]...)
			break
		}
	}
	err = syscall.Exec(path, args, environ)
	fmt.Fprintf(env.Stderr, "%s: %v\n", args[0], err)
	return 126
}

package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/rootless"
)

// noUserNS are the commands an unprivileged user runs without joining the
// rootless user namespace.
var noUserNS = map[string]bool{
	"version": true, "help": true, "completion": true,
	"__complete": true, "__completeNoDesc": true,
}

// needsUserNS reports whether an unprivileged `berth args...` runs inside
// the rootless user namespace: every command except help (--help, a
// command group without its subcommand), version and completion. Cobra
// finds the command and parses its flags, so `berth run IMG cmd --help`
// still runs.
func needsUserNS(args []string) bool {
	root := newRoot(Env{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard, Getenv: func(string) string { return "" }}, &globals{}, new(int))
	cmd, rest, err := root.Find(args)
	if err != nil || cmd == root {
		return false
	}
	for c := cmd; c != nil && c != root; c = c.Parent() {
		if noUserNS[c.Name()] {
			return false
		}
	}
	if !cmd.Runnable() {
		return false
	}
	cmd.InitDefaultHelpFlag()
	cmd.InitDefaultVersionFlag()
	if err := cmd.ParseFlags(rest); err != nil {
		return true // the command reports the error
	}
	if h, _ := cmd.Flags().GetBool("help"); h {
		return false
	}
	if v, _ := cmd.Flags().GetBool("version"); v {
		return false
	}
	return true
}

// rootlessRuntimeDir is the user's runtime directory: $XDG_RUNTIME_DIR,
// else /run/user/UID when it is the user's, else a directory of the user's
// own under the temporary directory (as Podman falls back).
func rootlessRuntimeDir(getenv func(string) string, uid int) string {
	if rt := getenv("XDG_RUNTIME_DIR"); rt != "" {
		return rt
	}
	p := "/run/user/" + strconv.Itoa(uid)
	if st, err := os.Stat(p); err == nil && st.IsDir() {
		if err := accessW(p); err == nil {
			return p
		}
	}
	return filepath.Join(os.TempDir(), "berth-run-"+strconv.Itoa(uid))
}

// joinUserNS re-executes berth inside the rootless user namespace; it
// returns only on error.
func joinUserNS(args []string) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("rootless: find the berth executable: %w", err)
	}
	dir := filepath.Join(rootlessRuntimeDir(os.Getenv, os.Getuid()), "berth")
	if err := rootless.Join(dir, self, args); err != nil {
		return fmt.Errorf("rootless: enter the user namespace: %w", err)
	}
	return nil
}

// accessW reports (as an error) whether the process may write to p.
func accessW(p string) error { return unix.Access(p, unix.W_OK) }

// rootlessReady checks that a rootless engine command runs inside berth's
// user namespace (the berth binary joins it by itself; a caller of Run in
// the same process does not).
func rootlessReady(env Env) error {
	if env.Rootless && os.Geteuid() != 0 {
		return errors.New("rootless containers run inside berth's user namespace: call the berth binary, which enters it (newuidmap/newgidmap and nsenter are needed)")
	}
	return nil
}

// unshareCmd is `berth unshare`: a command (default: the user's shell) in
// the rootless user namespace, and with --rootless-netns also in the
// rootless network namespace, as `podman unshare`.
func unshareCmd(env Env, g *globals) *cobra.Command {
	var netnsFlag bool
	c := &cobra.Command{
		Use:   "unshare [options] [COMMAND [ARG...]]",
		Short: "Run a command in the rootless user namespace",
		Long: `Run a command (default: $SHELL, else /bin/sh) as root of the user namespace
rootless berth runs in: files under the user's storage show their container
owners, and with --rootless-netns the command runs in the network namespace
that holds the user's bridge networks (ip a, nft list ruleset, ping a
container). Only for rootless users.`,
		Example: `  berth unshare ls -ln ~/.local/share/berth
  berth unshare --rootless-netns ip addr`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !env.Rootless || !rootless.Inside() {
				return errors.New("please use unshare with rootless: berth unshare only enters the user namespace of a rootless user")
			}
			if len(args) == 0 {
				sh := env.getenv("SHELL")
				if sh == "" {
					sh = "/bin/sh"
				}
				args = []string{sh}
			}
			path, err := exec.LookPath(args[0])
			if err != nil {
				return &exitError{code: 127, err: fmt.Errorf("%s: %w", args[0], err)}
			}
			environ := append(os.Environ(), "CONTAINERS_GRAPHROOT="+graphRoot(env))
			if !netnsFlag {
				return syscall.Exec(path, args, environ)
			}
			w, err := openWorld(env, g)
			if err != nil {
				return err
			}
			e, err := w.engine()
			if err != nil {
				return err
			}
			return e.ExecInRootlessNetNS(path, args, environ)
		},
	}
	c.Flags().SetInterspersed(false)
	c.Flags().BoolVar(&netnsFlag, "rootless-netns", false, "also join the rootless network namespace of the user's bridge networks")
	return c
}

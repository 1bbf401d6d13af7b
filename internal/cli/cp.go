package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berthnet/berth/internal/engine"
)

// parseCopyArg splits a cp argument into a container and a path, as
// Podman does: CONTAINER:PATH, or a host path (one starting with "." or
// "/", or without a colon).
func parseCopyArg(s string) engine.CopyEnd {
	if s == "" || s[0] == '.' || s[0] == '/' {
		return engine.CopyEnd{Path: s}
	}
	if ctr, p, ok := strings.Cut(s, ":"); ok && ctr != "" {
		return engine.CopyEnd{Container: ctr, Path: p}
	}
	return engine.CopyEnd{Path: s}
}

// copyEnds parses cp's two arguments.
func copyEnds(src, dst string) (engine.CopyEnd, engine.CopyEnd, error) {
	s, d := parseCopyArg(src), parseCopyArg(dst)
	switch {
	case s.Path == "" || d.Path == "":
		return s, d, fmt.Errorf("invalid arguments %s, %s you must specify paths", src, dst)
	case s.Container != "" && d.Container != "":
		return s, d, errors.New("copying between containers is not supported")
	case s.Container == "" && d.Container == "":
		return s, d, fmt.Errorf("invalid arguments %s, %s you must use just one container", src, dst)
	case s.Container != "" && s.Path == "-", d.Container != "" && d.Path == "-":
		return s, d, errors.New(`"-" is a tar stream on the host side only`)
	}
	return s, d, nil
}

func cpCmd(env Env, g *globals) *cobra.Command {
	var archive, overwrite bool
	c := &cobra.Command{
		Use:   "cp [options] [CONTAINER:]SRC_PATH [CONTAINER:]DEST_PATH",
		Short: "Copy files/folders between a container and the local filesystem",
		Long: "Copy files and directories between a container (running or not) and the host, as cp -a\n" +
			"does: a directory goes into an existing directory, SRC/. copies a directory's contents,\n" +
			"\"-\" is a tar stream on stdin or stdout. Paths in the container are resolved inside its\n" +
			"root filesystem: no symbolic link in it leads out.",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, dst, err := copyEnds(args[0], args[1])
			if err != nil {
				return err
			}
			_, e, err := openEngine(env, g)
			if err != nil {
				return err
			}
			err = e.Copy(src, dst, engine.CopyOptions{Stdin: env.Stdin, Stdout: env.Stdout, Archive: archive, Overwrite: overwrite})
			return notFound(err, 125)
		},
	}
	c.Flags().BoolVarP(&archive, "archive", "a", true, "chown copied files to the primary uid/gid of the destination container")
	c.Flags().BoolVar(&overwrite, "overwrite", false, "allow to overwrite directories with non-directories and vice versa")
	return c
}

package cli

// push, save, image prune, commit and export.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berthnet/berth/internal/engine"
	"github.com/berthnet/berth/internal/image"
	"github.com/berthnet/berth/internal/image/change"
	"github.com/berthnet/berth/internal/image/ref"
)

// ---- push ----

func pushCmd(env Env, g *globals) *cobra.Command {
	var (
		quiet      bool
		digestfile string
		reg        registryFlags
	)
	c := &cobra.Command{
		Use:   "push [options] IMAGE [DESTINATION]",
		Short: "Push an image to a registry",
		Long: `Push an image to a registry: to its own name, or to DESTINATION (a
registry reference, docker:// allowed). Registries, insecure registries
and certificates as for pull.`,
		Example: `  berth push 127.0.0.1:5000/team/app:v1
  berth push --tls-verify=false banner 127.0.0.1:5000/banner:1`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return fmt.Errorf("%q requires an image and an optional destination\nSee '%s --help'", cmd.CommandPath(), cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openImages(env, g)
			if err != nil {
				return err
			}
			ro, err := reg.remoteOptions(cmd, env, quiet)
			if err != nil {
				return err
			}
			dest := ""
			if len(args) == 2 {
				dest = strings.TrimPrefix(args[1], "docker://")
			}
			if err := s.Push(cmd.Context(), args[0], dest, image.PushOptions{RemoteOptions: ro}); err != nil {
				return err
			}
			if digestfile != "" {
				img, err := s.Lookup(args[0])
				if err != nil {
					return err
				}
				return os.WriteFile(digestfile, []byte(img.Digest), 0o644)
			}
			return nil
		},
		ValidArgsFunction: completeImages(env, g),
	}
	fl := c.Flags()
	fl.BoolVarP(&quiet, "quiet", "q", false, "suppress the progress output")
	fl.StringVar(&digestfile, "digestfile", "", "write the digest of the stored image to this file")
	reg.register(fl)
	reg.registerAuth(fl)
	return c
}

// ---- save ----

func saveCmd(env Env, g *globals) *cobra.Command {
	var (
		output, format string
		multi, quiet   bool
	)
	c := &cobra.Command{
		Use:   "save [options] IMAGE [IMAGE...]",
		Short: "Save images to an archive",
		Long: `Save images to a docker-archive (default; several images in one
archive) or an oci-archive, written to -o FILE or to stdout when it is
not a terminal. berth load reads both back.`,
		Example: `  berth save -o busybox.tar busybox
  berth save --format oci-archive banner > banner.oci.tar`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return fmt.Errorf("need at least 1 argument\nSee '%s --help'", cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if format == image.FormatOCIArchive && len(args) > 1 {
				return errors.New("--multi-image-archive (-m) is only supported with docker-archive: oci-archive takes one image")
			}
			_ = multi // several images always make a multi-image docker-archive
			_ = quiet // no progress is printed
			s, err := openImages(env, g)
			if err != nil {
				return err
			}
			return writeOutput(env, output, "save", func(w io.Writer) error { return s.Save(w, args, format) })
		},
		ValidArgsFunction: completeImages(env, g),
	}
	fl := c.Flags()
	fl.StringVarP(&output, "output", "o", "", "write to this file (default: stdout, which must be redirected)")
	fl.StringVar(&format, "format", image.FormatDockerArchive, "archive format: docker-archive or oci-archive")
	fl.BoolVarP(&multi, "multi-image-archive", "m", false, "save several images in one docker-archive (always done for several images)")
	fl.BoolVarP(&quiet, "quiet", "q", false, "suppress the output")
	return c
}

// writeOutput runs write on -o FILE (removed again on failure) or on
// stdout, which must not be a terminal (Podman's "refusing to save to
// terminal").
func writeOutput(env Env, output, verb string, write func(io.Writer) error) error {
	if output == "" || output == "-" {
		if f, ok := env.Stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			return fmt.Errorf("refusing to %s to terminal. Use -o flag or redirect", verb)
		}
		return write(env.Stdout)
	}
	f, err := os.Create(output)
	if err != nil {
		return err
	}
	err = write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(output)
	}
	return err
}

// ---- image prune ----

func imagePruneCmd(env Env, g *globals) *cobra.Command {
	var all, force bool
	c := &cobra.Command{
		Use:   "prune [options]",
		Short: "Remove unused images",
		Long: `Remove the images without a name (dangling) that no container uses;
with -a every image no container uses. Prints the removed image IDs.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !force {
				what := "all dangling images"
				if all {
					what = "all images without at least one container associated with them"
				}
				fmt.Fprintf(env.Stdout, "WARNING! This command removes %s.\nAre you sure you want to continue? [y/N] ", what)
				ans, _ := bufio.NewReader(env.Stdin).ReadString('\n')
				if a := strings.ToLower(strings.TrimSpace(ans)); a != "y" && a != "yes" {
					return nil
				}
			}
			s, err := openImages(env, g)
			if err != nil {
				return err
			}
			ids, err := s.Prune(all)
			for _, id := range ids {
				fmt.Fprintln(env.Stdout, id)
			}
			return err
		},
	}
	c.Flags().BoolVarP(&all, "all", "a", false, "remove all images not in use by containers, not just dangling ones")
	c.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	return c
}

// ---- commit, export ----

func commitCmd(env Env, g *globals) *cobra.Command {
	var (
		o       image.CommitOptions
		quiet   bool
		iidfile string
	)
	c := &cobra.Command{
		Use:   "commit [options] CONTAINER [IMAGE]",
		Short: "Create an image from a container's changes",
		Long: `Make an image of a container's root filesystem: its image plus the
container's changes as one more layer, with the container's command,
environment, working directory and labels. --change takes Dockerfile
instructions: ` + strings.Join(change.Supported, ", ") + `. IMAGE without a
registry is local (banner is localhost/banner:latest).`,
		Example: `  berth commit -c 'CMD ["httpd","-f"]' -m "with content" web banner:v2`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return fmt.Errorf("%q requires a container and an optional image name\nSee '%s --help'", cmd.CommandPath(), cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 2 {
				if _, err := ref.ParseLocal(args[1]); err != nil {
					return err
				}
				o.Reference = args[1]
			}
			var probe v1.Config
			if err := change.Apply(&probe, o.Changes); err != nil {
				return fmt.Errorf("--change: %w", err)
			}
			_, e, err := openEngine(env, g)
			if err != nil {
				return err
			}
			ctr, s, err := containerImageStore(env, g, e, args[0])
			if err != nil {
				return err
			}
			cfg, err := containerConfig(s, ctr)
			if err != nil {
				return err
			}
			o.ContainerConfig = cfg
			o.Now = env.now()
			if !quiet {
				o.Progress = env.Stderr
			}
			img, err := s.Commit(cmd.Context(), ctr.Config.ID, o)
			if err != nil {
				return err
			}
			if iidfile != "" {
				if err := os.WriteFile(iidfile, []byte("sha256:"+img.ID), 0o644); err != nil {
					return err
				}
			}
			fmt.Fprintln(env.Stdout, img.ID)
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVarP(&o.Author, "author", "a", "", "set the author of the image")
	fl.StringArrayVarP(&o.Changes, "change", "c", nil, "apply a Dockerfile instruction ("+strings.Join(change.Supported, ", ")+")")
	fl.StringVarP(&o.Message, "message", "m", "", "commit message of the image's history entry")
	fl.BoolVarP(&quiet, "quiet", "q", false, "suppress the progress output")
	fl.StringVar(&iidfile, "iidfile", "", "write the image ID to this file")
	return c
}

// containerImageStore finds a container that has a root filesystem in
// the image store.
func containerImageStore(env Env, g *globals, e *engine.Engine, name string) (*engine.Container, *image.Store, error) {
	ctr, err := e.Get(name)
	if err != nil {
		return nil, nil, err
	}
	if ctr.Config.ImageID == "" {
		return nil, nil, fmt.Errorf("container %s runs a --rootfs directory, not an image: use that directory", name)
	}
	s, err := openImages(env, g)
	if err != nil {
		return nil, nil, err
	}
	return ctr, s, nil
}

// containerConfig is the image config a commit starts from: the
// container's image's, with the container's command, environment,
// working directory, user, stop signal, exposed ports and labels.
func containerConfig(s *image.Store, ctr *engine.Container) (*v1.Config, error) {
	var cfg v1.Config
	if cf, err := s.ConfigFile(ctr.Config.ImageID); err == nil {
		cfg = cf.Config
	} else if !errors.Is(err, image.ErrNotFound) {
		return nil, err
	}
	cc := ctr.Config
	cfg.Entrypoint, cfg.Cmd, cfg.Env = cc.Entrypoint, cc.Cmd, cc.Env
	if cc.WorkingDir != "" {
		cfg.WorkingDir = cc.WorkingDir
	}
	if cc.User != "" {
		cfg.User = cc.User
	}
	if cc.StopSignal != "" {
		cfg.StopSignal = cc.StopSignal
	}
	for _, p := range cc.ExposedPorts {
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = map[string]struct{}{}
		}
		cfg.ExposedPorts[p] = struct{}{}
	}
	if len(cc.Labels) > 0 {
		labels := maps.Clone(cfg.Labels)
		if labels == nil {
			labels = map[string]string{}
		}
		maps.Copy(labels, cc.Labels)
		cfg.Labels = labels
	}
	return &cfg, nil
}

func exportCmd(env Env, g *globals) *cobra.Command {
	var output string
	c := &cobra.Command{
		Use:   "export [options] CONTAINER",
		Short: "Export a container's filesystem as a tar archive",
		Long: `Write a container's whole root filesystem as a tar to -o FILE or to
stdout when it is not a terminal. berth import makes an image of it.`,
		Example: `  berth export -o web.tar web
  berth export web | berth import - web-snapshot`,
		Args: exactArgs(1, "CONTAINER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, e, err := openEngine(env, g)
			if err != nil {
				return err
			}
			ctr, s, err := containerImageStore(env, g, e, args[0])
			if err != nil {
				return err
			}
			return writeOutput(env, output, "export", func(w io.Writer) error { return s.Export(ctr.Config.ID, w) })
		},
	}
	c.Flags().StringVarP(&output, "output", "o", "", "write to this file (default: stdout, which must be redirected)")
	return c
}

package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/berthnet/berth/internal/build"
	"github.com/berthnet/berth/internal/engine"
	"github.com/berthnet/berth/internal/image"
	"github.com/berthnet/berth/internal/runopts"
)

// buildFlags are the options of berth build.
type buildFlags struct {
	files, tags, buildArgs, labels []string
	target, network, iidfile       string
	noCache, quiet                 bool
	pull                           pullFlags
}

// buildUnsupported are podman build options berth refuses by name.
var buildUnsupported = []string{"platform", "arch", "os", "secret", "ssh", "cache-from", "cache-to",
	"squash", "squash-all", "volume", "mount", "build-context", "output", "manifest", "jobs", "isolation",
	"userns", "cap-add", "cap-drop", "security-opt", "add-host", "dns", "format", "sign-by", "timestamp"}

func buildCmd(env Env, g *globals) *cobra.Command {
	f := &buildFlags{}
	c := &cobra.Command{
		Use:   "build [options] [CONTEXT]",
		Short: "Build an image from a Dockerfile",
		Long: `Build an image from a Dockerfile (or Containerfile) and a context
directory (default: the current one), as podman build does. Each RUN runs
in a container on the default network (or --network), each instruction is
committed as an image, and a cache answers repeated steps ("Using cache").
.dockerignore excludes files of the context. Supported: FROM (images,
scratch, stages), RUN, COPY (--from, --chown), ADD (local files and tar
archives), ENV, ARG, WORKDIR, USER, CMD, ENTRYPOINT, EXPOSE, LABEL, VOLUME,
STOPSIGNAL, HEALTHCHECK, SHELL, MAINTAINER; ONBUILD, here-documents, RUN
--mount and ADD of URLs are refused.`,
		Example: `  berth build -t web:v1 .
  berth build -f Containerfile --build-arg VERSION=2 --target final -t app ./src`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := refuseUnsupported(cmd.Flags()); err != nil {
				return err
			}
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			return f.run(cmd, env, g, dir)
		},
	}
	f.register(c.Flags())
	return c
}

func (f *buildFlags) register(fl *pflag.FlagSet) {
	fl.StringArrayVarP(&f.files, "file", "f", nil, "the Dockerfile (default: CONTEXT/Containerfile or CONTEXT/Dockerfile; - reads stdin)")
	fl.StringArrayVarP(&f.tags, "tag", "t", nil, "name the image (repeatable)")
	fl.StringArrayVar(&f.buildArgs, "build-arg", nil, "set a build argument: NAME=VALUE, or NAME to take it from the environment")
	fl.StringArrayVar(&f.labels, "label", nil, "add a label to the image: KEY=VALUE")
	fl.StringVar(&f.target, "target", "", "build up to this stage")
	fl.StringVar(&f.network, "network", "", "the network of RUN containers (default: the default network; host, none, a network name)")
	fl.StringVar(&f.iidfile, "iidfile", "", "write the image ID to this file")
	fl.BoolVar(&f.noCache, "no-cache", false, "do not use the cache of earlier builds")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "print only the image ID")
	fl.StringVar(&f.pull.policy, "pull", pullMissing, "pull base images: missing, always, never, newer")
	f.pull.reg.register(fl)
	_ = fl.Bool("rm", true, "remove intermediate containers (always done)")
	_ = fl.Bool("force-rm", true, "remove intermediate containers after a failure too (always done)")
	_ = fl.Bool("layers", true, "cache intermediate images (always done)")
	for _, name := range buildUnsupported {
		if fl.Lookup(name) == nil {
			fl.StringArray(name, nil, "not supported by berth")
			_ = fl.MarkHidden(name)
			_ = fl.SetAnnotation(name, unsupportedAnnotation, []string{"true"})
		}
	}
}

// keyValues parses NAME=VALUE options; a NAME alone takes the value of
// lookup (and is left out when lookup has none).
func keyValues(opt string, vals []string, lookup func(string) (string, bool)) (map[string]string, error) {
	out := map[string]string{}
	for _, v := range vals {
		k, val, ok := strings.Cut(v, "=")
		if k == "" {
			return nil, fmt.Errorf("--%s %q: want NAME=VALUE", opt, v)
		}
		if !ok {
			if lookup == nil {
				return nil, fmt.Errorf("--%s %q: want NAME=VALUE", opt, v)
			}
			if val, ok = lookup(k); !ok {
				continue
			}
		}
		out[k] = val
	}
	return out, nil
}

// dockerfile reads the Dockerfile -f names, or the context's.
func (f *buildFlags) dockerfile(env Env, dir string) ([]byte, error) {
	if len(f.files) > 1 {
		return nil, fmt.Errorf("-f given %d times: berth builds from one Dockerfile", len(f.files))
	}
	if len(f.files) == 1 {
		if f.files[0] == "-" {
			return io.ReadAll(env.Stdin)
		}
		return os.ReadFile(f.files[0])
	}
	for _, name := range []string{"Containerfile", "Dockerfile"} {
		if data, err := os.ReadFile(filepath.Join(dir, name)); err == nil {
			return data, nil
		}
	}
	return nil, fmt.Errorf("no Containerfile or Dockerfile in %s (see -f)", dir)
}

func (f *buildFlags) run(cmd *cobra.Command, env Env, g *globals, dir string) error {
	o, err := f.options(env, dir)
	if err != nil {
		return err
	}
	if err := rootlessReady(env); err != nil {
		return err
	}
	_, e, err := openEngine(env, g)
	if err != nil {
		return err
	}
	s, err := openImages(env, g)
	if err != nil {
		return err
	}
	if !f.quiet {
		o.Out = env.Stdout
	}
	o.Pull = func(ctx context.Context, name string) error {
		return f.pull.ensure(cmd, env, g, name)
	}
	root, _ := engineDirs(env, g)
	b := imageBuilder(e, s, root)
	b.Now = env.now
	res, err := b.Build(cmd.Context(), o)
	if err != nil {
		return err
	}
	if len(res.UnusedArgs) > 0 {
		fmt.Fprintf(env.Stderr, "[Warning] one or more build args were not consumed: %s\n", strings.Join(res.UnusedArgs, ", "))
	}
	if f.iidfile != "" {
		if err := os.WriteFile(f.iidfile, []byte("sha256:"+res.ID), 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintln(env.Stdout, res.ID)
	return nil
}

// options translates the flags into build options.
func (f *buildFlags) options(env Env, dir string) (build.Options, error) {
	var o build.Options
	ctx, err := build.OpenContext(dir)
	if err != nil {
		return o, err
	}
	if o.Dockerfile, err = f.dockerfile(env, dir); err != nil {
		return o, err
	}
	if o.BuildArgs, err = keyValues("build-arg", f.buildArgs, func(k string) (string, bool) { return env.getenv(k), env.getenv(k) != "" }); err != nil {
		return o, err
	}
	if o.Labels, err = keyValues("label", f.labels, nil); err != nil {
		return o, err
	}
	if o.Network, err = buildNetwork(f.network); err != nil {
		return o, err
	}
	o.Context, o.Tags, o.Target, o.NoCache, o.Style = ctx, f.tags, f.target, f.noCache, build.Podman
	return o, nil
}

// buildNetwork is the network mode of RUN containers: "" and "default"
// (and Docker's "bridge") are the default network.
func buildNetwork(mode string) (runopts.NetMode, error) {
	switch mode {
	case "", "default", "bridge":
		return runopts.ParseNetworks(nil)
	}
	return runopts.ParseNetworks([]string{mode})
}

// imageBuilder is the builder of berth build and the API's /build; the
// step cache is <root>/build-cache.db.
func imageBuilder(e *engine.Engine, s *image.Store, root string) *build.Builder {
	return &build.Builder{Engine: e, Images: s, CachePath: filepath.Join(root, "build-cache.db")}
}

package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berthnet/berth/internal/events"
	"github.com/berthnet/berth/internal/image"
	"github.com/berthnet/berth/internal/image/change"
	"github.com/berthnet/berth/internal/image/ref"
)

// imageCmds are the image commands: pull, push, save, load, import,
// images, rmi, tag, commit and export at the top level, and `berth image
// ...` with the image ones plus inspect, exists and prune.
func imageCmds(env Env, g *globals) []*cobra.Command {
	img := &cobra.Command{
		Use:   "image",
		Short: "Manage images",
		Long:  "Manage images: pull, push, save, load, import, list, inspect, tag and remove them.",
		Args:  noArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	ls := imagesCmd(env, g)
	ls.Use, ls.Aliases = "ls [options] [REPOSITORY[:TAG]]", []string{"list"}
	rm := rmiCmd(env, g)
	rm.Use, rm.Aliases = "rm [options] IMAGE [IMAGE...]", []string{"remove"}
	img.AddCommand(pullCmd(env, g), pushCmd(env, g), saveCmd(env, g), loadCmd(env, g), importCmd(env, g), ls, rm,
		imageInspectCmd(env, g), imageExistsCmd(env, g), tagCmd(env, g), imagePruneCmd(env, g), buildCmd(env, g))
	return []*cobra.Command{img, pullCmd(env, g), pushCmd(env, g), saveCmd(env, g), loadCmd(env, g), importCmd(env, g),
		buildCmd(env, g), imagesCmd(env, g), rmiCmd(env, g), tagCmd(env, g), commitCmd(env, g), exportCmd(env, g)}
}

// openImages opens the image store under --root.
func openImages(env Env, g *globals) (*image.Store, error) {
	root, runRoot := engineDirs(env, g)
	s, err := image.Open(filepath.Join(root, "images"))
	if err == nil {
		s.SetEvents(imageEvents(events.Open(events.PathIn(runRoot)), nil))
	}
	return s, err
}

// ---- pull ----

func pullCmd(env Env, g *globals) *cobra.Command {
	var (
		quiet          bool
		platform, arch string
		reg            registryFlags
	)
	c := &cobra.Command{
		Use:   "pull [options] IMAGE [IMAGE...]",
		Short: "Pull an image from a registry",
		Long: `Pull an image from an OCI or Docker registry into berth's image store.
Short names are Docker Hub's, as Podman resolves them: busybox is
docker.io/library/busybox:latest. Progress goes to stderr (per-blob byte
counts on a terminal, one line per step otherwise), the image ID to
stdout. Transient failures (refused or reset connections, timeouts, 5xx)
are retried 3 times with a doubling pause. Registries marked insecure in
registries.conf ($CONTAINERS_REGISTRIES_CONF) may use plain HTTP; CA
certificates are read from <certs.d>/HOST:PORT/*.crt ($BERTH_CERTS_D,
default /etc/containers/certs.d and /etc/docker/certs.d).`,
		Example: `  berth pull busybox
  berth pull --tls-verify=false 127.0.0.1:5000/team/app:v1`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openImages(env, g)
			if err != nil {
				return err
			}
			ro, err := reg.remoteOptions(cmd, env, quiet)
			if err != nil {
				return err
			}
			o := image.PullOptions{RemoteOptions: ro}
			if platform != "" || arch != "" {
				p, err := parsePlatform(platform, arch)
				if err != nil {
					return err
				}
				o.Platform = p
			}
			for _, a := range args {
				img, err := s.Pull(cmd.Context(), a, o)
				if err != nil {
					return err
				}
				fmt.Fprintln(env.Stdout, img.ID)
			}
			return nil
		},
	}
	fl := c.Flags()
	fl.BoolVarP(&quiet, "quiet", "q", false, "suppress the progress output")
	reg.register(fl)
	reg.registerAuth(fl)
	fl.StringVar(&platform, "platform", "", "pick OS/ARCH[/VARIANT] from a multi-platform image (default linux/this machine)")
	fl.StringVar(&arch, "arch", "", "pick this architecture from a multi-platform image")
	return c
}

func parsePlatform(platform, arch string) (*v1.Platform, error) {
	p := &v1.Platform{OS: "linux"}
	if platform != "" {
		parts := strings.Split(platform, "/")
		if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
			return nil, fmt.Errorf("--platform %q: want OS/ARCH[/VARIANT], e.g. linux/arm64", platform)
		}
		p.OS, p.Architecture = parts[0], parts[1]
		if len(parts) == 3 {
			p.Variant = parts[2]
		}
	}
	if arch != "" {
		p.Architecture = arch
	}
	return p, nil
}

func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%q requires exactly %d argument (%s)\nSee '%s --help'", cmd.CommandPath(), n, what, cmd.CommandPath())
		}
		return nil
	}
}

// ---- load ----

func loadCmd(env Env, g *globals) *cobra.Command {
	var (
		input string
		quiet bool
	)
	c := &cobra.Command{
		Use:   "load [options]",
		Short: "Load images from an archive",
		Long: `Load images from a docker-archive tar (docker save, podman save), an OCI
archive or an OCI layout directory, plain or gzip-compressed, read from
-i FILE or stdin.`,
		Example: `  berth load -i busybox.tar
  berth load < app.oci.tar`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := openImages(env, g)
			if err != nil {
				return err
			}
			var progress io.Writer
			if !quiet {
				progress = env.Stderr
			}
			var loaded []image.Loaded
			if input == "" || input == "-" {
				loaded, err = s.LoadReader(cmd.Context(), env.Stdin, progress)
			} else {
				loaded, err = s.Load(cmd.Context(), input, progress)
			}
			if err != nil {
				return err
			}
			for _, l := range loaded {
				names := l.Names
				if len(names) == 0 {
					names = []string{"sha256:" + l.Image.ID}
				}
				for _, n := range names {
					fmt.Fprintf(env.Stdout, "Loaded image: %s\n", n)
				}
			}
			return nil
		},
	}
	c.Flags().StringVarP(&input, "input", "i", "", "read from this archive or OCI layout directory instead of stdin")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "suppress the progress output")
	return c
}

// ---- import ----

func importCmd(env Env, g *globals) *cobra.Command {
	var (
		changes []string
		message string
		quiet   bool
	)
	c := &cobra.Command{
		Use:   "import [options] PATH|URL|- [REFERENCE]",
		Short: "Import a root filesystem tarball as an image",
		Long: `Make a one-layer image from a root filesystem tarball (plain, gzip or
zstd; - reads stdin, http(s) URLs are fetched). A REFERENCE without a
registry is local: banner becomes localhost/banner:latest. --change takes
Dockerfile instructions: ` + strings.Join(change.Supported, ", ") + `.`,
		Example: `  berth import --change 'CMD ["httpd","-f","-v","-p","80","-h","/www"]' --change 'EXPOSE 80' rootfs.tar banner
  tar -C rootfs -c . | berth import - myimage:v1`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return fmt.Errorf("%q requires a tarball path and an optional reference\nSee '%s --help'", cmd.CommandPath(), cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			o := image.ImportOptions{Changes: changes, Message: message, Now: env.now()}
			if len(args) == 2 {
				if _, err := ref.ParseLocal(args[1]); err != nil {
					return err
				}
				o.Reference = args[1]
			}
			var c v1.Config
			if err := change.Apply(&c, changes); err != nil {
				return fmt.Errorf("--change: %w", err)
			}
			s, err := openImages(env, g)
			if err != nil {
				return err
			}
			if !quiet {
				o.Progress = env.Stderr
			}
			r, closeFn, err := openSource(cmd.Context(), args[0], env.Stdin)
			if err != nil {
				return err
			}
			defer closeFn()
			img, err := s.Import(cmd.Context(), r, o)
			if err != nil {
				return err
			}
			fmt.Fprintln(env.Stdout, "sha256:"+img.ID)
			return nil
		},
	}
	c.Flags().StringArrayVarP(&changes, "change", "c", nil, "apply a Dockerfile instruction ("+strings.Join(change.Supported, ", ")+")")
	c.Flags().StringVarP(&message, "message", "m", "", "commit message of the image's history entry")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "suppress the progress output")
	return c
}

func openSource(ctx context.Context, p string, stdin io.Reader) (io.Reader, func(), error) {
	switch {
	case p == "-":
		return stdin, func() {}, nil
	case strings.HasPrefix(p, "http://") || strings.HasPrefix(p, "https://"):
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p, nil)
		if err != nil {
			return nil, nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, nil, fmt.Errorf("fetch %s: %w", p, err)
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return nil, nil, fmt.Errorf("fetch %s: %s", p, resp.Status)
		}
		return resp.Body, func() { resp.Body.Close() }, nil
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, err
	}
	return f, func() { f.Close() }, nil
}

// ---- images ----

// imageRow is one `berth images` row, as Podman's templates see it.
type imageRow struct {
	img        image.Image
	Repository string
	Tag        string
	noTrunc    bool
	now        time.Time
	containers int
}

// ID is the image ID, 12 characters unless --no-trunc (then sha256:...).
func (r imageRow) ID() string {
	if r.noTrunc {
		return "sha256:" + r.img.ID
	}
	return r.img.ID[:12]
}

func (r imageRow) Digest() string { return r.img.Digest }

// Created is how long ago the image was built ("2 weeks ago").
func (r imageRow) Created() string { return humanDuration(r.now.Sub(r.img.Created)) + " ago" }

// CreatedSince is Created.
func (r imageRow) CreatedSince() string { return r.Created() }

// CreatedAt is the build time.
func (r imageRow) CreatedAt() time.Time { return r.img.Created }

// CreatedTime is the build time.
func (r imageRow) CreatedTime() time.Time { return r.img.Created }

// Size is the image's size in decimal units ("4.86 MB").
func (r imageRow) Size() string { return humanSize(r.img.Size) }

// VirtualSize is Size.
func (r imageRow) VirtualSize() string { return r.Size() }

// SharedSize is always 0 (no sharing accounted).
func (r imageRow) SharedSize() string { return humanSize(0) }

func (r imageRow) Containers() int                { return r.containers }
func (r imageRow) Labels() map[string]string      { return r.img.Config.Labels }
func (r imageRow) Names() []string                { return r.img.Names }
func (r imageRow) History() string                { return strings.Join(r.img.Names, ", ") }
func (r imageRow) Dangling() bool                 { return len(r.img.Names) == 0 }
func (r imageRow) ReadOnly() bool                 { return false }
func (r imageRow) RepoDigests() []string          { return r.img.RepoDigests }
func (r imageRow) Config() image.Config           { return r.img.Config }
func (r imageRow) Architecture() string           { return r.img.Architecture }
func (r imageRow) Os() string                     { return r.img.OS }
func (r imageRow) IsReadOnly() bool               { return false }
func (r imageRow) Layers() []string               { return r.img.Layers }
func (r imageRow) ExposedPorts() []string         { return r.img.Config.ExposedPorts }
func (r imageRow) Entrypoint() []string           { return r.img.Config.Entrypoint }
func (r imageRow) Cmd() []string                  { return r.img.Config.Cmd }
func (r imageRow) Env() []string                  { return r.img.Config.Env }
func (r imageRow) RepositoryTag() string          { return r.Repository + ":" + r.Tag }
func (r imageRow) FullID() string                 { return r.img.ID }
func (r imageRow) ParentId() string               { return "" } //nolint:revive // Podman's field name
func (r imageRow) Image() image.Image             { return r.img }
func (r imageRow) ConfigDigest() string           { return "sha256:" + r.img.ID }
func (r imageRow) Annotations() map[string]string { return nil }

// imageHeaders are Podman's column titles.
var imageHeaders = map[string]string{
	"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "Digest": "DIGEST",
	"Created": "CREATED", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "CreatedTime": "CREATED AT",
	"Size": "SIZE", "VirtualSize": "VIRTUAL SIZE", "SharedSize": "SHARED SIZE", "Containers": "CONTAINERS",
	"Labels": "LABELS", "Names": "NAMES", "History": "HISTORY", "Dangling": "DANGLING",
	"ReadOnly": "READONLY", "IsReadOnly": "READONLY", "RepoDigests": "REPO DIGESTS", "Architecture": "ARCH", "Os": "OS",
}

// imageSummary is an image in `images --format json`, Podman's
// ImageSummary fields.
type imageSummary struct {
	ID       string `json:"Id"`
	ParentID string `json:"ParentId"`
	// RepoTags is always null, as in Podman 4.3 (Names has the names).
	RepoTags    []string          `json:"RepoTags"`
	RepoDigests []string          `json:"RepoDigests"`
	Size        int64             `json:"Size"`
	SharedSize  int64             `json:"SharedSize"`
	VirtualSize int64             `json:"VirtualSize"`
	Labels      map[string]string `json:"Labels"`
	Containers  int               `json:"Containers"`
	Names       []string          `json:"Names,omitempty"`
	Digest      string            `json:"Digest,omitempty"`
	History     []string          `json:"History,omitempty"`
	Created     int64             `json:"Created"`
	CreatedAt   string            `json:"CreatedAt"`
	Dangling    bool              `json:"Dangling,omitempty"`
}

// imagesOptions are berth images' flags.
type imagesOptions struct {
	format                             string
	quiet, noTrunc, noHeading, digests bool
	all                                bool
	filters                            []string
}

func imagesCmd(env Env, g *globals) *cobra.Command {
	var o imagesOptions
	c := &cobra.Command{
		Use:   "images [options] [REPOSITORY[:TAG]]",
		Short: "List images",
		Long: `List the images in the store, newest first, one row per name (images
without a name show <none>). --format takes a Go template ('table ...'
keeps the headers) or json.`,
		Example: `  berth images
  berth images -q
  berth images --format '{{.Repository}}:{{.Tag}} {{.ID}}'
  berth images --format json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openImages(env, g)
			if err != nil {
				return err
			}
			imgs, err := s.List()
			if err != nil {
				return err
			}
			if !o.all {
				imgs = slices.DeleteFunc(imgs, func(img image.Image) bool { return img.Hidden() })
			}
			match, err := imageFilter(args, o.filters)
			if err != nil {
				return err
			}
			rows, kept, err := imageRows(s, imgs, match, o.noTrunc, env.now())
			if err != nil {
				return err
			}
			return printImages(cmd, env, s, &o, rows, kept)
		},
	}
	fl := c.Flags()
	fl.StringVar(&o.format, "format", "", "pretty-print images as JSON (json) or with a Go template, e.g. '{{.Repository}}:{{.Tag}}'")
	fl.BoolVarP(&o.quiet, "quiet", "q", false, "display only image IDs")
	fl.BoolVar(&o.noTrunc, "no-trunc", false, "do not truncate image IDs")
	fl.BoolVarP(&o.noHeading, "noheading", "n", false, "do not print headers")
	fl.BoolVar(&o.digests, "digests", false, "show digests")
	fl.BoolVarP(&o.all, "all", "a", false, "show all images, the intermediate images of builds too")
	fl.StringArrayVarP(&o.filters, "filter", "f", nil, "filter KEY=VALUE: reference (glob on name), dangling=true|false, label=KEY[=VALUE]")
	return c
}

// imageRows makes one row per image name (one <none> row for an image
// without names) and keeps those match accepts; kept lists the images
// with at least one row kept.
func imageRows(s *image.Store, imgs []image.Image, match func(imageRow) bool, noTrunc bool, now time.Time) ([]imageRow, []image.Image, error) {
	var rows []imageRow
	var kept []image.Image
	for _, img := range imgs {
		cs, err := s.Containers(img.ID)
		if err != nil {
			return nil, nil, err
		}
		var irows []imageRow
		for _, n := range img.Names {
			p, err := ref.Parse(n)
			if err != nil {
				continue
			}
			tag := p.Tag
			if tag == "" {
				tag = "<none>"
			}
			irows = append(irows, imageRow{img: img, Repository: p.Repository(), Tag: tag})
		}
		if len(irows) == 0 {
			irows = []imageRow{{img: img, Repository: "<none>", Tag: "<none>"}}
		}
		anyKept := false
		for _, r := range irows {
			r.noTrunc, r.now, r.containers = noTrunc, now, len(cs)
			if !match(r) {
				continue
			}
			rows = append(rows, r)
			anyKept = true
		}
		if anyKept {
			kept = append(kept, img)
		}
	}
	return rows, kept, nil
}

// printImages prints the rows as IDs only (-q, each once), the kept
// images as JSON, or a table or template.
func printImages(cmd *cobra.Command, env Env, s *image.Store, o *imagesOptions, rows []imageRow, kept []image.Image) error {
	switch {
	case o.quiet:
		seen := map[string]bool{}
		for _, r := range rows {
			if !seen[r.ID()] {
				seen[r.ID()] = true
				fmt.Fprintln(env.Stdout, r.ID())
			}
		}
		return nil
	case isJSON(o.format):
		out := []imageSummary{}
		for _, img := range kept {
			cs, _ := s.Containers(img.ID)
			out = append(out, summaryOf(img, len(cs)))
		}
		b, err := json.MarshalIndent(out, "", "    ")
		if err != nil {
			return err
		}
		fmt.Fprintln(env.Stdout, string(b))
		return nil
	}
	def := "{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.Created}}\t{{.Size}}"
	if o.digests {
		def = "{{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.Created}}\t{{.Size}}"
	}
	return renderList(cmd, env.Stdout, "images", o.format, def, imageHeaders, rows, o.noHeading)
}

// imageFilter builds the row filter from the REPOSITORY argument and
// --filter values.
func imageFilter(args, filters []string) (func(imageRow) bool, error) {
	var preds []func(imageRow) bool
	refMatch := func(pattern string) func(imageRow) bool {
		return func(r imageRow) bool {
			if r.Repository == "<none>" {
				return false
			}
			full := r.Repository + ":" + r.Tag
			for _, cand := range []string{full, r.Repository} {
				if ok, _ := filepath.Match(pattern, cand); ok {
					return true
				}
				// Short patterns match the last path components.
				if ok, _ := filepath.Match("*/"+pattern, cand); ok {
					return true
				}
			}
			return false
		}
	}
	if len(args) == 1 {
		pat := args[0]
		preds = append(preds, refMatch(pat))
	}
	for _, f := range filters {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return nil, fmt.Errorf("--filter %q: want KEY=VALUE (reference, dangling, label)", f)
		}
		switch k {
		case "reference":
			preds = append(preds, refMatch(v))
		case "dangling":
			want := v == "true"
			if v != "true" && v != "false" {
				return nil, fmt.Errorf("--filter dangling=%q: want true or false", v)
			}
			preds = append(preds, func(r imageRow) bool { return r.Dangling() == want })
		case "label":
			lk, lv, hasV := strings.Cut(v, "=")
			preds = append(preds, func(r imageRow) bool {
				got, ok := r.img.Config.Labels[lk]
				return ok && (!hasV || got == lv)
			})
		default:
			return nil, fmt.Errorf("--filter %q: unsupported key %q, valid: reference, dangling, label", f, k)
		}
	}
	return func(r imageRow) bool {
		for _, p := range preds {
			if !p(r) {
				return false
			}
		}
		return true
	}, nil
}

func summaryOf(img image.Image, containers int) imageSummary {
	return imageSummary{
		ID: img.ID, RepoDigests: img.RepoDigests, Size: img.Size, VirtualSize: img.Size,
		Labels: img.Config.Labels, Containers: containers, Names: img.Names, Digest: img.Digest,
		History: img.Names, Created: img.Created.Unix(), CreatedAt: img.Created.UTC().Format(time.RFC3339),
		Dangling: len(img.Names) == 0,
	}
}

// humanSize prints a size as go-units' HumanSizeWithPrecision(size, 3)
// does for Podman: decimal units, three significant digits.
func humanSize(n int64) string {
	units := []string{"B", "kB", "MB", "GB", "TB", "PB"}
	f := float64(n)
	i := 0
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	return fmt.Sprintf("%.3g %s", f, units[i])
}

// humanDuration prints a duration as go-units' HumanDuration does.
func humanDuration(d time.Duration) string {
	if s := int(d.Seconds()); s < 1 {
		return "Less than a second"
	} else if s == 1 {
		return "1 second"
	} else if s < 60 {
		return fmt.Sprintf("%d seconds", s)
	}
	if m := int(d.Minutes()); m == 1 {
		return "About a minute"
	} else if m < 60 {
		return fmt.Sprintf("%d minutes", m)
	}
	h := int(math.Round(d.Hours()))
	switch {
	case h == 1:
		return "About an hour"
	case h < 48:
		return fmt.Sprintf("%d hours", h)
	case h < 24*7*2:
		return fmt.Sprintf("%d days", h/24)
	case h < 24*30*2:
		return fmt.Sprintf("%d weeks", h/24/7)
	case h < 24*365*2:
		return fmt.Sprintf("%d months", h/24/30)
	}
	return fmt.Sprintf("%d years", int(d.Hours())/24/365)
}

// ---- rmi ----

func rmiCmd(env Env, g *globals) *cobra.Command {
	var force, all, ignore bool
	c := &cobra.Command{
		Use:   "rmi [options] IMAGE [IMAGE...]",
		Short: "Remove images",
		Long: `Remove images. A name of an image that has other names is only untagged.
An image a container's root filesystem uses is refused unless -f (its
layers then stay until the container is removed). Exit codes as Podman's:
1 when an image is not known, 2 when one is in use, 125 otherwise.`,
		Example: `  berth rmi banner
  berth rmi -f 1a2b3c`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 && !all {
				return fmt.Errorf("image name or ID must be specified\nSee '%s --help'", cmd.CommandPath())
			}
			if len(args) > 0 && all {
				return errors.New("when using the --all switch, you may not pass any images names or IDs")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openImages(env, g)
			if err != nil {
				return err
			}
			if all {
				names, err := allImageNames(s)
				if err != nil {
					return err
				}
				args = append(args, names...)
			}
			return removeImages(env, s, args, force, ignore)
		},
	}
	c.ValidArgsFunction = completeImages(env, g)
	c.Flags().BoolVarP(&force, "force", "f", false, "remove the image even if containers use it")
	c.Flags().BoolVarP(&all, "all", "a", false, "remove all images")
	c.Flags().BoolVarP(&ignore, "ignore", "i", false, "ignore errors when an image does not exist")
	return c
}

// allImageNames lists every image by name, so images with several names
// go too (by ID they would need -f; the last name deletes), and images
// without a name by ID.
func allImageNames(s *image.Store) ([]string, error) {
	imgs, err := s.List()
	if err != nil {
		return nil, err
	}
	var args []string
	for _, img := range imgs {
		if len(img.Names) == 0 {
			args = append(args, img.ID)
		}
		args = append(args, img.Names...)
	}
	return args, nil
}

// removeImages removes (or untags) each image, printing what it did and
// carrying on past errors. All errors but the last are printed; the last
// is returned with Podman's exit code: 1 when an image is not known (not
// an error with ignore), 2 when one is in use, 125 otherwise.
func removeImages(env Env, s *image.Store, args []string, force, ignore bool) error {
	var errs []error
	code := 0
	for _, a := range args {
		res, err := s.Remove(a, force)
		switch {
		case errors.Is(err, image.ErrNotFound):
			if ignore {
				continue
			}
			if code == 0 {
				code = 1
			}
		case errors.Is(err, image.ErrInUse):
			code = 2
			err = fmt.Errorf("%w: consider listing external containers and force-removing image", err)
		case err != nil:
			if code != 2 {
				code = 125
			}
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, u := range res.Untagged {
			fmt.Fprintf(env.Stdout, "Untagged: %s\n", u)
		}
		if res.Deleted != "" {
			fmt.Fprintf(env.Stdout, "Deleted: %s\n", res.Deleted)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	for _, e := range errs[:len(errs)-1] {
		fmt.Fprintf(env.Stderr, "Error: %v\n", e)
	}
	return &exitError{code: code, err: errs[len(errs)-1]}
}

// ---- tag ----

func tagCmd(env Env, g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "tag IMAGE TARGET_NAME [TARGET_NAME...]",
		Short:   "Add names to an image",
		Long:    "Add names to an image. A name without a registry is local: banner:v2 becomes localhost/banner:v2.",
		Example: `  berth tag banner banner:v2 quay.io/me/banner:1`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return fmt.Errorf("%q requires an image and at least one target name\nSee '%s --help'", cmd.CommandPath(), cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openImages(env, g)
			if err != nil {
				return err
			}
			for _, n := range args[1:] {
				if _, err := s.Tag(args[0], n); err != nil {
					return err
				}
			}
			return nil
		},
		ValidArgsFunction: completeImages(env, g),
	}
}

// completeImages completes image names.
func completeImages(env Env, g *globals) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(cmd *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
		s, err := openImages(env, g)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		imgs, err := s.List()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []string
		for _, img := range imgs {
			for _, n := range img.Names {
				if strings.HasPrefix(n, prefix) {
					out = append(out, n)
				}
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// ---- image inspect, image exists ----

// imageInspect is `image inspect` output: a subset of Podman's
// ImageInspectReport.
type imageInspect struct {
	ID           string            `json:"Id"`
	Digest       string            `json:"Digest"`
	RepoTags     []string          `json:"RepoTags"`
	RepoDigests  []string          `json:"RepoDigests"`
	Parent       string            `json:"Parent"`
	Comment      string            `json:"Comment"`
	Created      time.Time         `json:"Created"`
	Config       v1.Config         `json:"Config"`
	Version      string            `json:"Version"`
	Author       string            `json:"Author"`
	Architecture string            `json:"Architecture"`
	Os           string            `json:"Os"`
	Size         int64             `json:"Size"`
	VirtualSize  int64             `json:"VirtualSize"`
	GraphDriver  graphDriver       `json:"GraphDriver"`
	RootFS       rootFS            `json:"RootFS"`
	Labels       map[string]string `json:"Labels"`
	Annotations  map[string]string `json:"Annotations"`
	ManifestType string            `json:"ManifestType"`
	User         string            `json:"User"`
	History      []v1.History      `json:"History"`
	NamesHistory []string          `json:"NamesHistory"`
}

type graphDriver struct {
	Name string            `json:"Name"`
	Data map[string]string `json:"Data"`
}

type rootFS struct {
	Type   string   `json:"Type"`
	Layers []string `json:"Layers"`
}

func imageInspectCmd(env Env, g *globals) *cobra.Command {
	var format string
	c := &cobra.Command{
		Use:   "inspect [options] IMAGE [IMAGE...]",
		Short: "Display the details of images",
		Long:  "Display images as a JSON array (Podman's fields) or through a Go template.",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openImages(env, g)
			if err != nil {
				return err
			}
			var out []imageInspect
			var errs []error
			for _, a := range args {
				img, err := s.Lookup(a)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				ii, err := inspectImage(s, img)
				if err != nil {
					return err
				}
				out = append(out, ii)
			}
			if format != "" && !isJSON(format) {
				rpt, err := parseReport("inspect", format, nil)
				if err != nil {
					return err
				}
				if err := rpt.render(env.Stdout, out, false); err != nil {
					return err
				}
			} else {
				if out == nil {
					out = []imageInspect{}
				}
				if err := inspectJSON(env.Stdout, out); err != nil {
					return err
				}
			}
			if len(errs) > 0 {
				for _, e := range errs[:len(errs)-1] {
					fmt.Fprintf(env.Stderr, "Error: %v\n", e)
				}
				return &exitError{code: 125, err: errs[len(errs)-1]}
			}
			return nil
		},
	}
	c.ValidArgsFunction = completeImages(env, g)
	c.Flags().StringVarP(&format, "format", "f", "", "format the output with a Go template, e.g. '{{.Config.Cmd}}', or json")
	return c
}

// inspectImage builds Podman's inspect view of img.
func inspectImage(s *image.Store, img *image.Image) (imageInspect, error) {
	cf, err := s.ConfigFile(img.ID)
	if err != nil {
		return imageInspect{}, err
	}
	comment := ""
	if n := len(cf.History); n > 0 {
		comment = cf.History[n-1].Comment
	}
	repoTags := []string{}
	for _, n := range img.Names {
		if p, err := ref.Parse(n); err == nil && p.Tag != "" {
			repoTags = append(repoTags, p.Repository()+":"+p.Tag)
		}
	}
	var lowers []string
	for i := len(img.Layers) - 1; i >= 0; i-- {
		lowers = append(lowers, filepath.Join(s.Dir(), "layers", strings.TrimPrefix(img.Layers[i], "sha256:")))
	}
	rd := img.RepoDigests
	if rd == nil {
		rd = []string{}
	}
	return imageInspect{
		ID: img.ID, Digest: img.Digest, RepoTags: repoTags, RepoDigests: rd,
		Comment: comment, Created: img.Created, Config: cf.Config, Author: cf.Author,
		Architecture: cf.Architecture, Os: cf.OS, Size: img.Size, VirtualSize: img.Size,
		GraphDriver: graphDriver{Name: "overlay", Data: map[string]string{"LowerDir": strings.Join(lowers, ":")}},
		RootFS:      rootFS{Type: "layers", Layers: img.Layers}, Labels: cf.Config.Labels,
		Annotations: map[string]string{}, ManifestType: "application/vnd.oci.image.manifest.v1+json",
		User: cf.Config.User, History: cf.History, NamesHistory: img.Names,
	}, nil
}

func imageExistsCmd(env Env, g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "exists IMAGE",
		Short: "Check whether an image exists (exit 0) or not (exit 1)",
		Args:  exactArgs(1, "IMAGE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openImages(env, g)
			if err != nil {
				return err
			}
			if _, err := s.Lookup(args[0]); err != nil {
				if errors.Is(err, image.ErrNotFound) {
					return &exitError{code: 1}
				}
				return err
			}
			return nil
		},
	}
}

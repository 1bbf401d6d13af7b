package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"

	"github.com/berthnet/berth/internal/engine"
	"github.com/berthnet/berth/internal/image"
	"github.com/berthnet/berth/internal/image/ref"
	"github.com/berthnet/berth/internal/monitor"
	"github.com/berthnet/berth/internal/runopts"
)

// Engine is what a build needs of the container engine; *engine.Engine
// implements it.
type Engine interface {
	Create(o engine.CreateOptions) (*engine.Container, []string, error)
	Start(ref string, so engine.StartOptions) (*engine.Container, error)
	Wait(ref string) (*engine.Container, error)
	RemoveWith(ref string, force, volumes bool) (*engine.Container, error)
	Copy(src, dst engine.CopyEnd, o engine.CopyOptions) error
	AttachSocket(id string) string
}

// Builder builds images with an engine and its image store.
type Builder struct {
	Engine Engine
	Images *image.Store
	// CachePath is the layer cache's file ("": no cache).
	CachePath string
	// Now is the clock of image creation times (nil: time.Now).
	Now func() time.Time
}

// Options describe one build.
type Options struct {
	Context    *Context
	Dockerfile []byte
	// Tags name the image (a short name goes to localhost).
	Tags      []string
	BuildArgs map[string]string
	Labels    map[string]string
	// Target is the stage to build (default: the last).
	Target  string
	NoCache bool
	// Network is the network of RUN containers.
	Network runopts.NetMode
	// Pull fetches a base image missing from the store (nil: a missing
	// image fails the build).
	Pull func(ctx context.Context, ref string) error
	// Out receives the progress and RUN output (nil: none).
	Out   io.Writer
	Style Style
}

// Result is a built image.
type Result struct {
	ID string
	// Names are the full names the tags gave.
	Names []string
	// UnusedArgs are build arguments no ARG declared.
	UnusedArgs []string
}

// build is one build in progress.
type build struct {
	b      *Builder
	o      Options
	plan   *Plan
	p      printer
	cache  *cache
	n      int
	total  int
	stages []string // image ID of each stage built so far
	used   map[string]bool
	// made are the images of the steps (cached ones too).
	made []string
}

// Build runs the Dockerfile and tags the result.
func (b *Builder) Build(ctx context.Context, o Options) (*Result, error) {
	for _, t := range o.Tags {
		if _, err := ref.ParseLocal(t); err != nil {
			return nil, fmt.Errorf("tag %s: %w", t, err)
		}
	}
	plan, err := Parse(o.Dockerfile, o.BuildArgs, o.Target, o.Labels)
	if err != nil {
		return nil, err
	}
	out := o.Out
	if out == nil {
		out = io.Discard
	}
	r := &build{b: b, o: o, plan: plan, p: printer{w: out, style: o.Style}, total: plan.Steps(), used: map[string]bool{}}
	if !o.NoCache {
		r.cache = &cache{path: b.CachePath}
	}
	maps.Copy(r.used, mapKeys(plan.MetaArgs))
	for _, st := range plan.Stages {
		id, err := r.stage(ctx, st)
		if err != nil {
			return nil, err
		}
		r.stages = append(r.stages, id)
	}
	return r.finish()
}

// familiar is how Docker prints tags: as given, ":latest" added when
// they have no tag.
func familiar(tags []string) []string {
	out := make([]string, len(tags))
	for i, t := range tags {
		last := t[strings.LastIndex(t, "/")+1:]
		if !strings.ContainsAny(last, ":@") {
			t += ":latest"
		}
		out[i] = t
	}
	return out
}

func mapKeys(m map[string]string) map[string]bool {
	out := map[string]bool{}
	for k := range m {
		out[k] = true
	}
	return out
}

// finish tags the last stage's image.
func (r *build) finish() (*Result, error) {
	id := r.stages[len(r.stages)-1]
	if id == "" {
		return nil, errors.New("the build made no image (FROM scratch alone)")
	}
	if err := r.markIntermediate(id); err != nil {
		return nil, err
	}
	res := &Result{ID: id}
	for _, t := range r.o.Tags {
		name, err := r.b.Images.Tag(id, t)
		if err != nil {
			return nil, err
		}
		res.Names = append(res.Names, name)
	}
	for k := range r.o.BuildArgs {
		if !r.used[k] {
			res.UnusedArgs = append(res.UnusedArgs, k)
		}
	}
	slices.Sort(res.UnusedArgs)
	if r.o.Style == Docker {
		r.p.done(id, familiar(r.o.Tags))
	} else {
		r.p.done(id, res.Names)
	}
	return res, nil
}

// markIntermediate hides the step images but the result from image
// lists (until a name is given to one).
func (r *build) markIntermediate(final string) error {
	for _, id := range r.made {
		if id != final {
			if err := r.b.Images.SetIntermediate(id, true); err != nil {
				return err
			}
		}
	}
	return r.b.Images.SetIntermediate(final, false)
}

func (r *build) now() time.Time {
	if r.b.Now != nil {
		return r.b.Now().UTC()
	}
	return time.Now().UTC()
}

// step prints the next step's line.
func (r *build) step(text string) {
	r.n++
	r.p.step(r.n, r.total, text)
}

func (r *build) last() bool { return r.n == r.total }

// stage builds one stage and returns its image ID ("" for an empty
// scratch stage).
func (r *build) stage(ctx context.Context, st Stage) (string, error) {
	r.step(st.Source)
	cur, cfg, err := r.base(ctx, st.Base)
	if err != nil {
		return "", err
	}
	r.p.from(cur)
	s := newState(cfg, r.plan.Escape)
	for _, c := range st.Commands {
		r.step(instructionText(c))
		if cur, err = r.command(ctx, s, cur, c); err != nil {
			return "", err
		}
	}
	return cur, nil
}

// stageRef finds an earlier stage by name or index.
func (r *build) stageRef(name string) (string, bool) {
	for i, st := range r.plan.Stages[:len(r.stages)] {
		if st.Name != "" && strings.EqualFold(st.Name, name) {
			return r.stages[i], true
		}
	}
	if i, err := strconv.Atoi(name); err == nil && i >= 0 && i < len(r.stages) {
		return r.stages[i], true
	}
	return "", false
}

// base resolves a FROM: an earlier stage, scratch, or an image (pulled
// when missing and Pull is set).
func (r *build) base(ctx context.Context, name string) (string, v1.Config, error) {
	if id, ok := r.stageRef(name); ok {
		return r.imageConfig(id)
	}
	if name == "scratch" {
		return "", v1.Config{}, nil
	}
	id, err := r.image(ctx, name)
	if err != nil {
		return "", v1.Config{}, err
	}
	return r.imageConfig(id)
}

// image resolves an image name, pulling it when missing.
func (r *build) image(ctx context.Context, name string) (string, error) {
	img, err := r.b.Images.Lookup(name)
	if errors.Is(err, image.ErrNotFound) && r.o.Pull != nil {
		if err := r.o.Pull(ctx, name); err != nil {
			return "", err
		}
		img, err = r.b.Images.Lookup(name)
	}
	if err != nil {
		return "", fmt.Errorf("image %s: %w", name, err)
	}
	return img.ID, nil
}

func (r *build) imageConfig(id string) (string, v1.Config, error) {
	if id == "" {
		return "", v1.Config{}, nil
	}
	cf, err := r.b.Images.ConfigFile(id)
	if err != nil {
		return "", v1.Config{}, err
	}
	if len(cf.Config.OnBuild) > 0 {
		return "", v1.Config{}, fmt.Errorf("image %s has ONBUILD triggers: %w", short(id), ErrUnsupported)
	}
	return id, cf.Config, nil
}

// command runs one instruction on image cur and returns the new image.
func (r *build) command(ctx context.Context, s *state, cur string, c instructions.Command) (string, error) {
	if err := s.expand(c); err != nil {
		return "", err
	}
	switch c := c.(type) {
	case *instructions.ArgCommand:
		s.declare(c, r.o.BuildArgs, r.plan.MetaArgs, r.used)
		return r.meta(ctx, s, cur, c)
	case *instructions.RunCommand:
		return r.run(ctx, s, cur, c)
	case *instructions.CopyCommand:
		return r.copy(ctx, s, cur, c, copySpec{srcs: c.SourcePaths, dest: c.DestPath, chown: c.Chown, from: c.From})
	case *instructions.AddCommand:
		return r.copy(ctx, s, cur, c, copySpec{srcs: c.SourcePaths, dest: c.DestPath, chown: c.Chown, add: true})
	}
	if _, err := s.apply(c); err != nil {
		return "", fmt.Errorf("%s: %w", strings.ToUpper(c.Name()), err)
	}
	return r.meta(ctx, s, cur, c)
}

// cached looks a step up in the cache.
func (r *build) cached(key string) (string, bool) {
	id := r.cache.get(key)
	if id == "" {
		return "", false
	}
	if _, err := r.b.Images.Lookup(id); err != nil {
		return "", false
	}
	r.p.cached(id)
	r.p.committed(id, r.last(), r.o.Tags)
	r.made = append(r.made, id)
	return id, true
}

// done records a step's new image.
func (r *build) done(key, id string) (string, error) {
	if err := r.cache.put(key, id); err != nil {
		return "", fmt.Errorf("record the build cache: %w", err)
	}
	r.p.committed(id, r.last(), r.o.Tags)
	r.made = append(r.made, id)
	return id, nil
}

// meta commits a metadata instruction: the configuration changes, the
// layers stay.
func (r *build) meta(ctx context.Context, s *state, cur string, c instructions.Command) (string, error) {
	key := cacheKey(cur, instructionText(c), s.argsKey(), "")
	if id, ok := r.cached(key); ok {
		return id, nil
	}
	base, err := r.v1Image(cur)
	if err != nil {
		return "", err
	}
	img, err := r.withConfig(base, s, v1.History{CreatedBy: historyLine(c, nil), EmptyLayer: true})
	if err != nil {
		return "", err
	}
	stored, err := r.b.Images.Add(ctx, img, nil, nil)
	if err != nil {
		return "", fmt.Errorf("store the image of %s: %w", strings.ToUpper(c.Name()), err)
	}
	return r.done(key, stored.ID)
}

// v1Image is image id ("": empty) for go-containerregistry.
func (r *build) v1Image(id string) (v1.Image, error) {
	if id == "" {
		return empty.Image, nil
	}
	img, _, err := r.b.Images.V1Image(id)
	return img, err
}

// withConfig gives base the stage's configuration and one more history
// entry.
func (r *build) withConfig(base v1.Image, s *state, h v1.History) (v1.Image, error) {
	cf, err := base.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	now := v1.Time{Time: r.now()}
	cf.Config, cf.Created = s.cfg, now
	if s.author != "" {
		cf.Author = s.author
	}
	if cf.Architecture == "" {
		cf.Architecture, cf.OS = runtime.GOARCH, "linux"
	}
	h.Created = now
	cf.History = append(cf.History, h)
	return mutate.ConfigFile(base, cf)
}

// run runs a RUN instruction in a container and commits it.
func (r *build) run(ctx context.Context, s *state, cur string, c *instructions.RunCommand) (string, error) {
	argv := s.shellCommand(c.ShellDependantCmdLine)
	key := cacheKey(cur, instructionText(c), s.argsKey(), "")
	if id, ok := r.cached(key); ok {
		return id, nil
	}
	if cur == "" {
		return "", errors.New("RUN needs a base image with a shell (the image is empty)")
	}
	ctr, _, err := r.b.Engine.Create(engine.CreateOptions{
		Image: cur, Entrypoint: []string{}, Args: argv, Env: s.runEnv(),
		WorkingDir: s.cfg.WorkingDir, User: s.cfg.User, Net: r.o.Network,
	})
	if err != nil {
		return "", fmt.Errorf("RUN: create a container: %w", err)
	}
	id := ctr.Config.ID
	defer func() { _, _ = r.b.Engine.RemoveWith(id, true, true) }()
	r.p.running(id)
	code, err := r.attach(id)
	if err != nil {
		return "", fmt.Errorf("RUN: %w", err)
	}
	if code != 0 {
		return "", &RunError{Command: argv, Code: code, style: r.o.Style}
	}
	img, err := r.b.Images.Commit(ctx, id, image.CommitOptions{
		ContainerConfig: &s.cfg, CreatedBy: historyLine(c, argv), Author: s.author, Now: r.now(),
	})
	if err != nil {
		return "", fmt.Errorf("RUN: %w", err)
	}
	r.p.removed(id)
	return r.done(key, img.ID)
}

// attach starts the container with its output going to the build's and
// returns its exit code.
func (r *build) attach(id string) (int, error) {
	var conn net.Conn
	_, err := r.b.Engine.Start(id, engine.StartOptions{Attach: func() error {
		c, err := monitor.DialUnix(r.b.Engine.AttachSocket(id))
		conn = c
		return err
	}})
	if err != nil {
		if conn != nil {
			conn.Close()
		}
		return 0, err
	}
	defer conn.Close()
	for {
		stream, data, err := monitor.ReadFrame(conn)
		if err != nil {
			break
		}
		switch stream {
		case monitor.StreamStdout, monitor.StreamStderr:
			_, _ = r.p.w.Write(data)
		case monitor.StreamExit:
			var code int
			if _, err := fmt.Sscan(string(data), &code); err == nil {
				return code, nil
			}
		}
	}
	c, err := r.b.Engine.Wait(id)
	if err != nil {
		return 0, err
	}
	return c.State.ExitCode, nil
}

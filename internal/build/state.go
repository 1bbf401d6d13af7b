package build

import (
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"

	"github.com/berthnet/berth/internal/image/change"
	"github.com/berthnet/berth/internal/runspec"
)

// defaultShell runs the shell forms of RUN, CMD and ENTRYPOINT when no
// SHELL instruction or image says otherwise.
var defaultShell = []string{"/bin/sh", "-c"}

// state is a stage under construction: its image configuration and the
// build arguments in scope.
type state struct {
	cfg    v1.Config
	author string
	// args are the ARGs declared in the stage, with their values.
	args map[string]string
	// cmdSet: the stage set CMD (ENTRYPOINT then keeps it).
	cmdSet bool
	lex    *shell.Lex
}

func newState(cfg v1.Config, escape rune) *state {
	c := cfg
	c.Env = slices.Clone(cfg.Env)
	c.Labels = maps.Clone(cfg.Labels)
	return &state{cfg: c, args: map[string]string{}, lex: shell.NewLex(escape)}
}

// env is what words are expanded with: the ARGs in scope, then ENV
// (which wins).
func (s *state) env() envGetter {
	m := maps.Clone(s.args)
	for _, e := range s.cfg.Env {
		k, v, _ := strings.Cut(e, "=")
		m[k] = v
	}
	return m
}

// runEnv is the environment of a RUN: the image's, and the ARGs in
// scope the image does not set.
func (s *state) runEnv() []string {
	var extra []string
	for _, k := range envGetter(s.args).Keys() {
		extra = append(extra, k+"="+s.args[k])
	}
	return runspec.MergeEnv(extra, s.cfg.Env)
}

// argsKey is the ARGs in scope as sorted KEY=value lines (part of every
// cache key: they change what RUN and expansions do).
func (s *state) argsKey() string {
	var b strings.Builder
	for _, k := range envGetter(s.args).Keys() {
		b.WriteString(k + "=" + s.args[k] + "\n")
	}
	return b.String()
}

// expand replaces $VAR and ${VAR} forms in the instruction's words.
func (s *state) expand(c instructions.Command) error {
	env := s.env()
	word := func(w string) (string, error) {
		out, _, err := s.lex.ProcessWord(w, env)
		return out, err
	}
	if e, ok := c.(instructions.SupportsSingleWordExpansion); ok {
		if err := e.Expand(word); err != nil {
			return fmt.Errorf("%s: %w", strings.ToUpper(c.Name()), err)
		}
	}
	if e, ok := c.(*instructions.ExposeCommand); ok {
		for i, p := range e.Ports {
			var err error
			if e.Ports[i], err = word(p); err != nil {
				return fmt.Errorf("EXPOSE: %w", err)
			}
		}
	}
	return nil
}

// declare handles ARG: a build argument's value, else the stage's
// default, else a meta ARG's value.
func (s *state) declare(a *instructions.ArgCommand, buildArgs, meta map[string]string, used map[string]bool) {
	for _, kv := range a.Args {
		used[kv.Key] = true
		switch v, ok := buildArgs[kv.Key]; {
		case ok:
			s.args[kv.Key] = v
		case kv.Value != nil:
			s.args[kv.Key] = *kv.Value
		default:
			s.args[kv.Key] = meta[kv.Key]
		}
	}
}

// shellCommand is the command of a RUN, CMD or ENTRYPOINT: the exec
// form as given, the shell form through the shell.
func (s *state) shellCommand(c instructions.ShellDependantCmdLine) []string {
	if !c.PrependShell {
		return slices.Clone(c.CmdLine)
	}
	sh := s.cfg.Shell
	if len(sh) == 0 {
		sh = defaultShell
	}
	return append(slices.Clone(sh), strings.Join(c.CmdLine, " "))
}

// apply changes the configuration for a metadata instruction; it
// reports false for instructions that are not one (RUN, COPY, ADD, ARG).
func (s *state) apply(c instructions.Command) (bool, error) {
	switch c := c.(type) {
	case *instructions.EnvCommand:
		for _, kv := range c.Env {
			s.cfg.Env = runspec.MergeEnv(s.cfg.Env, []string{kv.Key + "=" + kv.Value})
		}
	case *instructions.LabelCommand:
		s.label(c.Labels)
	case *optionLabel:
		s.label(c.keyValues())
	case *instructions.MaintainerCommand:
		s.author = c.Maintainer
	case *instructions.CmdCommand:
		s.cfg.Cmd, s.cmdSet = s.shellCommand(c.ShellDependantCmdLine), true
	case *instructions.EntrypointCommand:
		s.cfg.Entrypoint = s.shellCommand(c.ShellDependantCmdLine)
		if !s.cmdSet {
			s.cfg.Cmd = nil
		}
	case *instructions.WorkdirCommand:
		s.cfg.WorkingDir = s.workdir(c.Path)
	case *instructions.UserCommand:
		s.cfg.User = c.User
	case *instructions.ShellCommand:
		s.cfg.Shell = slices.Clone(c.Shell)
	case *instructions.HealthCheckCommand:
		s.healthcheck(c)
	default:
		return s.applyChange(c)
	}
	return true, nil
}

// applyChange applies EXPOSE, VOLUME and STOPSIGNAL through the --change
// rules of commit and import.
func (s *state) applyChange(c instructions.Command) (bool, error) {
	var chg string
	switch c := c.(type) {
	case *instructions.ExposeCommand:
		chg = "EXPOSE " + strings.Join(c.Ports, " ")
	case *instructions.VolumeCommand:
		js, _ := json.Marshal(c.Volumes)
		chg = "VOLUME " + string(js)
	case *instructions.StopSignalCommand:
		chg = "STOPSIGNAL " + c.Signal
	default:
		return false, nil
	}
	if err := change.Apply(&s.cfg, []string{chg}); err != nil {
		return true, err
	}
	return true, nil
}

func (s *state) label(kvs instructions.KeyValuePairs) {
	if s.cfg.Labels == nil {
		s.cfg.Labels = map[string]string{}
	}
	for _, kv := range kvs {
		s.cfg.Labels[kv.Key] = kv.Value
	}
}

// workdir resolves a WORKDIR against the current one.
func (s *state) workdir(p string) string {
	if !path.IsAbs(p) {
		p = path.Join("/", s.cfg.WorkingDir, p)
	}
	return path.Clean(p)
}

func (s *state) healthcheck(c *instructions.HealthCheckCommand) {
	h := c.Health
	if h == nil {
		s.cfg.Healthcheck = nil
		return
	}
	s.cfg.Healthcheck = &v1.HealthConfig{
		Test: slices.Clone(h.Test), Interval: h.Interval, Timeout: h.Timeout,
		StartPeriod: h.StartPeriod, Retries: h.Retries,
	}
}

// historyLine is the history entry of an instruction, in Docker's
// classic shape: RUN as its shell command, others as "#(nop)".
func historyLine(c instructions.Command, run []string) string {
	if run != nil {
		return strings.Join(run, " ")
	}
	return "/bin/sh -c #(nop) " + instructionText(c)
}

// instructionText is the instruction as written in the Dockerfile.
func instructionText(c instructions.Command) string {
	if st, ok := c.(fmt.Stringer); ok {
		return st.String()
	}
	return strings.ToUpper(c.Name())
}

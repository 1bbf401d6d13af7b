// Package build builds images from Dockerfiles, as Docker's classic
// builder and `podman build` do: BuildKit's own parser reads the
// Dockerfile; every instruction becomes an image, RUN in a container of
// the engine and COPY/ADD into one, each committed through the image
// store; metadata instructions change the image configuration alone. A
// layer cache keyed by the parent image, the instruction, the build
// arguments in scope and the content of copied files answers repeated
// steps ("Using cache").
//
// The pure parts (parsing, ARG and ENV expansion, the configuration
// instructions, .dockerignore, sources and destinations of COPY, cache
// keys) need no root; Builder drives the engine.
package build

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// ErrUnsupported wraps instructions and options berth does not build.
var ErrUnsupported = errors.New("not supported")

// Plan is a parsed Dockerfile: the stages to build, up to the target.
type Plan struct {
	Stages []Stage
	// Escape is the escape character (\ or `).
	Escape rune
	// MetaArgs are the ARGs declared before the first FROM, with their
	// values (build arguments applied).
	MetaArgs map[string]string
	// Warnings are the parser's.
	Warnings []string
}

// Stage is one FROM and the instructions after it.
type Stage struct {
	// Name is the AS name ("" without one); Base the FROM image or
	// stage, meta ARGs expanded; Source the FROM line.
	Name, Base, Source string
	Commands           []instructions.Command
}

// Steps is the number of steps of the plan: every FROM and every
// instruction.
func (p *Plan) Steps() int {
	n := 0
	for _, s := range p.Stages {
		n += 1 + len(s.Commands)
	}
	return n
}

// Parse reads a Dockerfile, keeps the stages up to target (the last
// stage when empty), expands meta ARGs in FROM lines and appends a LABEL
// instruction for labels (as the classic builder does for --label).
func Parse(dockerfile []byte, args map[string]string, target string, labels map[string]string) (*Plan, error) {
	res, err := parser.Parse(bytes.NewReader(dockerfile))
	if err != nil {
		return nil, fmt.Errorf("parse Dockerfile: %w", err)
	}
	stages, metaArgs, err := instructions.Parse(res.AST, linter.New(&linter.Config{SkipAll: true}))
	if err != nil {
		return nil, fmt.Errorf("parse Dockerfile: %w", err)
	}
	if len(stages) == 0 {
		return nil, errors.New("the Dockerfile has no FROM instruction")
	}
	p := &Plan{Escape: res.EscapeToken, MetaArgs: map[string]string{}}
	for _, w := range res.Warnings {
		p.Warnings = append(p.Warnings, w.Short)
	}
	lex := shell.NewLex(res.EscapeToken)
	if err := p.metaArgs(lex, metaArgs, args); err != nil {
		return nil, err
	}
	last, err := targetIndex(stages, target)
	if err != nil {
		return nil, err
	}
	for _, s := range stages[:last+1] {
		st, err := p.stage(lex, s)
		if err != nil {
			return nil, err
		}
		p.Stages = append(p.Stages, st)
	}
	if len(labels) > 0 {
		p.Stages[last].Commands = append(p.Stages[last].Commands, labelCommand(labels))
	}
	return p, nil
}

// metaArgs evaluates the ARGs before the first FROM.
func (p *Plan) metaArgs(lex *shell.Lex, metaArgs []instructions.ArgCommand, args map[string]string) error {
	for _, a := range metaArgs {
		for _, kv := range a.Args {
			v, ok := args[kv.Key]
			if !ok && kv.Value != nil {
				var err error
				if v, _, err = lex.ProcessWord(*kv.Value, envGetter(p.MetaArgs)); err != nil {
					return fmt.Errorf("ARG %s: %w", kv.Key, err)
				}
				ok = true
			}
			if ok {
				p.MetaArgs[kv.Key] = v
			} else {
				p.MetaArgs[kv.Key] = ""
			}
		}
	}
	return nil
}

// stage checks a stage's instructions and expands its base name.
func (p *Plan) stage(lex *shell.Lex, s instructions.Stage) (Stage, error) {
	base, _, err := lex.ProcessWord(s.BaseName, envGetter(p.MetaArgs))
	if err != nil {
		return Stage{}, fmt.Errorf("FROM %s: %w", s.BaseName, err)
	}
	if base == "" {
		return Stage{}, fmt.Errorf("FROM %s: the base name is empty", s.BaseName)
	}
	if s.Platform != "" {
		return Stage{}, fmt.Errorf("FROM --platform: %w", ErrUnsupported)
	}
	for _, c := range s.Commands {
		if err := supported(c); err != nil {
			return Stage{}, err
		}
	}
	return Stage{Name: strings.ToLower(s.Name), Base: base, Source: s.SourceCode, Commands: s.Commands}, nil
}

// targetIndex is the index of the target stage (by name, or the last).
func targetIndex(stages []instructions.Stage, target string) (int, error) {
	if target == "" {
		return len(stages) - 1, nil
	}
	if i, ok := instructions.HasStage(stages, target); ok {
		return i, nil
	}
	return 0, fmt.Errorf("target stage %q could not be found", target)
}

// supported refuses what the builder cannot do, naming it.
func supported(c instructions.Command) error {
	switch c := c.(type) {
	case *instructions.OnbuildCommand:
		return fmt.Errorf("ONBUILD: %w", ErrUnsupported)
	case *instructions.RunCommand:
		if len(c.Files) > 0 {
			return fmt.Errorf("RUN with a here-document: %w", ErrUnsupported)
		}
		if len(c.FlagsUsed) > 0 {
			return fmt.Errorf("RUN --%s: %w", c.FlagsUsed[0], ErrUnsupported)
		}
	case *instructions.CopyCommand:
		if len(c.SourceContents) > 0 {
			return fmt.Errorf("COPY with a here-document: %w", ErrUnsupported)
		}
		if c.Chmod != "" || c.Link || c.Parents || len(c.ExcludePatterns) > 0 {
			return fmt.Errorf("COPY --chmod, --link, --parents and --exclude: %w", ErrUnsupported)
		}
	case *instructions.AddCommand:
		if len(c.SourceContents) > 0 {
			return fmt.Errorf("ADD with a here-document: %w", ErrUnsupported)
		}
		if c.Chmod != "" || c.Link || c.Checksum != "" || len(c.ExcludePatterns) > 0 || c.KeepGitDir != nil {
			return fmt.Errorf("ADD --chmod, --link, --checksum, --exclude and --keep-git-dir: %w", ErrUnsupported)
		}
	}
	return nil
}

// labelCommand is LABEL k=v ... for --label, in key order.
func labelCommand(labels map[string]string) instructions.Command {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var code strings.Builder
	code.WriteString("LABEL")
	var kvs instructions.KeyValuePairs
	for _, k := range keys {
		kvs = append(kvs, instructions.KeyValuePair{Key: k, Value: labels[k]})
		fmt.Fprintf(&code, " %s=%s", strconv.Quote(k), strconv.Quote(labels[k]))
	}
	return &optionLabel{code: code.String(), labels: kvs}
}

// optionLabel is the LABEL instruction --label adds: never expanded.
type optionLabel struct {
	code   string
	labels instructions.KeyValuePairs
}

func (l *optionLabel) Name() string                          { return "label" }
func (l *optionLabel) String() string                        { return l.code }
func (l *optionLabel) Location() []parser.Range              { return nil }
func (l *optionLabel) Comments() []string                    { return nil }
func (l *optionLabel) keyValues() instructions.KeyValuePairs { return l.labels }

// envGetter looks names up in a map.
type envGetter map[string]string

func (m envGetter) Get(k string) (string, bool) { v, ok := m[k]; return v, ok }
func (m envGetter) Keys() []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

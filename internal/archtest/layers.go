package archtest

import (
	"fmt"
	"sort"
	"strings"
)

// Layer is a package's place in the dependency direction
// cmd -> front-ends -> core -> kernel adapters -> model: a package may
// import its own layer and the layers below it, never one above.
type Layer int

// The layers, lowest first. TestSupport stands beside them.
const (
	Model Layer = iota + 1
	Kernel
	Core
	FrontEnd
	Cmd
	// TestSupport holds helpers for tests and benchmarks: they may import
	// any layer and the kernel libraries, and only tests import them.
	TestSupport
)

func (l Layer) String() string {
	switch l {
	case Model:
		return "model"
	case Kernel:
		return "kernel adapter"
	case Core:
		return "core"
	case FrontEnd:
		return "front-end"
	case Cmd:
		return "cmd"
	case TestSupport:
		return "test support"
	}
	return fmt.Sprintf("layer(%d)", int(l))
}

// Package is one package of the module as the checker sees it: its path
// relative to the module root and the import paths of its non-test files.
type Package struct {
	Path    string
	Imports []string
}

// Pending is a known violation, allowed until a refactor removes it.
type Pending struct {
	Pkg    string // relative path of the importing package
	Import string // the imported path as written (module-relative for the module's own packages)
	Reason string
}

// Rules are the layering rules of one module.
type Rules struct {
	Module     string           // the module path, e.g. github.com/berthnet/berth
	Layers     map[string]Layer // every package (relative path) and its layer
	KernelLibs []string         // import paths (and their subpackages) only kernel adapters may import
	Pending    []Pending
	// TableFile names the file that holds Layers and Pending, for messages.
	TableFile string
}

// Check returns the violations of the rules by pkgs, one message each,
// sorted: packages without a layer, layer entries without a package,
// imports of a higher layer, of test support, of kernel adapters by
// front-ends and cmd, of kernel libraries outside the kernel adapters,
// and pending entries that no longer occur or give no reason.
func (r Rules) Check(pkgs []Package) []string {
	var out []string
	seen := map[string]bool{}
	used := map[[2]string]bool{}
	pending := map[[2]string]bool{}
	for _, p := range r.Pending {
		pending[[2]string{p.Pkg, p.Import}] = true
		if strings.TrimSpace(p.Reason) == "" {
			out = append(out, fmt.Sprintf("pending entry %s -> %s gives no reason; add one in %s", p.Pkg, p.Import, r.TableFile))
		}
	}
	for _, p := range pkgs {
		seen[p.Path] = true
		l, ok := r.Layers[p.Path]
		if !ok {
			out = append(out, fmt.Sprintf("%s has no layer: add it to the layers table in %s (model, kernel adapter, core, front-end, cmd or test support)", p.Path, r.TableFile))
			continue
		}
		for _, imp := range p.Imports {
			msg := r.violation(p.Path, l, imp)
			if msg == "" {
				continue
			}
			key := [2]string{p.Path, r.rel(imp)}
			if pending[key] {
				used[key] = true
				continue
			}
			out = append(out, msg)
		}
	}
	for path := range r.Layers {
		if !seen[path] {
			out = append(out, fmt.Sprintf("%s is in the layers table but is no package of the module: remove it from %s", path, r.TableFile))
		}
	}
	for _, p := range r.Pending {
		if !used[[2]string{p.Pkg, p.Import}] {
			out = append(out, fmt.Sprintf("pending entry %s -> %s no longer occurs: remove it from %s", p.Pkg, p.Import, r.TableFile))
		}
	}
	sort.Strings(out)
	return out
}

// rel returns an import path relative to the module root for the module's
// own packages, and unchanged otherwise.
func (r Rules) rel(imp string) string {
	if imp == r.Module {
		return "."
	}
	return strings.TrimPrefix(imp, r.Module+"/")
}

func (r Rules) own(imp string) bool {
	return imp == r.Module || strings.HasPrefix(imp, r.Module+"/")
}

// violation explains why a package of layer l may not import imp, or
// returns "".
func (r Rules) violation(path string, l Layer, imp string) string {
	if r.own(imp) {
		to, ok := r.Layers[r.rel(imp)]
		if !ok {
			return "" // reported as a package without a layer
		}
		return ownViolation(path, l, r.rel(imp), to)
	}
	if r.kernelLib(imp) && l != Kernel && l != TestSupport {
		return fmt.Sprintf("%s (%s) imports %s: only kernel adapters import kernel libraries", path, l, imp)
	}
	return ""
}

func ownViolation(path string, l Layer, imp string, to Layer) string {
	switch {
	case l == TestSupport:
		return ""
	case to == TestSupport:
		return fmt.Sprintf("%s (%s) imports %s (test support): only tests import test support", path, l, imp)
	case to > l:
		return fmt.Sprintf("%s (%s) imports %s (%s): nothing imports a higher layer", path, l, imp, to)
	case (l == FrontEnd || l == Cmd) && to == Kernel:
		return fmt.Sprintf("%s (%s) imports %s (kernel adapter): front-ends and commands reach the kernel only through the core", path, l, imp)
	}
	return ""
}

func (r Rules) kernelLib(imp string) bool {
	for _, k := range r.KernelLibs {
		if imp == k || strings.HasPrefix(imp, k+"/") {
			return true
		}
	}
	return false
}

// Layout rules, checked by go list and grep.
package archtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

type pkg struct {
	ImportPath string
	Doc        string
	Imports    []string
	Deps       []string
	Name       string
}

// goTool is the go command of the toolchain running the test, which need
// not be on PATH (sudo resets it).
func goTool() string {
	//lint:ignore SA1019 the toolchain that builds the test is the one to ask
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return "go"
}

var listed struct {
	once sync.Once
	pkgs []pkg
	err  error
}

// list returns the module's packages as go list reports them (run once).
func list(t *testing.T) []pkg {
	t.Helper()
	listed.once.Do(func() { listed.pkgs, listed.err = goList() })
	if listed.err != nil {
		t.Fatal(listed.err)
	}
	return listed.pkgs
}

func goList() ([]pkg, error) {
	cmd := exec.Command(goTool(), "list", "-json", Berth.Module+"/...")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s list: %w", goTool(), err)
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	var ps []pkg
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			return nil, fmt.Errorf("decode go list output: %w", err)
		}
		ps = append(ps, p)
	}
	return ps, nil
}

// modulePackages returns the module's packages as the layer checker sees
// them.
func modulePackages(t *testing.T) []Package {
	var out []Package
	for _, p := range list(t) {
		out = append(out, Package{Path: Berth.rel(p.ImportPath), Imports: p.Imports})
	}
	return out
}

func TestLayers(t *testing.T) {
	for _, v := range Berth.Check(modulePackages(t)) {
		t.Error(v)
	}
}

func TestReadmeLayoutListsEveryPackage(t *testing.T) {
	root := filepath.Join("..", "..")
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, p := range modulePackages(t) {
		paths = append(paths, p.Path)
	}
	exists := func(rel string) bool {
		fi, err := os.Stat(filepath.Join(root, filepath.FromSlash(rel)))
		return err == nil && fi.IsDir()
	}
	for _, v := range LayoutProblems(string(readme), paths, exists) {
		t.Error(v)
	}
}

func TestEveryPackageHasADocComment(t *testing.T) {
	for _, p := range list(t) {
		if strings.TrimSpace(p.Doc) == "" {
			t.Errorf("%s has no package doc comment", p.ImportPath)
		}
	}
}

// Pure packages: models, formats and planning. They must not reach netlink,
// nftables or raw syscalls.
var pure = []string{
	"internal/network",
	"internal/netconf",
	"internal/aardvarkconf",
	"internal/firewall",
	"internal/netstore",
	"internal/containersconf",
	"internal/image/ref",
	"internal/image/change",
	"internal/runopts",
	"internal/runspec",
	"internal/hostsfile",
	"internal/resolvconf",
	"internal/overlay/lease",
	"internal/doctor",
}

var kernel = []string{
	"github.com/vishvananda/netlink",
	"github.com/vishvananda/netns",
	"github.com/google/nftables",
	"github.com/berthnet/berth/internal/netns",
	"github.com/berthnet/berth/internal/link",
}

func TestPurePackagesStayPure(t *testing.T) {
	for _, p := range list(t) {
		isPure := false
		for _, s := range pure {
			if p.ImportPath == "github.com/berthnet/berth/"+s {
				isPure = true
			}
		}
		if !isPure {
			continue
		}
		for _, d := range p.Deps {
			for _, k := range kernel {
				if d == k || strings.HasPrefix(d, k+"/") {
					t.Errorf("%s depends on %s; pure packages must not touch the kernel", p.ImportPath, d)
				}
			}
		}
	}
}

// Only internal/netns switches namespaces.
func TestOnlyNetnsCallsSetns(t *testing.T) {
	out, _ := exec.Command("grep", "-rln", "--include=*.go", "unix.Setns\\|unix.Unshare", "../../").Output()
	for _, f := range strings.Fields(string(out)) {
		if !strings.Contains(f, "internal/netns/") && !strings.HasSuffix(f, "_test.go") {
			t.Errorf("%s switches namespaces; only internal/netns may", f)
		}
	}
}

package archtest

import (
	"strings"
	"testing"
)

// synthetic is a small module with one package per layer.
func synthetic() Rules {
	return Rules{
		Module:     "example.com/m",
		TableFile:  "table.go",
		KernelLibs: []string{"github.com/vishvananda/netlink", "github.com/google/nftables"},
		Layers: map[string]Layer{
			"cmd/m":      Cmd,
			"front":      FrontEnd,
			"core":       Core,
			"kern":       Kernel,
			"model":      Model,
			"helpertest": TestSupport,
		},
	}
}

// clean is a graph that keeps every rule.
func clean() []Package {
	return []Package{
		{Path: "cmd/m", Imports: []string{"example.com/m/front", "example.com/m/core", "fmt"}},
		{Path: "front", Imports: []string{"example.com/m/core", "example.com/m/model"}},
		{Path: "core", Imports: []string{"example.com/m/kern", "example.com/m/model"}},
		{Path: "kern", Imports: []string{"example.com/m/model", "github.com/vishvananda/netlink/nl", "github.com/google/nftables"}},
		{Path: "model", Imports: []string{"net/netip"}},
		{Path: "helpertest", Imports: []string{"example.com/m/kern", "example.com/m/core", "github.com/vishvananda/netlink"}},
	}
}

// with returns the clean graph with extra imports added to one package.
func with(path string, imports ...string) []Package {
	g := clean()
	for i := range g {
		if g[i].Path == path {
			g[i].Imports = append(g[i].Imports, imports...)
		}
	}
	return g
}

func TestCleanGraphPasses(t *testing.T) {
	if v := synthetic().Check(clean()); len(v) != 0 {
		t.Fatalf("clean graph: %q", v)
	}
}

func TestViolationsFail(t *testing.T) {
	for _, tc := range []struct {
		name string
		pkgs []Package
		want string
	}{
		{"front-end imports netlink", with("front", "github.com/vishvananda/netlink"), "front (front-end) imports github.com/vishvananda/netlink: only kernel adapters"},
		{"front-end imports a netlink subpackage", with("front", "github.com/vishvananda/netlink/nl"), "front (front-end) imports github.com/vishvananda/netlink/nl"},
		{"core imports nftables", with("core", "github.com/google/nftables/expr"), "core (core) imports github.com/google/nftables/expr"},
		{"front-end imports a kernel adapter", with("front", "example.com/m/kern"), "front (front-end) imports kern (kernel adapter)"},
		{"command imports a kernel adapter", with("cmd/m", "example.com/m/kern"), "cmd/m (cmd) imports kern (kernel adapter)"},
		{"kernel adapter imports the core", with("kern", "example.com/m/core"), "kern (kernel adapter) imports core (core): nothing imports a higher layer"},
		{"model imports a kernel adapter", with("model", "example.com/m/kern"), "model (model) imports kern (kernel adapter): nothing imports a higher layer"},
		{"core imports a front-end", with("core", "example.com/m/front"), "core (core) imports front (front-end)"},
		{"core imports test support", with("core", "example.com/m/helpertest"), "core (core) imports helpertest (test support): only tests import test support"},
		{"unlisted package", append(clean(), Package{Path: "newpkg"}), "newpkg has no layer: add it to the layers table in table.go"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := synthetic().Check(tc.pkgs)
			if len(v) != 1 || !strings.Contains(v[0], tc.want) {
				t.Fatalf("got %q, want one violation containing %q", v, tc.want)
			}
		})
	}
}

func TestPendingAllowsListedViolationOnly(t *testing.T) {
	r := synthetic()
	r.Pending = []Pending{{"front", "github.com/vishvananda/netlink", "not yet moved"}, {"front", "kern", "not yet moved"}}
	if v := r.Check(with("front", "github.com/vishvananda/netlink", "example.com/m/kern")); len(v) != 0 {
		t.Fatalf("pending violations reported: %q", v)
	}
	v := r.Check(with("front", "github.com/vishvananda/netlink", "example.com/m/kern", "github.com/google/nftables"))
	if len(v) != 1 || !strings.Contains(v[0], "front (front-end) imports github.com/google/nftables") {
		t.Fatalf("unlisted violation next to pending ones: got %q", v)
	}
}

func TestStalePendingEntryFails(t *testing.T) {
	r := synthetic()
	r.Pending = []Pending{{"front", "kern", "not yet moved"}}
	v := r.Check(clean())
	if len(v) != 1 || !strings.Contains(v[0], "pending entry front -> kern no longer occurs: remove it from table.go") {
		t.Fatalf("got %q", v)
	}
}

func TestPendingEntryNeedsAReason(t *testing.T) {
	r := synthetic()
	r.Pending = []Pending{{"front", "kern", " "}}
	v := r.Check(with("front", "example.com/m/kern"))
	if len(v) != 1 || !strings.Contains(v[0], "gives no reason") {
		t.Fatalf("got %q", v)
	}
}

func TestTableEntryWithoutPackageFails(t *testing.T) {
	var g []Package
	for _, p := range clean() {
		if p.Path != "model" {
			g = append(g, p)
		}
	}
	v := synthetic().Check(g)
	if len(v) != 1 || !strings.Contains(v[0], "model is in the layers table but is no package") {
		t.Fatalf("got %q", v)
	}
}

const readme = "# m\n\nintro mentioning cmd/m/ in passing\n\n## Layout\n\n```\ncmd/m/       the command\n- `core/`    the core\nkern/        netlink\n             (continuation naming nothing/)\nmodel/, more  a line whose first word is not an entry\n```\n\n## After\n\nfront/ outside the section\n"

func TestLayoutEntries(t *testing.T) {
	got, ok := LayoutEntries(readme)
	want := []string{"cmd/m", "core", "kern"}
	if !ok || strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("got %q %v, want %q", got, ok, want)
	}
}

func TestLayoutProblems(t *testing.T) {
	exists := func(p string) bool { return p != "kern" }
	v := LayoutProblems(readme, []string{"cmd/m", "core", "front"}, exists)
	want := []string{
		`README.md's Layout section does not list front: add the line "front/  <what it holds>"`,
		"README.md's Layout section lists kern/, which does not exist: remove or correct that line",
	}
	if strings.Join(v, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(v, "\n"), strings.Join(want, "\n"))
	}
	if v := LayoutProblems("# m\n\n## Usage\n", nil, exists); len(v) != 1 || !strings.Contains(v[0], "no \"## Layout\" section") {
		t.Fatalf("README without Layout: got %q", v)
	}
}

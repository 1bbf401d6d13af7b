// Layout rules, checked by go list and grep.
package archtest

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

type pkg struct {
	ImportPath string
	Doc        string
	Imports    []string
	Deps       []string
	Name       string
}

func list(t *testing.T) []pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", "github.com/berthnet/berth/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var ps []pkg
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	return ps
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

package reliability

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var longFlag = flag.Bool("long", false, "run the long reliability mode (as BERTH_RELIABILITY=long)")

// long reports whether the suite runs in long mode.
func long() bool { return *longFlag || os.Getenv("BERTH_RELIABILITY") == "long" }

// scale returns the short or the long figure.
func scale(short, lng int) int {
	if long() {
		return lng
	}
	return short
}

// figures prints a scenario's line of figures on stdout and, when
// BERTH_RELIABILITY_REPORT names a file, appends it there.
func figures(t *testing.T, scenario, format string, args ...any) {
	t.Helper()
	mode := "short"
	if long() {
		mode = "long"
	}
	line := fmt.Sprintf("reliability: %s mode=%s %s", scenario, mode, fmt.Sprintf(format, args...))
	fmt.Println(line)
	if p := os.Getenv("BERTH_RELIABILITY_REPORT"); p != "" {
		f, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Errorf("report file: %v", err)
			return
		}
		defer f.Close()
		fmt.Fprintln(f, line)
	}
}

// bins holds the programs under test, built once per test binary.
type bins struct {
	dir      string
	berth    string
	netavark string
	aardvark string
	cni      string // directory of the CNI plugins (CNI_PATH)
}

var (
	buildOnce sync.Once
	built     bins
	buildErr  error
)

// cniPlugins are the names the berth-cni binary answers to.
var cniPlugins = []string{"berth-bridge", "berth-ipam", "berth-portmap", "berth-dns", "loopback"}

// programs builds berth, netavark, aardvark-dns and the CNI plugins into a
// temporary directory (once) and returns where they are.
func programs(t *testing.T) bins {
	t.Helper()
	buildOnce.Do(func() { built, buildErr = build() })
	if buildErr != nil {
		t.Fatalf("build: %v", buildErr)
	}
	return built
}

func build() (bins, error) {
	dir, err := os.MkdirTemp("", "berth-reliability-")
	if err != nil {
		return bins{}, err
	}
	b := bins{dir: dir, berth: filepath.Join(dir, "berth"), netavark: filepath.Join(dir, "netavark"),
		aardvark: filepath.Join(dir, "aardvark-dns"), cni: filepath.Join(dir, "cni")}
	if err := os.Mkdir(b.cni, 0o755); err != nil {
		return b, err
	}
	for out, pkg := range map[string]string{b.berth: "cmd/berth", b.netavark: "cmd/netavark", b.aardvark: "cmd/aardvark-dns",
		filepath.Join(b.cni, "berth-cni"): "cmd/berth-cni"} {
		cmd := exec.Command(goTool(), "build", "-o", out, "./"+pkg)
		cmd.Dir = sourceRoot()
		if msg, err := cmd.CombinedOutput(); err != nil {
			return b, fmt.Errorf("go build %s: %w\n%s", pkg, err, msg)
		}
	}
	for _, p := range cniPlugins {
		if err := os.Link(filepath.Join(b.cni, "berth-cni"), filepath.Join(b.cni, p)); err != nil {
			return b, err
		}
	}
	return b, nil
}

// sourceRoot is the module the programs are built from: this one, or the
// tree BERTH_RELIABILITY_SOURCE names (to measure another build, say a
// branch checked out elsewhere, with this suite).
func sourceRoot() string {
	if d := os.Getenv("BERTH_RELIABILITY_SOURCE"); d != "" {
		return d
	}
	return filepath.Join("..", "..")
}

// goTool is the go command: $GO, else the toolchain's usual place, else
// PATH's.
func goTool() string {
	if g := os.Getenv("GO"); g != "" {
		return g
	}
	if _, err := os.Stat("/usr/local/go/bin/go"); err == nil && !onPath("go") {
		return "/usr/local/go/bin/go"
	}
	return "go"
}

func onPath(name string) bool {
	_, err := exec.LookPath(name)
	return err == nil
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if built.dir != "" && strings.HasPrefix(filepath.Base(built.dir), "berth-reliability-") {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berthnet/berth/internal/engine"
)

// goldenCase is one capture of Podman 4.3.1 (testdata/podman/capture.sh).
type goldenCase struct {
	name   string
	setup  string
	args   []string
	rc     int
	stdout string
	stderr string
	files  map[string]string
}

func loadGolden(t *testing.T) []goldenCase {
	t.Helper()
	setups := map[string]string{}
	cases, err := os.ReadFile("testdata/podman/cases.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(cases), "\n") {
		f := strings.SplitN(l, "\t", 3)
		if len(f) == 3 && !strings.HasPrefix(l, "#") {
			setups[f[0]] = f[1]
		}
	}
	paths, _ := filepath.Glob("testdata/podman/golden/*.golden")
	var out []goldenCase
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		gc := goldenCase{name: strings.TrimSuffix(filepath.Base(p), ".golden"), files: map[string]string{}}
		gc.setup = setups[gc.name]
		section := ""
		var buf []string
		flush := func() {
			text := strings.Join(buf, "\n")
			if len(buf) > 0 {
				text += "\n"
			}
			switch {
			case section == "args":
				gc.args = shellWords(strings.TrimSpace(text))
			case section == "rc":
				gc.rc, _ = strconv.Atoi(strings.TrimSpace(text))
			case section == "stdout":
				gc.stdout = text
			case section == "stderr":
				gc.stderr = text
			case strings.HasPrefix(section, "file "):
				gc.files[strings.TrimPrefix(section, "file ")] = text
			}
			buf = nil
		}
		for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			if strings.HasPrefix(l, "-- ") && strings.HasSuffix(l, " --") {
				flush()
				section = strings.TrimSuffix(strings.TrimPrefix(l, "-- "), " --")
				continue
			}
			buf = append(buf, l)
		}
		flush()
		out = append(out, gc)
	}
	return out
}

// shellWords splits a command line with single-quoted words.
func shellWords(s string) []string {
	var out []string
	var cur strings.Builder
	inQ, have := false, false
	for _, r := range s {
		switch {
		case r == '\'':
			inQ = !inQ
			have = true
		case r == ' ' && !inQ:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}

// testWorld is a berth environment with private directories.
type testWorld struct {
	cfg, rundir string
	conf        string
	env         Env
}

var testNow = time.Date(2026, 11, 27, 15, 0, 0, 0, time.UTC)

func newTestWorld(t *testing.T, setup string) *testWorld {
	t.Helper()
	d := t.TempDir()
	tw := &testWorld{cfg: filepath.Join(d, "nets"), rundir: filepath.Join(d, "run"), conf: filepath.Join(d, "containers.conf")}
	if err := os.MkdirAll(tw.cfg, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tw.conf, []byte("[network]\nnetwork_backend = \"netavark\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if setup == "fixtures" {
		fx, _ := filepath.Glob("testdata/podman/fixtures/*.json")
		for _, f := range fx {
			b, _ := os.ReadFile(f)
			if err := os.WriteFile(filepath.Join(tw.cfg, filepath.Base(f)), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	tw.env = Env{
		Getenv: func(k string) string {
			switch k {
			case "CONTAINERS_CONF":
				return tw.conf
			case "BERTH_ROOT":
				return filepath.Join(d, "root")
			case "BERTH_RUNROOT":
				return filepath.Join(d, "runroot")
			}
			return ""
		},
		Home:  d,
		Links: func() (HostLinks, error) { return HostLinks{Names: []string{"lo"}}, nil },
		Now:   func() time.Time { return testNow },
	}
	return tw
}

// run runs berth with the world's directories and returns rc, stdout, stderr.
func (tw *testWorld) run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := tw.env
	env.Stdout, env.Stderr = &out, &errb
	if env.Stdin == nil {
		env.Stdin = strings.NewReader("")
	}
	full := append([]string{"--network-config-dir", tw.cfg, "--network-run-dir", tw.rundir}, args...)
	rc := Run(context.Background(), full, env)
	return rc, out.String(), errb.String()
}

// deviations are where berth deliberately differs from Podman 4.3.1: the
// case, and berth's own stderr (or "*rc=N" lines and output checks below).
// Each is listed in README.md's `berth network` section.
var deviations = map[string]struct {
	rc     int
	stderr string // substring berth prints instead
}{
	// Features of newer Podman (4.4-5.x) that berth has.
	"create_dns":              {0, ""},
	"create_ignore":           {0, ""},
	"create_interface_name":   {0, ""},
	"create_route":            {0, ""},
	"create_opt_metric":       {0, ""},
	"create_opt_vrf":          {0, ""},
	"create_opt_ndr":          {0, ""},
	"create_isolate_strict":   {0, ""},
	"create_docker_opts":      {0, ""},
	"create_ipvlan":           {0, ""},
	"create_macvlan_nosubnet": {0, ""},
	// DNS is never served on macvlan networks: dns_enabled is stored false
	// (Podman 5 does the same), and an internal macvlan network gets no
	// gateway (it has no default route either).
	"create_macvlan":          {0, ""},
	"create_macvlan_mode":     {0, ""},
	"create_macvlan_internal": {0, ""},
	"update":                  {0, ""},
	"ls_list_alias":           {0, ""},
	"ls_noheading":            {0, ""},
	// Clearer messages (flag, value, what would be valid).
	"create_mtu_abc":          {125, "option mtu=abc: not a number (want an MTU such as 1500, or 0 for the default)"},
	"create_isolate_bad":      {125, "option isolate=maybe: want true, false or strict"},
	"create_driver_bad":       {125, "unsupported driver foo (want bridge, macvlan or ipvlan): invalid argument"},
	"create_ipam_bad":         {125, `unsupported ipam driver "foo" (want host-local, dhcp or none)`},
	"create_ipam_dhcp":        {125, "dhcp ipam driver needs a bridge with -o mode=unmanaged"},
	"create_macvlan_mode_bad": {125, `unknown macvlan mode "foo" (want bridge, private, vepa, passthru)`},
	"ls_filter_bad":           {125, `invalid filter "foo" (want name, id, driver, label, label!, until, dangling)`},
	"ls_format_bad":           {125, "can't evaluate field Nope in type cli.listRow"},
	"update_noflags":          {125, ""},
}

var (
	idRE      = regexp.MustCompile(`"id": "[0-9a-f]{64}"`)
	createdRE = regexp.MustCompile(`"created": "[^"]*"`)
)

func normaliseFile(s string) string {
	return createdRE.ReplaceAllString(idRE.ReplaceAllString(s, `"id": "ID"`), `"created": "CREATED"`)
}

func dropWarnings(s string) string {
	var out []string
	for _, l := range strings.SplitAfter(s, "\n") {
		if !strings.Contains(l, "level=WARN") && l != "" {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}

func sortLines(s string) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	sort.Strings(l)
	return strings.Join(l, "\n")
}

// TestGoldenAgainstPodman runs every captured Podman 4.3.1 case through
// berth on the same files and compares exit code, stdout, stderr and the
// files written.
func TestGoldenAgainstPodman(t *testing.T) {
	cases := loadGolden(t)
	if len(cases) < 100 {
		t.Fatalf("only %d golden cases", len(cases))
	}
	for _, gc := range cases {
		t.Run(gc.name, func(t *testing.T) {
			tw := newTestWorld(t, gc.setup)
			if len(gc.args) == 0 || gc.args[0] != "network" {
				t.Fatalf("bad args %q", gc.args)
			}
			rc, stdout, stderr := tw.run(t, gc.args...)
			// The capture drops Podman's warnings about skipped files; so
			// does the comparison.
			stderr = dropWarnings(stderr)
			dev, isDev := deviations[gc.name]
			if isDev {
				if rc != dev.rc {
					t.Errorf("deviation: rc %d, want %d (stderr %q)", rc, dev.rc, stderr)
				}
				if dev.stderr != "" && !strings.Contains(stderr, dev.stderr) {
					t.Errorf("deviation: stderr %q, want it to contain %q", stderr, dev.stderr)
				}
				return
			}
			if rc != gc.rc {
				t.Errorf("rc %d, want %d (stderr %q)", rc, gc.rc, stderr)
			}
			want, got := gc.stdout, stdout
			if strings.HasPrefix(gc.name, "prune") {
				want, got = sortLines(want), sortLines(got)
			}
			if got != want {
				t.Errorf("stdout differs\n--- berth\n%s--- podman 4.3.1\n%s", got, want)
			}
			wantErr := strings.ReplaceAll(gc.stderr, "podman", "berth")
			if strings.Contains(gc.stderr, "default network podman") || strings.Contains(gc.stderr, "name or ID") {
				wantErr = gc.stderr
			}
			if stderr != wantErr {
				t.Errorf("stderr differs\n--- berth\n%s--- podman 4.3.1\n%s", stderr, gc.stderr)
			}
			for name, content := range gc.files {
				b, err := os.ReadFile(filepath.Join(tw.cfg, name))
				if err != nil {
					t.Errorf("podman wrote %s, berth did not: %v", name, err)
					continue
				}
				if normaliseFile(string(b)) != normaliseFile(content) {
					t.Errorf("%s differs\n--- berth\n%s--- podman 4.3.1\n%s", name, b, content)
				}
			}
		})
	}
}

// attachedRecords returns the engine's records with attachments (engine
// containers and registered namespaces) under root.
func attachedRecords(t *testing.T, root, runRoot string) []*engine.Container {
	t.Helper()
	e, err := engine.New(engine.EngineConfig{Root: root, RunRoot: runRoot})
	if err != nil {
		t.Fatal(err)
	}
	all, err := e.Attached()
	if err != nil {
		t.Fatal(err)
	}
	return all
}

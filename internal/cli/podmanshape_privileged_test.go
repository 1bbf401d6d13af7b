package cli

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/berthnet/berth/internal/nettest"
)

// engineRunner runs one engine's CLI: stdout, stderr and the exit code.
type engineRunner func(stdin string, args ...string) (string, string, int)

// podmanRunner runs Podman 4.3.1 in a network namespace of its own on
// private storage, with berth as its netavark; the test is skipped
// without podman.
func podmanRunner(t *testing.T, p *etopo) engineRunner {
	t.Helper()
	if _, err := exec.LookPath("podman"); err != nil {
		t.Skip("podman is not installed")
	}
	ns := nettest.NewNS(t, nettest.RandName("pm"))
	d := t.TempDir()
	helpers := filepath.Join(d, "helpers")
	b, err := os.ReadFile(p.bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(helpers, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"netavark", "aardvark-dns"} {
		if err := os.WriteFile(filepath.Join(helpers, name), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(d, "containers.conf")
	// The capabilities are those of Podman's shipped containers.conf, as
	// berth's.
	body := fmt.Sprintf(`[containers]
default_ulimits = ["nofile=10000:10000", "nproc=10000:10000"]
default_capabilities = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
helper_binaries_dir = [%q]
[network]
network_config_dir = %q
`, helpers, filepath.Join(d, "nets"))
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	// Podman 4.3.1 gives netavark --config /run/containers/networks, which
	// cannot be changed: Podman runs in a mount namespace of this test's
	// where this test's directory is bound there, so the machine's stays
	// untouched.
	mnt := privateNetworkRunDir(t, filepath.Join(d, "netrun"))
	run := func(stdin string, args ...string) (string, string, int) {
		full := append([]string{"--mount=" + mnt, "--net=" + ns.Path(), "--", "podman", "--root", filepath.Join(d, "r"),
			"--runroot", filepath.Join(d, "rr"), "--tmpdir", filepath.Join(d, "t")}, args...)
		cmd := exec.Command("nsenter", full...)
		cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+conf)
		cmd.Stdin = strings.NewReader(stdin)
		var so, se strings.Builder
		cmd.Stdout, cmd.Stderr = &so, &se
		err := cmd.Run()
		return so.String(), se.String(), exitCode(err)
	}
	t.Cleanup(func() {
		run("", "rm", "-a", "-f", "-t", "0")
		run("", "pod", "rm", "-a", "-f")
		if _, se, rc := run("", "system", "reset", "--force"); rc != 0 {
			t.Logf("podman system reset: %s", se)
		}
	})
	return run
}

// privateNetworkRunDir starts a process holding a new mount namespace in
// which directories under dir are bound over /run/containers/networks
// (netavark's --config) and /run/netns (where Podman puts its containers'
// network namespaces), and returns the path of that namespace. The
// process is stopped at the test's end, after the cleanups registered
// later (which may still use the namespace), and mount points this test
// had to create are removed again.
func privateNetworkRunDir(t *testing.T, dir string) string {
	t.Helper()
	var binds []string
	for _, target := range []string{"/run/containers/networks", "/run/netns"} {
		src := filepath.Join(dir, filepath.Base(target))
		if err := os.MkdirAll(src, 0o755); err != nil {
			t.Fatal(err)
		}
		createMountPoint(t, target)
		binds = append(binds, src, target)
	}
	holder := exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "--", "sh", "-c",
		`while [ $# -gt 0 ]; do mount --bind "$1" "$2" || exit 1; shift 2; done; echo ready; exec sleep 100000`, "holder"}, binds...)...)
	out, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	holder.Stderr = os.Stderr
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		holder.Process.Kill()
		holder.Wait()
	})
	line := make([]byte, 6)
	if _, err := io.ReadFull(out, line); err != nil || string(line) != "ready\n" {
		t.Fatalf("mount namespace for Podman's run directories: %q %v", line, err)
	}
	return fmt.Sprintf("/proc/%d/ns/mnt", holder.Process.Pid)
}

// createMountPoint creates the directory path and those above it that are
// missing, and removes them (when still empty) at the test's end.
func createMountPoint(t *testing.T, path string) {
	t.Helper()
	var created []string
	for p := path; p != "/"; p = filepath.Dir(p) {
		if _, err := os.Stat(p); err == nil {
			break
		}
		created = append(created, p)
	}
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, p := range created { // deepest first
			os.Remove(p)
		}
	})
}

// berthRunner runs berth in the topology's host namespace.
func berthRunner(p *etopo) engineRunner {
	return func(stdin string, args ...string) (string, string, int) {
		full := append([]string{"--net=" + p.host.Path(), "--", p.bin, "--network-config-dir", p.cfg, "--network-run-dir", p.run, "--root", p.root, "--runroot", p.runRoot}, args...)
		cmd := exec.Command("nsenter", full...)
		cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+p.conf)
		cmd.Stdin = strings.NewReader(stdin)
		var so, se strings.Builder
		cmd.Stdout, cmd.Stderr = &so, &se
		err := cmd.Run()
		return so.String(), se.String(), exitCode(err)
	}
}

// engineScenario sets up the same containers in an engine: an image busy (not hex: no container ID prefix)
// (the busybox root filesystem imported), a pod pp publishing 8081, a
// container web with a label and port 8080, a pod member inpod, and a
// container done that exited 3.
func engineScenario(t *testing.T, name string, run engineRunner, tarball string) {
	t.Helper()
	steps := []struct {
		args []string
		rc   int
	}{
		{[]string{"import", tarball, "busy"}, 0},
		{[]string{"pod", "create", "--name", "pp", "-p", "8081:81"}, 0},
		{[]string{"run", "-d", "--name", "web", "-p", "8080:80", "-l", "a=b", "busy", "sleep", "1000"}, 0},
		{[]string{"run", "-d", "--pod", "pp", "--name", "inpod", "busy", "sleep", "1000"}, 0},
		{[]string{"run", "--name", "done", "busy", "sh", "-c", "exit 3"}, 3},
	}
	for _, s := range steps {
		if _, se, rc := run("", s.args...); rc != s.rc {
			t.Fatalf("%s %s: rc %d, want %d: %s", name, strings.Join(s.args, " "), rc, s.rc, se)
		}
	}
}

// rootfsTar packs the busybox root filesystem for import.
func rootfsTar(t *testing.T, rootfs string) string {
	t.Helper()
	tarball := filepath.Join(t.TempDir(), "bb.tar")
	if out, err := exec.Command("tar", "-C", rootfs, "-cf", tarball, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	return tarball
}

// byName indexes a ps --format json list by container name (the infra
// container as "infra": its name holds the pod's ID).
func byName(t *testing.T, what, s string) map[string]any {
	t.Helper()
	out := map[string]any{}
	for _, e := range mustJSON(t, what, s).([]any) {
		m := e.(map[string]any)
		name := m["Names"].([]any)[0].(string)
		if m["IsInfra"] == true {
			name = "infra"
		}
		out[name] = m
	}
	return out
}

// TestPrivilegedPodmanShapes runs one scenario in Podman 4.3.1 and in
// berth and compares the JSON keys and value types of ps, inspect, images
// and pod ps, the containers filters select, and the exit codes of error
// cases.
func TestPrivilegedPodmanShapes(t *testing.T) {
	p := newETopo(t)
	pod := podmanRunner(t, p)
	ber := berthRunner(p)
	tarball := rootfsTar(t, p.rootfs)
	engineScenario(t, "podman", pod, tarball)
	engineScenario(t, "berth", ber, tarball)

	t.Run("ps", func(t *testing.T) {
		po, _, _ := pod("", "ps", "-a", "--format", "json")
		bo, _, _ := ber("", "ps", "-a", "--format", "json")
		pm, bm := byName(t, "podman ps", po), byName(t, "berth ps", bo)
		if len(pm) != 4 || len(bm) != 4 {
			t.Fatalf("containers: podman %d, berth %d", len(pm), len(bm))
		}
		for name, want := range pm {
			for _, d := range shapeDiff(name, want, bm[name], everywhere) {
				t.Error(d)
			}
		}
		web := bm["web"].(map[string]any)
		if web["Image"] != "localhost/busy:latest" || len(web["Id"].(string)) != 64 || web["Labels"].(map[string]any)["a"] != "b" {
			t.Errorf("berth's web: %v", web)
		}
		if d := bm["done"].(map[string]any); d["ExitCode"] != 3.0 || d["Exited"] != true || d["State"] != "exited" {
			t.Errorf("berth's done: %v", d)
		}
	})
	t.Run("inspect", func(t *testing.T) {
		for _, c := range [][]string{{"inspect", "web"}, {"inspect", "busy"}, {"inspect", "--type", "pod", "pp"}, {"inspect", "--type", "image", "busy"}, {"container", "inspect", "inpod"}} {
			po, pe, prc := pod("", c...)
			bo, be, brc := ber("", c...)
			if prc != 0 || brc != 0 {
				t.Errorf("%v: podman rc %d %s, berth rc %d %s", c, prc, pe, brc, be)
				continue
			}
			for _, d := range shapeDiff("", mustJSON(t, "podman", po), mustJSON(t, "berth", bo), only("[]", "[].State", "[].GraphDriver", "[].RootFS", "[].Config", "[].NetworkSettings", "[].NetworkSettings.Networks", "[].NetworkSettings.Networks.podman", "[].HostConfig", "[].HostConfig.RestartPolicy", "[].HostConfig.LogConfig")) {
				t.Errorf("%v: %s", c, d)
			}
		}
	})
	t.Run("host config, capabilities, restart and health", func(t *testing.T) {
		// The same flags give the same HostConfig keys and types, and the
		// same capabilities, restart policy and health check.
		args := []string{"create", "--name", "flags", "--restart", "on-failure:2", "--cap-add", "net_admin,sys_time", "--cap-drop", "chown",
			"--health-cmd", "test -e /tmp/ok", "--health-interval", "disable", "--health-retries", "2", "--health-start-period", "1s",
			"--health-on-failure", "kill", "--tmpfs", "/scratch", "busy", "sleep", "1000"}
		for name, run := range map[string]engineRunner{"podman": pod, "berth": ber} {
			if _, se, rc := run("", args...); rc != 0 {
				t.Fatalf("%s create: %d %s", name, rc, se)
			}
		}
		po, _, _ := pod("", "inspect", "flags")
		bo, _, _ := ber("", "inspect", "flags")
		for _, d := range shapeDiff("", mustJSON(t, "podman", po), mustJSON(t, "berth", bo), only("[]", "[].State", "[].State.Health", "[].Config", "[].Config.Healthcheck", "[].HostConfig", "[].HostConfig.RestartPolicy", "[].HostConfig.LogConfig")) {
			t.Error(d)
		}
		format := "{{json .EffectiveCaps}} {{json .BoundingCaps}} {{json .HostConfig.CapAdd}} {{json .HostConfig.CapDrop}} {{json .HostConfig.RestartPolicy}} " +
			"{{.RestartCount}} {{json .Config.Healthcheck}} {{.Config.HealthcheckOnFailureAction}} {{len .HostConfig.Tmpfs}} {{json .State.Health}}"
		po, _, _ = pod("", "inspect", "--format", format, "flags")
		bo, _, _ = ber("", "inspect", "--format", format, "flags")
		if po != bo {
			t.Errorf("inspect:\npodman %s\nberth  %s", po, bo)
		}
		for _, run := range []engineRunner{pod, ber} {
			run("", "rm", "-f", "flags")
		}
	})
	t.Run("pod member's networks", func(t *testing.T) {
		args := []string{"inspect", "--format", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}} {{.Pod}}", "inpod"}
		po, _, _ := pod("", args...)
		bo, _, _ := ber("", args...)
		if !strings.HasPrefix(po, "podman ") || !strings.HasPrefix(bo, "podman ") || len(strings.TrimSpace(bo)) != len("podman ")+64 {
			t.Errorf("podman %q, berth %q", po, bo)
		}
	})
	t.Run("images and pod ps", func(t *testing.T) {
		po, _, _ := pod("", "images", "--format", "json", "busy")
		bo, _, _ := ber("", "images", "--format", "json", "busy")
		for _, d := range shapeDiff("images", mustJSON(t, "podman", po), mustJSON(t, "berth", bo), everywhere) {
			t.Error(d)
		}
		po, _, _ = pod("", "pod", "ps", "--format", "json")
		bo, _, _ = ber("", "pod", "ps", "--format", "json")
		for _, d := range shapeDiff("pod ps", mustJSON(t, "podman", po), mustJSON(t, "berth", bo), everywhere) {
			t.Error(d)
		}
	})
	t.Run("volumes", func(t *testing.T) {
		for name, run := range map[string]engineRunner{"podman": pod, "berth": ber} {
			if _, se, rc := run("", "volume", "create", "--label", "k=v", "data"); rc != 0 {
				t.Fatalf("%s volume create: %d %s", name, rc, se)
			}
		}
		for _, c := range [][]string{{"volume", "ls", "--format", "json"}, {"volume", "inspect", "data"}, {"inspect", "--type", "volume", "data"}} {
			po, pe, prc := pod("", c...)
			bo, be, brc := ber("", c...)
			if prc != 0 || brc != 0 {
				t.Errorf("%v: podman rc %d %s, berth rc %d %s", c, prc, pe, brc, be)
				continue
			}
			for _, d := range shapeDiff(strings.Join(c, " "), mustJSON(t, "podman", po), mustJSON(t, "berth", bo), everywhere) {
				t.Error(d)
			}
		}
		format := []string{"volume", "ls", "--format", "{{.Driver}} {{.Name}} {{.Labels}}", "--filter", "label=k=v"}
		if po, bo := first(pod("", format...)), first(ber("", format...)); po != bo {
			t.Errorf("volume ls template: podman %q, berth %q", po, bo)
		}
		for _, run := range []engineRunner{pod, ber} {
			run("", "volume", "rm", "data")
		}
	})
	t.Run("filters", func(t *testing.T) {
		for _, f := range []string{"pod=pp", "label=a=b", "exited=3", "status=exited", "status=running", "name=we", "network=podman", "id=0"} {
			args := []string{"ps", "-a", "--filter", f, "--format", "{{.Names}} {{.IsInfra}}"}
			po, _, prc := pod("", args...)
			bo, _, brc := ber("", args...)
			if pn, bn := psNames(po), psNames(bo); prc != brc || (pn != bn && f != "id=0") {
				t.Errorf("--filter %s: podman %d %q, berth %d %q", f, prc, pn, brc, bn)
			}
		}
		for _, args := range [][]string{{"ps", "--latest", "--format", "{{.Names}}"}, {"ps", "-a", "--last", "2", "--sort", "names", "--format", "{{.Names}}"}} {
			po, _, _ := pod("", args...)
			bo, _, _ := ber("", args...)
			if po != bo || bo == "" {
				t.Errorf("%v: podman %q, berth %q", args, po, bo)
			}
		}
	})
	t.Run("tables and templates", func(t *testing.T) {
		for _, args := range [][]string{{"ps", "-a"}, {"ps", "-a", "--pod"}, {"pod", "ps"}, {"images"}} {
			po, _, _ := pod("", args...)
			bo, _, _ := ber("", args...)
			if ph, bh := headerCols(po), headerCols(bo); ph != bh {
				t.Errorf("%v: podman's columns %q, berth's %q", args, ph, bh)
			}
		}
		for _, args := range [][]string{
			{"pod", "ps", "--format", "{{.Name}} {{.Status}} {{.NumberOfContainers}} {{.ContainerStatuses}} {{.Networks}}"},
			{"ps", "-a", "--filter", "name=^(web|inpod|done)$", "--sort", "names", "--format", "{{.Names}} {{.Image}} {{.Command}} {{.Ports}} {{.ExitCode}} {{.Exited}} {{.Networks}} {{.Labels}} {{.IsInfra}} {{len .Pod}}"},
		} {
			po, _, _ := pod("", args...)
			bo, _, _ := ber("", args...)
			if po != bo || bo == "" {
				t.Errorf("%v:\npodman %q\nberth  %q", args, po, bo)
			}
		}
	})
	t.Run("exit codes", func(t *testing.T) {
		for _, c := range []struct {
			stdin string
			args  []string
		}{
			{"", []string{"run", "--rm", "busy", "/nonexist"}},
			{"", []string{"run", "--rm", "busy", "/etc/passwd"}},
			{"", []string{"run", "--rm", "busy", "nonexist"}},
			{"", []string{"exec", "web", "nonexist"}},
			{"", []string{"exec", "web", "/etc/passwd"}},
			{"", []string{"exec", "web", "sh", "-c", "exit 7"}},
			{"", []string{"exec", "-t", "web", "true"}},
			{"", []string{"exec", "-it", "web", "true"}},
			{"", []string{"exec", "nosuch", "true"}},
			{"", []string{"rm", "-f", "nosuch"}},
			{"", []string{"rm", "nosuch"}},
			{"", []string{"pod", "rm", "-f", "nosuch"}},
			{"", []string{"pod", "rm", "nosuch"}},
			{"", []string{"pss"}},
			{"", []string{"system", "reset"}},
			{"", []string{"inspect", "nosuch"}},
			{"", []string{"inspect", "--type", "container", "busy"}},
			{"", []string{"inspect", "--type", "image", "web"}},
			{"", []string{"inspect", "--type", "volume", "web"}},
			{"", []string{"inspect", "--type", "bogus", "web"}},
			{"", []string{"ps", "--filter", "bogus=1"}},
		} {
			_, pe, prc := pod(c.stdin, c.args...)
			_, be, brc := ber(c.stdin, c.args...)
			if prc != brc {
				t.Errorf("%v: podman %d (%s), berth %d (%s)", c.args, prc, strings.TrimSpace(pe), brc, strings.TrimSpace(be))
			}
		}
		if out, _, rc := ber("", "exec", "-t", "web", "tty"); rc != 0 || !strings.HasPrefix(out, "/dev/pts/") {
			t.Errorf("exec -t without a terminal: rc %d %q", rc, out)
		}
		if _, se, _ := ber("", "pss"); !strings.Contains(se, "unrecognized command `berth pss`") || !strings.Contains(se, "Did you mean this?\n\tps\n") {
			t.Errorf("unknown command: %q", se)
		}
		if out, _, _ := ber("", "ps", "-a", "-q"); strings.Count(out, "\n") != 4 {
			t.Errorf("system reset with EOF on the prompt reset: ps -a -q %q", out)
		}
	})
}

// psNames sorts the lines of a ps listing, the infra container's name
// (from the pod's ID) made "infra".
func psNames(out string) string {
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasSuffix(l, " true") {
			l = "infra true"
		}
		names = append(names, l)
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}

// headerCols is the first line of a table with its columns one space
// apart.
func headerCols(out string) string {
	h, _, _ := strings.Cut(out, "\n")
	var cols []string
	for _, c := range strings.Split(h, "  ") {
		if c = strings.TrimSpace(c); c != "" {
			cols = append(cols, c)
		}
	}
	return strings.Join(cols, "|")
}

// first is an engine runner's stdout.
func first(out, _ string, _ int) string { return out }

package cli

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berthnet/berth/internal/nettest"
)

// waitFor polls cond (a state check, not a timing assertion) for at most
// ten seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestPrivilegedCp: a file and a directory go into a running container
// and back with their content; "-" streams a tar; copying into and out of
// a stopped container works; links pointing out of the container's root
// lead into it, never to the host.
func TestPrivilegedCp(t *testing.T) {
	p := newETopo(t)
	hostDir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(hostDir, "file.txt"), []byte("one file\n"), 0o640))
	must(os.MkdirAll(filepath.Join(hostDir, "tree", "sub"), 0o755))
	must(os.WriteFile(filepath.Join(hostDir, "tree", "sub", "deep.txt"), []byte("deep\n"), 0o600))
	must(os.Symlink("sub/deep.txt", filepath.Join(hostDir, "tree", "link")))
	// The host's secret the container's links point at.
	secretDir := t.TempDir()
	must(os.WriteFile(filepath.Join(secretDir, "secret"), []byte("host secret\n"), 0o600))

	p.mustB(t, "run", "-d", "--name", "box", "--rootfs", p.rootfs, "sh", "-c",
		"mkdir -p /data "+secretDir+"; ln -s / /data/up; ln -s ../../../../../../.."+secretDir+" /data/rel; echo ctr secret > /data/secret; exec sleep 1000")
	waitFor(t, "the container's links", func() bool {
		out, _ := p.b("exec", "box", "readlink", "/data/rel")
		return strings.Contains(out, secretDir)
	})

	p.mustB(t, "cp", filepath.Join(hostDir, "file.txt"), "box:/data/")
	p.mustB(t, "cp", filepath.Join(hostDir, "tree"), "box:/data/tree")
	if out := p.mustB(t, "exec", "box", "sh", "-c", "cat /data/file.txt /data/tree/sub/deep.txt; readlink /data/tree/link; stat -c %a /data/file.txt"); out != "one file\ndeep\nsub/deep.txt\n640\n" {
		t.Errorf("files in the container: %q", out)
	}
	back := t.TempDir()
	p.mustB(t, "cp", "box:/data/tree", back)
	p.mustB(t, "cp", "box:/data/file.txt", filepath.Join(back, "renamed.txt"))
	if b, err := os.ReadFile(filepath.Join(back, "tree", "sub", "deep.txt")); err != nil || string(b) != "deep\n" {
		t.Errorf("directory back: %q %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(back, "renamed.txt")); err != nil || string(b) != "one file\n" {
		t.Errorf("file back: %q %v", b, err)
	}
	// A tar stream out and in.
	tarOut, _, err := p.b3("cp", "box:/data/tree", "-")
	if err != nil || !strings.Contains(tarOut, "tree/sub/deep.txt") {
		t.Errorf("cp to -: %v (%d bytes)", err, len(tarOut))
	}

	// Escapes: writes through links out of the root land inside it, reads
	// read the container's files.
	p.mustB(t, "cp", filepath.Join(hostDir, "file.txt"), "box:/data/rel/escaped.txt")
	p.mustB(t, "cp", filepath.Join(hostDir, "file.txt"), "box:/data/up/"+strings.TrimPrefix(secretDir, "/")+"/")
	if ents, _ := os.ReadDir(secretDir); len(ents) != 1 {
		t.Errorf("cp through a link wrote to the host: %v", ents)
	}
	if out := p.mustB(t, "exec", "box", "cat", secretDir+"/escaped.txt", secretDir+"/file.txt"); out != "one file\none file\n" {
		t.Errorf("escaped copies in the container: %q", out)
	}
	p.mustB(t, "cp", "box:/data/rel/escaped.txt", filepath.Join(back, "read.txt"))
	if out, err := p.b("cp", "box:/data/up"+secretDir+"/secret", filepath.Join(back, "stolen")); err == nil {
		b, _ := os.ReadFile(filepath.Join(back, "stolen"))
		t.Errorf("read the host's secret through a link: %q", b)
	} else if exitCode(err) != 125 || !strings.Contains(out, "could not be found") {
		t.Errorf("cp of a missing file: %v %s", err, out)
	}

	// Stopped: still copies both ways.
	p.mustB(t, "stop", "-t", "0", "box")
	p.mustB(t, "cp", filepath.Join(hostDir, "file.txt"), "box:/data/stopped.txt")
	p.mustB(t, "cp", "box:/data/stopped.txt", filepath.Join(back, "stopped.txt"))
	if b, err := os.ReadFile(filepath.Join(back, "stopped.txt")); err != nil || string(b) != "one file\n" {
		t.Errorf("stopped container: %q %v", b, err)
	}
	for _, args := range [][]string{{"cp", "a", "b"}, {"cp", "a:/x", "b:/y"}, {"cp", "nosuch:/x", "/tmp"}} {
		if out, err := p.b(args...); exitCode(err) != 125 {
			t.Errorf("berth %v: %v %s", args, err, out)
		}
	}
}

// TestPrivilegedRestartWaitPauseRename: restart keeps the address and
// the published port with a new process; wait prints exit codes; pause
// freezes and unpause thaws; rename then inspect by the new name.
func TestPrivilegedRestartWaitPauseRename(t *testing.T) {
	p := newETopo(t)
	p.mustB(t, "run", "-d", "--name", "web", "-p", "8080:80", "--rootfs", p.rootfs, "httpd", "-f", "-p", "80", "-h", "/www")
	if got, err := httpGet(p.outside, "198.18.0.1:8080"); err != nil || got != "hello from berth\n" {
		t.Fatalf("page: %q %v", got, err)
	}
	// A second container takes the next address, so a fresh allocation
	// would differ from the first.
	p.mustB(t, "run", "-d", "--name", "other", "--rootfs", p.rootfs, "sleep", "1000")
	ip := p.inspect(t, "web", "{{.NetworkSettings.Networks.podman.IPAddress}}")
	pid := p.inspect(t, "web", "{{.State.Pid}}")
	if out := p.mustB(t, "restart", "-t", "0", "web"); out != "web\n" {
		t.Errorf("restart printed %q", out)
	}
	if ip2 := p.inspect(t, "web", "{{.NetworkSettings.Networks.podman.IPAddress}}"); ip2 != ip {
		t.Errorf("address after restart %s, before %s", ip2, ip)
	}
	if pid2 := p.inspect(t, "web", "{{.State.Pid}}"); pid2 == pid || pid2 == "0" {
		t.Errorf("pid after restart %s, before %s", pid2, pid)
	}
	if got, err := httpGet(p.outside, "198.18.0.1:8080"); err != nil || got != "hello from berth\n" {
		t.Errorf("page after restart: %q %v", got, err)
	}

	// pause / unpause
	pidN, _ := strconv.Atoi(p.inspect(t, "other", "{{.State.Pid}}"))
	if out := p.mustB(t, "pause", "other"); out != "other\n" {
		t.Errorf("pause printed %q", out)
	}
	if st := p.inspect(t, "other", "{{.State.Status}} {{.State.Paused}} {{.State.Running}}"); st != "paused true false" {
		t.Errorf("inspect paused: %q", st)
	}
	if out := p.mustB(t, "ps", "-a", "--format", "{{.Names}} {{.Status}}", "--filter", "name=other"); out != "other Paused\n" {
		t.Errorf("ps paused: %q", out)
	}
	waitFor(t, "the frozen state", func() bool { return frozen(t, pidN) })
	if out, err := p.b("pause", "other"); exitCode(err) != 125 || !strings.Contains(out, "is not running, can't pause") {
		t.Errorf("pause twice: %v %s", err, out)
	}
	if out, err := p.b("stop", "other"); exitCode(err) != 125 || !strings.Contains(out, "state paused") {
		t.Errorf("stop paused: %v %s", err, out)
	}
	p.mustB(t, "unpause", "other")
	waitFor(t, "the thawed state", func() bool { return !frozen(t, pidN) })
	if st := p.inspect(t, "other", "{{.State.Status}}"); st != "running" {
		t.Errorf("after unpause: %q", st)
	}
	if out, err := p.b("unpause", "other"); exitCode(err) != 125 || !strings.Contains(out, "not paused") {
		t.Errorf("unpause running: %v %s", err, out)
	}

	// rename
	p.mustB(t, "rename", "other", "renamed")
	if st := p.inspect(t, "renamed", "{{.Name}} {{.State.Status}}"); st != "renamed running" {
		t.Errorf("inspect renamed: %q", st)
	}
	if out, err := p.b("inspect", "other"); err == nil {
		t.Errorf("old name still found: %s", out)
	}
	if out, err := p.b("rename", "renamed", "web"); exitCode(err) != 125 || !strings.Contains(out, "already in use") {
		t.Errorf("rename to a used name: %v %s", err, out)
	}
	if out, err := p.b("rename", "renamed", "bad name"); exitCode(err) != 125 || !strings.Contains(out, "names must match") {
		t.Errorf("rename to a bad name: %v %s", err, out)
	}
	// a paused container removed with -f
	p.mustB(t, "pause", "renamed")
	p.mustB(t, "rm", "-f", "renamed")

	// wait
	p.mustB(t, "run", "-d", "--name", "exiter", "--rootfs", p.rootfs, "sh", "-c", "while [ ! -e /tmp/go-exiter ]; do sleep 0.05; done; exit 3")
	if out := p.mustB(t, "wait", "--condition", "running", "exiter"); out != "-1\n" {
		t.Errorf("wait --condition running: %q", out)
	}
	go func() { _, _ = p.b("exec", "exiter", "touch", "/tmp/go-exiter") }()
	if out, err := p.b("wait", "exiter"); err != nil || out != "3\n" {
		t.Errorf("wait: %v %q", err, out)
	}
	if out, err := p.b("wait", "--condition", "stopped", "exiter", "nosuch"); exitCode(err) != 125 || !strings.HasPrefix(out, "3\n") {
		t.Errorf("wait with a missing container: %v %q", err, out)
	}
	if out, err := p.b("wait", "--condition", "bogus", "exiter"); exitCode(err) != 125 || !strings.Contains(out, "unknown container state: bogus") {
		t.Errorf("wait --condition bogus: %v %q", err, out)
	}

	// kill -s by name, short name and number
	p.mustB(t, "run", "-d", "--name", "hup", "--rootfs", p.rootfs, "sh", "-c", "trap 'echo got-hup' HUP; while true; do sleep 0.05; done")
	waitFor(t, "the trap", func() bool { out, _ := p.b("top", "hup", "args"); return strings.Contains(out, "sleep") })
	// One at a time: a signal sent while the last is pending is lost.
	for i, sig := range []string{"SIGHUP", "HUP", "1"} {
		p.mustB(t, "kill", "-s", sig, "hup")
		waitFor(t, "HUP "+sig, func() bool { out, _ := p.b("logs", "hup"); return strings.Count(out, "got-hup") == i+1 })
	}
	p.mustB(t, "kill", "--all")
	waitFor(t, "kill --all", func() bool { return p.inspect(t, "hup", "{{.State.Status}}") == "exited" })
}

// frozen reports whether pid's cgroup is frozen (freezer.state on cgroup
// v1, cgroup.freeze on v2).
func frozen(t *testing.T, pid int) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "freezer" {
			st, _ := os.ReadFile(filepath.Join("/sys/fs/cgroup/freezer", parts[2], "freezer.state"))
			return strings.TrimSpace(string(st)) == "FROZEN"
		}
		if parts[1] == "" {
			if st, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", parts[2], "cgroup.freeze")); err == nil {
				return strings.TrimSpace(string(st)) == "1"
			}
		}
	}
	t.Fatal("no freezer found")
	return false
}

// TestPrivilegedTopStats: top lists the container's processes with the
// default and chosen columns; stats shows the --memory limit.
func TestPrivilegedTopStats(t *testing.T) {
	p := newETopo(t)
	p.mustB(t, "run", "-d", "--name", "busy", "--memory", "64m", "--rootfs", p.rootfs, "sh", "-c", "sleep 1000 & exec sleep 2000")
	waitFor(t, "two processes", func() bool {
		out, _ := p.b("top", "busy", "args")
		return strings.Contains(out, "sleep 1000") && strings.Contains(out, "sleep 2000")
	})
	out := p.mustB(t, "top", "busy")
	t.Logf("top:\n%s", out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || strings.Join(strings.Fields(lines[0]), " ") != "USER PID PPID %CPU ELAPSED TTY TIME COMMAND" {
		t.Fatalf("top:\n%s", out)
	}
	if f := strings.Fields(lines[1]); f[0] != "root" || f[1] != "1" || f[2] != "0" || f[5] != "?" || strings.Join(f[7:], " ") != "sleep 2000" {
		t.Errorf("top init line: %q", lines[1])
	}
	if out := p.mustB(t, "top", "busy", "pid,comm", "user"); !strings.Contains(out, "PID") || !strings.Contains(out, "1           sleep") {
		t.Errorf("top pid,comm user:\n%s", out)
	}
	// Not descriptors: the container's ps(1) gets them, as with Podman.
	if out, err := p.b("top", "busy", "-o", "pid,args"); err != nil || !strings.Contains(out, "sleep 2000") {
		t.Errorf("top -o pid,args: %v %s", err, out)
	}
	if out, err := p.b("top", "busy", "-o", "bogus"); exitCode(err) != 125 || !strings.Contains(out, "error executing ps(1) in the container: Runtime failed with exit status: 1") {
		t.Errorf("top -o bogus: %v %s", err, out)
	}

	out = p.mustB(t, "stats", "--no-stream", "busy")
	t.Logf("stats:\n%s", out)
	if !strings.Contains(out, "MEM USAGE / LIMIT") || !strings.Contains(out, "/ 67.11MB") {
		t.Errorf("stats:\n%s", out)
	}
	var js []map[string]string
	if err := json.Unmarshal([]byte(p.mustB(t, "stats", "--no-stream", "--format", "json", "busy")), &js); err != nil || len(js) != 1 || js[0]["name"] != "busy" || !strings.HasSuffix(js[0]["mem_usage"], "/ 67.11MB") || js[0]["pids"] != "2" {
		t.Errorf("stats json: %v %v", js, err)
	}
	if out := p.mustB(t, "stats", "--no-stream", "--format", "{{.Name}} {{.PIDS}}"); out != "busy 2\n" {
		t.Errorf("stats template: %q", out)
	}
	if out, err := p.b("stats", "--no-stream", "nosuch"); exitCode(err) != 125 || !strings.Contains(out, "no such container") {
		t.Errorf("stats nosuch: %v %s", err, out)
	}
}

// TestPrivilegedAttach: attach receives a running container's output and
// ends with its exit code; a pod member's port is the pod's.
func TestPrivilegedAttach(t *testing.T) {
	p := newETopo(t)
	p.mustB(t, "run", "-d", "--name", "talker", "--rootfs", p.rootfs, "sh", "-c",
		"while [ ! -e /tmp/go-talker ]; do echo tick; sleep 0.05; done; echo bye; exit 7")
	full := []string{"--net=" + p.host.Path(), "--", p.bin, "--network-config-dir", p.cfg, "--network-run-dir", p.run, "--root", p.root, "--runroot", p.runRoot, "attach", "--no-stdin", "talker"}
	cmd := exec.Command("nsenter", full...)
	cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+p.conf)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	sc := bufio.NewScanner(stdout)
	var seen []string
	for sc.Scan() {
		seen = append(seen, sc.Text())
		if len(seen) == 1 {
			p.mustB(t, "exec", "talker", "touch", "/tmp/go-talker")
		}
		if sc.Text() == "bye" {
			break
		}
	}
	if len(seen) == 0 || seen[0] != "tick" || seen[len(seen)-1] != "bye" {
		t.Errorf("attach saw %q", seen)
	}
	if err := cmd.Wait(); exitCode(err) != 7 {
		t.Errorf("attach exit: %v", err)
	}
	if out, err := p.b("attach", "talker"); exitCode(err) != 125 || !strings.Contains(out, "running containers") {
		t.Errorf("attach to an exited container: %v %s", err, out)
	}

	// --sig-proxy (the default): a signal to attach goes to the container.
	p.mustB(t, "run", "-d", "--name", "trapper", "--rootfs", p.rootfs, "sh", "-c",
		"trap 'echo got-term; exit 5' TERM; while true; do echo tick; sleep 0.05; done")
	cmd2 := p.berthCmd("attach", "trapper")
	out2, err := cmd2.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd2.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd2.Process.Kill(); _ = cmd2.Wait() })
	sc2 := bufio.NewScanner(out2)
	signalled := false
	for sc2.Scan() {
		if !signalled {
			_ = cmd2.Process.Signal(syscall.SIGTERM)
			signalled = true
		}
		if sc2.Text() == "got-term" {
			break
		}
	}
	if err := cmd2.Wait(); exitCode(err) != 5 {
		t.Errorf("attach after SIGTERM: %v", err)
	}
}

// TestPrivilegedPodMemberPort: port on a pod member shows the pod's
// published ports.
func TestPrivilegedPodMemberPort(t *testing.T) {
	if _, err := os.Stat("/usr/bin/catatonit"); err != nil {
		t.Skip("needs catatonit")
	}
	p := newETopo(t)
	p.mustB(t, "pod", "create", "--name", "pp", "-p", "8081:80")
	p.mustB(t, "run", "-d", "--pod", "pp", "--name", "member", "--rootfs", p.rootfs, "sleep", "1000")
	if out := p.mustB(t, "port", "member"); out != "80/tcp -> 0.0.0.0:8081\n" {
		t.Errorf("port member: %q", out)
	}
	if out := p.mustB(t, "port", "member", "80"); out != "0.0.0.0:8081\n" {
		t.Errorf("port member 80: %q", out)
	}
	p.mustB(t, "pod", "rm", "-f", "pp")
}

// TestPrivilegedRootlessLowPort: a rootless -p below the namespace's
// net.ipv4.ip_unprivileged_port_start is refused before the container
// exists; lowered in that namespace, the same port publishes. A rootless
// macvlan network is refused.
func TestPrivilegedRootlessLowPort(t *testing.T) {
	r := newRTopo(t)
	out, err := r.berth("run", "-d", "--name", "low", "-p", "80:80", "--rootfs", r.rootfs, "httpd", "-f", "-p", "80", "-h", "/www")
	if exitCode(err) != 125 || !strings.Contains(out, "rootlessport cannot expose privileged port 80, you can add 'net.ipv4.ip_unprivileged_port_start=80' to /etc/sysctl.conf (currently 1024)") {
		t.Errorf("-p 80: %v %s", err, out)
	}
	if out := r.must(t, "ps", "-a", "-q"); out != "" {
		t.Errorf("a container was created: %q", out)
	}
	if out, err := nettest.Run(r.host, 5*time.Second, "sysctl", "-w", "net.ipv4.ip_unprivileged_port_start=80"); err != nil {
		t.Fatalf("sysctl in the test namespace: %v %s", err, out)
	}
	r.must(t, "run", "-d", "--name", "low", "-p", "80:80", "--rootfs", r.rootfs, "httpd", "-f", "-p", "80", "-h", "/www")
	if got, err := httpGet(r.outside, "198.18.0.1:80"); err != nil || !strings.Contains(got, "hello from berth") {
		t.Errorf("port 80 after lowering the sysctl: %q %v", got, err)
	}
	// Without a cgroup of its own: top reads its pid namespace, stats
	// shows no cgroup figures (never its user's), pause is refused.
	if out := r.must(t, "top", "low", "pid,args"); strings.Join(strings.Fields(out), " ") != "PID COMMAND 1 httpd -f -p 80 -h /www" {
		t.Errorf("rootless top: %q", out)
	}
	if out := r.must(t, "stats", "--no-stream", "--format", "{{.Name}} {{.PIDS}} {{.MemUsage}}", "low"); !strings.HasPrefix(out, "low -- -- / ") {
		t.Errorf("rootless stats: %q", out)
	}
	if out, err := r.berth("pause", "low"); exitCode(err) != 125 || !strings.Contains(out, "no cgroup") {
		t.Errorf("rootless pause: %v %s", err, out)
	}
	if out, err := r.berth("network", "create", "-d", "macvlan", "-o", "parent=eth0", "--subnet", "198.19.201.0/24", "mv"); exitCode(err) != 125 || !strings.Contains(out, "macvlan networks need root") {
		t.Errorf("rootless macvlan: %v %s", err, out)
	}
}

// berthCmd is the command running berth in the topology's host namespace.
func (p *etopo) berthCmd(args ...string) *exec.Cmd {
	full := append([]string{"--net=" + p.host.Path(), "--", p.bin, "--network-config-dir", p.cfg, "--network-run-dir", p.run, "--root", p.root, "--runroot", p.runRoot}, args...)
	cmd := exec.Command("nsenter", full...)
	cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+p.conf)
	return cmd
}

// TestPrivilegedAttachStdinDetach: attach's input reaches a container run
// with -i; the detach keys leave it running; stats streams samples.
func TestPrivilegedAttachStdinDetach(t *testing.T) {
	p := newETopo(t)
	// The monitor closes the container's stdin when its attach client goes
	// (detached too): cat ends, the container goes on.
	p.mustB(t, "run", "-d", "-i", "--name", "echo", "--rootfs", p.rootfs, "sh", "-c", "cat; exec sleep 1000")
	cmd := p.berthCmd("attach", "echo")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if _, err := io.WriteString(stdin, "hello through attach\n"); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() || sc.Text() != "hello through attach" {
		t.Fatalf("attach read %q %v", sc.Text(), sc.Err())
	}
	if _, err := io.WriteString(stdin, "\x10\x11"); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("attach after the detach keys: %v", err)
	}
	if st := p.inspect(t, "echo", "{{.State.Status}}"); st != "running" {
		t.Errorf("after detach: %q", st)
	}

	// stats streams: a sample every interval, without clearing the screen
	// with --no-reset.
	st := p.berthCmd("stats", "--no-reset", "-i", "1", "--format", "{{.Name}}", "echo")
	out, err := st.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Process.Kill(); _ = st.Wait() })
	sc = bufio.NewScanner(out)
	for i := 0; i < 2; i++ {
		if !sc.Scan() || sc.Text() != "echo" {
			t.Fatalf("stats sample %d: %q %v", i, sc.Text(), sc.Err())
		}
	}
}

// TestPrivilegedRenameDNS: a running container's new name resolves on its
// network at once, its old one no longer; the alias stays.
func TestPrivilegedRenameDNS(t *testing.T) {
	p := newETopo(t)
	p.mustB(t, "network", "create", "--subnet", "198.19.41.0/24", "rnnet")
	p.mustB(t, "run", "-d", "--name", "srv", "--network", "rnnet", "--network-alias", "www", "--rootfs", p.rootfs, "httpd", "-f", "-p", "80", "-h", "/www")
	p.mustB(t, "rename", "srv", "srv2")
	out, err := p.b("run", "--rm", "--network", "rnnet", "--rootfs", p.rootfs, "sh", "-c",
		"wget -qO- http://srv2/; wget -qO- http://www/; wget -qO- http://srv/ 2>/dev/null || echo old-name-gone")
	if err != nil || out != "hello from berth\nhello from berth\nold-name-gone\n" {
		t.Errorf("names after rename: %v %q", err, out)
	}
}

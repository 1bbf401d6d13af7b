package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func TestRuntimeFlagErrors(t *testing.T) {
	tw := newTestWorld(t, "empty")
	dir := t.TempDir()
	cid := filepath.Join(dir, "cid")
	if err := os.WriteFile(cid, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := []string{"--rootfs", "/", "true"}
	cases := map[string][]string{
		`"CAP_FOO": unknown capability`:                                   {"--cap-add", "foo"},
		"adding all caps and removing all caps not allowed":               {"--cap-add", "all", "--cap-drop", "ALL"},
		`capability "CAP_NET_ADMIN" cannot be dropped and added`:          {"--cap-add", "net_admin", "--cap-drop", "CAP_NET_ADMIN"},
		`--security-opt "seccomp=/p.json": berth does not support`:        {"--security-opt", "seccomp=/p.json"},
		"invalid healthcheck-interval":                                    {"--healthcheck-command", "true", "--healthcheck-interval", "often"},
		`--log-driver "journald": berth writes container logs only as`:    {"--log-driver", "journald"},
		"invalid value for memory-reservation: invalid size: '1x'":        {"--memory-reservation", "1x"},
		"minimum memory limit cannot be less than memory reservation":     {"-m", "64m", "--memory-reservation", "128m"},
		"unable to translate --shm-size: invalid size: '1x'":              {"--shm-size", "1x"},
		"conflicting options: dns and the network mode: none":             {"--dns-opt", "ndots:2", "--network", "none"},
		"annotations must be formatted KEY=VALUE":                         {"--annotation", "novalue"},
		`invalid --security-opt 2: "foo=bar"`:                             {"--security-opt", "foo=bar"},
		"invalid value for memory: invalid size: '1x'":                    {"-m", "1x"},
		"you should always set a memory limit when using a memoryswap":    {"--memory-swap", "10m"},
		`invalid argument "x" for "--pids-limit" flag`:                    {"--pids-limit", "x"},
		"sysctl 'kernel.hostname' is not allowed":                         {"--sysctl", "kernel.hostname=x"},
		"invalid ulimit type: foo":                                        {"--ulimit", "foo=1"},
		"invalid device mode: rwx":                                        {"--device", "/dev/null:rwx"},
		"cannot replace container without --name being set":               {"--replace"},
		`parsing env file "/nonexistent/env"`:                             {"--env-file", "/nonexistent/env"},
		"unable to process labels: open /nonexistent/labels":              {"--label-file", "/nonexistent/labels"},
		`"bogus" is not a valid restart policy: invalid argument`:         {"--restart", "bogus"},
		"retries can only be specified with on-failure restart policy":    {"--restart", "always:3"},
		"must specify restart policy retry count as a number greater":     {"--restart", "on-failure:-1"},
		`the --rm option conflicts with --restart`:                        {"--rm", "--restart", "always"},
		"berth does not support --sdnotify yet":                           {"--sdnotify", "container"},
		"cannot specify both --no-healthcheck and --health-cmd":           {"--health-cmd", "true", "--no-healthcheck"},
		`invalid on-failure action "x" for health check`:                  {"--health-on-failure", "x"},
		"healthcheck-retries must be greater than 0":                      {"--health-cmd", "true", "--health-retries", "0"},
		"berth does not support --oom-kill-disable yet":                   {"--oom-kill-disable"},
		"berth does not support --attach yet":                             {"-a", "stdout"},
		"--init-path needs --init":                                        {"--init-path", "/x"},
		"--group-add keep-groups: berth does not support":                 {"--group-add", "keep-groups"},
		"container id file exists. Ensure another container is not using": {"--cidfile", cid},
	}
	for want, args := range cases {
		for _, cmd := range []string{"run", "create"} {
			full := append(append([]string{cmd}, args...), r...)
			rc, _, errOut := tw.run(t, full...)
			if rc != 125 || !strings.Contains(errOut, want) {
				t.Errorf("%v: rc %d, %q; want %q", full, rc, errOut, want)
			}
		}
	}
	if b, _ := os.ReadFile(cid); string(b) != "x" {
		t.Errorf("existing cidfile changed: %q", b)
	}
}

func TestRuntimeFlagsRecorded(t *testing.T) {
	tw := newTestWorld(t, "empty")
	dir := t.TempDir()
	envFile, labelFile, cid := filepath.Join(dir, "env"), filepath.Join(dir, "labels"), filepath.Join(dir, "cid")
	_ = os.WriteFile(envFile, []byte("# x\nA=file\nB=file\n"), 0o644)
	_ = os.WriteFile(labelFile, []byte("l1=file\nl2=file\n"), 0o644)
	rc, out, errOut := tw.run(t, "create", "--name", "c1", "--network", "none", "--cap-add", "net_admin", "--cap-drop", "kill",
		"--security-opt", "no-new-privileges", "--security-opt", "seccomp=unconfined", "-m", "64m", "--cpus", "0.5", "--pids-limit", "99",
		"--memory-reservation", "32m", "--shm-size", "128m", "--log-driver", "k8s-file", "--annotation", "org.example/a=b",
		"--sysctl", "net.ipv4.ip_forward=1", "--ulimit", "nofile=100:200", "--group-add", "10",
		"--env-file", envFile, "-e", "B=flag", "--label-file", labelFile, "-l", "l2=flag", "--cidfile", cid,
		"--rootfs", "/", "true")
	if rc != 0 {
		t.Fatalf("create: %d %s %s", rc, out, errOut)
	}
	id := strings.TrimSpace(out)
	if b, err := os.ReadFile(cid); err != nil || string(b) != id {
		t.Errorf("cidfile %q %v, want %s", b, err, id)
	}
	ins := mustRun(t, tw, "container", "inspect", "c1")
	for _, want := range []string{"A=file", "B=flag", `"l1": "file"`, `"l2": "flag"`, `"org.example/a": "b"`, `"MemoryReservation": 33554432`, `"ShmSize": 134217728`} {
		if !strings.Contains(ins, want) {
			t.Errorf("inspect lacks %s:\n%s", want, ins)
		}
	}
	_, e, err := openEngine(tw.env, &globals{configDir: tw.cfg, runDir: tw.rundir, logLevel: "error", ctx: context.Background()})
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.Get("c1")
	if err != nil {
		t.Fatal(err)
	}
	rt := c.Config.Runtime
	if strings.Join(rt.CapAdd, ",") != "CAP_NET_ADMIN" || strings.Join(rt.CapDrop, ",") != "CAP_KILL" || !rt.NoNewPrivileges ||
		rt.Resources.Memory != 64<<20 || rt.Resources.CPUQuota != 50000 || rt.Resources.PidsLimit != 99 ||
		rt.Sysctls["net.ipv4.ip_forward"] != "1" || len(rt.Ulimits) != 1 || rt.Ulimits[0].Hard != 200 || rt.GroupAdd[0] != "10" ||
		rt.Resources.MemoryReservation != 32<<20 || rt.ShmSize == nil || *rt.ShmSize != 128<<20 {
		t.Errorf("recorded %+v", rt)
	}
	// --replace removes the old one; without it the name is taken.
	if rc, _, _ := tw.run(t, "create", "--name", "c1", "--network", "none", "--rootfs", "/", "true"); rc == 0 {
		t.Error("second c1 created without --replace")
	}
	rc, out2, errOut := tw.run(t, "create", "--replace", "--name", "c1", "--network", "none", "--rootfs", "/", "true")
	if rc != 0 || strings.TrimSpace(out2) == id {
		t.Fatalf("--replace: %d %s %s", rc, out2, errOut)
	}
	if ps := mustRun(t, tw, "ps", "-a", "-q", "--no-trunc"); strings.TrimSpace(ps) != strings.TrimSpace(out2) {
		t.Errorf("after --replace: %q", ps)
	}
}

// podmanRunFlags are the flags of `podman run --help` (4.3.1).
const podmanRunFlags = `add-host annotation arch attach authfile blkio-weight blkio-weight-device cap-add cap-drop cgroup-conf
cgroup-parent cgroupns cgroups chrootdirs cidfile conmon-pidfile cpu-period cpu-quota cpu-rt-period cpu-rt-runtime cpu-shares
cpus cpuset-cpus cpuset-mems detach detach-keys device device-cgroup-rule device-read-bps device-read-iops device-write-bps
device-write-iops disable-content-trust dns dns-option dns-search entrypoint env env-file env-host env-merge expose gidmap
group-add health-cmd health-interval health-on-failure health-retries health-start-period health-timeout hostname hostuser
http-proxy image-volume init init-path interactive ip ip6 ipc label label-file log-driver log-opt mac-address memory
memory-reservation memory-swap memory-swappiness mount name network network-alias no-healthcheck no-hosts oom-kill-disable
oom-score-adj os passwd passwd-entry personality pid pidfile pids-limit platform pod pod-id-file preserve-fds privileged
publish publish-all pull quiet read-only read-only-tmpfs replace requires restart rm rmi rootfs sdnotify seccomp-policy
secret security-opt shm-size sig-proxy stop-signal stop-timeout subgidname subuidname sysctl systemd timeout tls-verify
tmpfs tty tz uidmap ulimit umask unsetenv unsetenv-all user userns uts variant volume volumes-from workdir`

// TestEveryPodmanRunFlagKnown: every flag of podman run is either
// implemented or refused by name, never an unknown flag; the refused ones
// fail before anything is created.
func TestEveryPodmanRunFlagKnown(t *testing.T) {
	for _, mk := range []func(Env, *globals) *cobra.Command{runCmd, ctrCreateCmd} {
		c := mk(Env{}, &globals{})
		for _, name := range strings.Fields(podmanRunFlags) {
			if name == "detach" && c.Name() == "create" {
				continue
			}
			if c.Flags().Lookup(name) == nil {
				t.Errorf("%s: --%s is not known", c.Name(), name)
			}
		}
	}
	tw := newTestWorld(t, "empty")
	run := runCmd(Env{}, &globals{})
	for _, u := range unsupportedFlags {
		if run.Flags().Lookup(u.name).Annotations[unsupportedAnnotation] == nil {
			continue // implemented
		}
		args := []string{"run", "--" + u.name + "=x"}
		if u.isBool {
			args = []string{"run", "--" + u.name}
		}
		rc, _, errOut := tw.run(t, append(args, "--rootfs", "/", "true")...)
		if rc != 125 || !strings.Contains(errOut, "berth does not support --"+u.name+" yet") {
			t.Errorf("%v: rc %d %q", args, rc, errOut)
		}
	}
}

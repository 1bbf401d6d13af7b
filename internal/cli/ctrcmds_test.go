package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/berthnet/berth/internal/network"
)

func TestContainerFormatting(t *testing.T) {
	got := formatPorts([]network.PortMapping{
		{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"},
		{HostIP: "::1", HostPort: 8081, ContainerPort: 81, Range: 2, Protocol: "udp"},
	})
	if got != "0.0.0.0:8080->80/tcp, [::1]:8081-8082->81-82/udp" {
		t.Errorf("ports %q", got)
	}
	for d, want := range map[time.Duration]string{0: "Less than a second", time.Second: "1 second", 5 * time.Second: "5 seconds", 90 * time.Second: "About a minute", 10 * time.Minute: "10 minutes", time.Hour: "About an hour", 5 * time.Hour: "5 hours", 72 * time.Hour: "3 days"} {
		if got := humanDuration(d); got != want {
			t.Errorf("%v: %q want %q", d, got, want)
		}
	}
	l, ok := parseLogLine("2026-01-02T03:04:05Z stderr F hello world\n")
	if !ok || l.stream != "stderr" || l.text != "hello world\n" {
		t.Errorf("%+v", l)
	}
	l, _ = parseLogLine("2026-01-02T03:04:05Z stdout P part\n")
	if l.text != "part" {
		t.Errorf("partial %+v", l)
	}
	if got := idField.ReplaceAllString("{{.Id}} {{.Identity}} {{.State.Id}}", ".ID$1"); got != "{{.ID}} {{.Identity}} {{.State.ID}}" {
		t.Errorf("id normalisation %q", got)
	}
}

func TestRunFlagErrors(t *testing.T) {
	tw := newTestWorld(t, "empty")
	cases := map[string][]string{
		`--publish "70000:80": parsing host port`:             {"run", "-p", "70000:80", "--rootfs", "/", "true"},
		`--network n1:foo=1: unknown option "foo"`:            {"run", "--network", "n1:foo=1", "--rootfs", "/", "true"},
		"--ip can only be set for a single network":           {"run", "--network", "a", "--network", "b", "--ip", "10.0.0.2", "--rootfs", "/", "true"},
		`--add-host "bad": bad format`:                        {"run", "--add-host", "bad", "--rootfs", "/", "true"},
		"conflicting options: dns and the network mode: none": {"run", "--network", "none", "--dns", "1.1.1.1", "--rootfs", "/", "true"},
		`--name "-x": names must match`:                       {"run", "--name", "-x", "--rootfs", "/", "true"},
		`--workdir "rel": must be an absolute path`:           {"create", "-w", "rel", "--rootfs", "/", "true"},
		"--stop-signal: invalid signal: NOPE":                 {"run", "--stop-signal", "NOPE", "--rootfs", "/", "true"},
		"--no-hosts and --add-host cannot be set together":    {"run", "--no-hosts", "--add-host", "a:1.2.3.4", "--rootfs", "/", "true"},
		"--publish cannot be used with --pod":                 {"run", "--pod", "p", "-p", "80", "--rootfs", "/", "true"},
		"unable to find network with name or ID nosuch":       {"run", "--network", "nosuch", "--rootfs", "/", "true"},
		"busybox: image not known":                            {"run", "--pull=never", "busybox", "true"},
		`unsupported pull policy "sometimes"`:                 {"create", "--pull=sometimes", "busybox", "true"},
		`no container with name or ID "nosuch" found`:         {"logs", "nosuch"},
		"--signal: invalid signal: BOGUS":                     {"kill", "-s", "BOGUS", "x"},
	}
	for want, args := range cases {
		rc, _, errOut := tw.run(t, args...)
		if rc != 125 || !strings.Contains(errOut, want) {
			t.Errorf("%v: rc %d, %q; want %q", args, rc, errOut, want)
		}
	}
	if rc, _, errOut := tw.run(t, "rm", "nosuch"); rc != 1 || !strings.Contains(errOut, "no such container") {
		t.Errorf("rm missing: %d %s", rc, errOut)
	}
	if rc, out, _ := tw.run(t, "ps", "-a"); rc != 0 || out != "CONTAINER ID  IMAGE       COMMAND     CREATED     STATUS      PORTS       NAMES\n" {
		t.Errorf("empty ps: %d %q", rc, out)
	}
}

// TestPodmanErrorsAndEmptyLists: Podman 4.3's exit codes and messages for
// missing objects and unknown commands, and its empty JSON lists.
func TestPodmanErrorsAndEmptyLists(t *testing.T) {
	tw := newTestWorld(t, "empty")
	for _, c := range []struct {
		args   []string
		rc     int
		out    string
		errOut string
	}{
		{[]string{"rm", "-f", "nosuch"}, 0, "", ""},
		{[]string{"pod", "rm", "-f", "nosuch"}, 0, "", ""},
		{[]string{"pod", "rm", "nosuch"}, 1, "", "no such pod"},
		{[]string{"pss"}, 125, "", "Error: unrecognized command `berth pss`\n\nDid you mean this?\n\tps\n"},
		{[]string{"network", "lss"}, 125, "", "unrecognized command `berth network lss`"},
		{[]string{"inspect", "nosuch"}, 125, "[]\n", `Error: inspecting object: no such object: "nosuch"`},
		{[]string{"inspect", "--type", "container", "podman"}, 125, "[]\n", "inspecting object: no such container podman"},
		{[]string{"inspect", "--type", "pod", "podman"}, 125, "[]\n", "inspecting object: no such pod podman"},
		{[]string{"inspect", "--type", "volume", "podman"}, 125, "[]\n", "inspecting object: no such volume podman"},
		{[]string{"inspect", "--type", "bogus", "podman"}, 125, "", `invalid type "bogus"`},
		{[]string{"inspect", "--format", "{{.Name}} {{.Driver}}", "podman"}, 0, "podman bridge\n", ""},
		{[]string{"inspect", "--type", "network", "--format", "{{.Name}}", "podman"}, 0, "podman\n", ""},
		{[]string{"ps", "--format", "json"}, 0, "[]\n", ""},
		{[]string{"pod", "ps", "--format", "json"}, 0, "[]\n", ""},
		{[]string{"ps", "--filter", "bogus=1"}, 125, "", "bogus is an invalid filter"},
		{[]string{"ps", "--sort", "bogus"}, 125, "", "invalid option for --sort"},
	} {
		rc, out, errOut := tw.run(t, c.args...)
		if rc != c.rc || out != c.out || !strings.Contains(errOut, c.errOut) || (c.errOut == "" && errOut != "") {
			t.Errorf("%v: rc %d, out %q, err %q; want %d %q %q", c.args, rc, out, errOut, c.rc, c.out, c.errOut)
		}
	}
}

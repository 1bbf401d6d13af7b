package cli

import (
	"strings"
	"testing"
)

func TestRestartPolicyFilter(t *testing.T) {
	tw := newTestWorld(t, "empty")
	for _, c := range [][]string{{"--name", "a", "--restart", "always"}, {"--name", "o", "--restart", "on-failure:2"}, {"--name", "n"}} {
		args := append(append([]string{"create", "--network", "none"}, c...), "--rootfs", "/", "true")
		if rc, out, errOut := tw.run(t, args...); rc != 0 {
			t.Fatalf("%v: %d %s %s", args, rc, out, errOut)
		}
	}
	for filter, want := range map[string]string{"always": "a\n", "on-failure": "o\n", "no": ""} {
		if out := mustRun(t, tw, "ps", "-a", "--format", "{{.Names}}", "--filter", "restart-policy="+filter); out != want {
			t.Errorf("restart-policy=%s: %q, want %q", filter, out, want)
		}
	}
	got := mustRun(t, tw, "inspect", "--format", "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}", "a", "o", "n")
	if got != "always:0\non-failure:2\n:0\n" {
		t.Errorf("inspect: %q", got)
	}
	errs := map[string][]string{
		"bogus invalid restart policy":                                         {"start", "--all", "--filter", "restart-policy=bogus"},
		"either start all containers or the container(s) provided in the argu": {"start", "--all", "a"},
		"start requires at least one argument":                                 {"start"},
	}
	for want, args := range errs {
		if rc, _, errOut := tw.run(t, args...); rc == 0 || !strings.Contains(errOut, want) {
			t.Errorf("%v: %d %q, want %q", args, rc, errOut, want)
		}
	}
}

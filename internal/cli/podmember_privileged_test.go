package cli

import (
	"strings"
	"testing"
)

// TestPrivilegedPodMemberDNS: a pod member's name resolves to the pod's
// address on the pod's networks (Podman 4.3.1 answers NXDOMAIN), from the
// member's creation on, also after the infra's network is reloaded, and
// no longer once the member is removed; the pod's name stays.
func TestPrivilegedPodMemberDNS(t *testing.T) {
	p := newETopo(t)
	p.mustB(t, "network", "create", "--subnet", "198.19.61.0/24", "pmn")
	p.mustB(t, "pod", "create", "--name", "mpod", "--network", "pmn")
	p.mustB(t, "run", "-d", "--pod", "mpod", "--name", "web", "--rootfs", p.rootfs, "httpd", "-f", "-p", "80", "-h", "/www")
	get := func(name string) (string, error) {
		return p.b("run", "--rm", "--network", "pmn", "--rootfs", p.rootfs, "wget", "-qO-", "http://"+name+"/")
	}
	if out, err := get("web"); err != nil || out != "hello from berth\n" {
		t.Fatalf("member name web: %v %q", err, out)
	}
	// A second member, created while the infra runs, resolves at once.
	p.mustB(t, "create", "--pod", "mpod", "--name", "idle", "--rootfs", p.rootfs, "sleep", "60")
	if out, err := get("idle"); err != nil || out != "hello from berth\n" {
		t.Errorf("member name idle: %v %q", err, out)
	}
	infra := strings.TrimPrefix(p.inspect(t, "web", "{{.HostConfig.NetworkMode}}"), "container:")
	p.mustB(t, "network", "reload", infra)
	if out, err := get("web"); err != nil || out != "hello from berth\n" {
		t.Errorf("member name after reload: %v %q", err, out)
	}
	p.mustB(t, "rm", "idle")
	if out, err := get("idle"); err == nil {
		t.Errorf("removed member idle still resolves: %q", out)
	}
	if out, err := get("mpod"); err != nil || out != "hello from berth\n" {
		t.Errorf("pod name: %v %q", err, out)
	}
	p.mustB(t, "pod", "rm", "-f", "mpod")
}

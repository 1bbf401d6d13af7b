package cli

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestVolumeCommands: the volume commands' output and exit codes, as
// Podman 4.3.1 gives them (no container runs).
func TestVolumeCommands(t *testing.T) {
	tw := newTestWorld(t, "empty")
	if out := mustRun(t, tw, "volume", "create", "-l", "app=db", "dbdata"); out != "dbdata\n" {
		t.Errorf("create: %q", out)
	}
	mustRun(t, tw, "volume", "create", "other")
	if rc, _, errOut := tw.run(t, "volume", "create", "dbdata"); rc != 125 || !strings.Contains(errOut, "volume with name dbdata already exists: volume already exists") {
		t.Errorf("duplicate: %d %s", rc, errOut)
	}
	if rc, _, errOut := tw.run(t, "volume", "create", "-o", "type=tmpfs", "x"); rc != 125 || !strings.Contains(errOut, `--opt "type=tmpfs"`) {
		t.Errorf("--opt: %d %s", rc, errOut)
	}
	if out := mustRun(t, tw, "volume", "ls"); out != "DRIVER      VOLUME NAME\nlocal       dbdata\nlocal       other\n" {
		t.Errorf("ls:\n%s", out)
	}
	if out := mustRun(t, tw, "volume", "ls", "-q", "--filter", "label=app"); out != "dbdata\n" {
		t.Errorf("ls -q label: %q", out)
	}
	if out := mustRun(t, tw, "volume", "ls", "--format", "{{.Name}} {{.Scope}}", "--filter", "name=^o"); out != "other local\n" {
		t.Errorf("ls name: %q", out)
	}
	if rc, _, errOut := tw.run(t, "volume", "ls", "--filter", "bogus=1"); rc != 125 || !strings.Contains(errOut, `"bogus" is an invalid volume filter`) {
		t.Errorf("bad filter: %d %s", rc, errOut)
	}
	var ls []map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, tw, "volume", "ls", "--format", "json")), &ls); err != nil || len(ls) != 2 {
		t.Fatalf("ls json: %v %v", err, ls)
	}
	var vi []map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, tw, "volume", "inspect", "dbdata")), &vi); err != nil || len(vi) != 1 {
		t.Fatalf("inspect: %v %v", err, vi)
	}
	for _, k := range []string{"Name", "Driver", "Mountpoint", "CreatedAt", "Labels", "Scope", "Options", "MountCount", "NeedsCopyUp", "NeedsChown"} {
		if _, ok := vi[0][k]; !ok {
			t.Errorf("inspect has no %s: %v", k, vi[0])
		}
		if _, ok := ls[0][k]; !ok {
			t.Errorf("ls json has no %s: %v", k, ls[0])
		}
	}
	if rc, out, errOut := tw.run(t, "volume", "inspect", "nope"); rc != 125 || out != "[]\n" || !strings.Contains(errOut, "inspecting object: no volume with name \"nope\" found: no such volume") {
		t.Errorf("inspect missing: %d %q %s", rc, out, errOut)
	}
	if rc, _, _ := tw.run(t, "volume", "exists", "dbdata"); rc != 0 {
		t.Errorf("exists: %d", rc)
	}
	if rc, _, errOut := tw.run(t, "volume", "rm", "nope"); rc != 1 || !strings.Contains(errOut, "no such volume") {
		t.Errorf("rm missing: %d %s", rc, errOut)
	}
	// prune asks first; "n" keeps everything.
	tw.env.Stdin = strings.NewReader("n\n")
	if out := mustRun(t, tw, "volume", "prune"); !strings.Contains(out, "The following volumes will be removed:\ndbdata\nother\nAre you sure") {
		t.Errorf("prune prompt: %q", out)
	}
	tw.env.Stdin = nil
	if out := mustRun(t, tw, "volume", "rm", "dbdata"); out != "dbdata\n" {
		t.Errorf("rm: %q", out)
	}
	if rc, _, _ := tw.run(t, "volume", "exists", "dbdata"); rc != 1 {
		t.Errorf("exists after rm: %d", rc)
	}
	if out := mustRun(t, tw, "volume", "prune", "-f"); out != "other\n" {
		t.Errorf("prune: %q", out)
	}
}

// TestRunStorageFlagsRefused: bad -v, --mount and --tmpfs values fail
// create with the flag named.
func TestRunStorageFlagsRefused(t *testing.T) {
	tw := newTestWorld(t, "empty")
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-v", "data:/x:U"}, `--volume "data:/x:U": volume option "U": berth does not support`},
		{[]string{"--mount", "type=image,source=i,target=/x"}, `berth does not support mounts of type "image"`},
		{[]string{"--tmpfs", "/t:bogus"}, `unknown mount option "bogus"`},
		{[]string{"-v", "a:/x", "--tmpfs", "/x"}, "/x: duplicate mount destination"},
		{[]string{"-v", "newvol:/a", "-v", "/nonexistent-berth-path:/x"}, "statfs /nonexistent-berth-path: no such file or directory"},
	} {
		args := append(append([]string{"create", "--network", "none"}, tc.args...), "--rootfs", dir, "true")
		if rc, _, errOut := tw.run(t, args...); rc != 125 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: %d %s", tc.args, rc, errOut)
		}
	}
	if out := mustRun(t, tw, "volume", "ls", "-q"); out != "" {
		t.Errorf("volumes left by failed creates: %q", out)
	}
}

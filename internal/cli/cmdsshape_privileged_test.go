package cli

import (
	"archive/tar"
	"encoding/json"
	"io"
	"sort"
	"strings"
	"testing"
)

// tarNames lists the entries of a tar stream.
func tarNames(t *testing.T, s string) string {
	t.Helper()
	tr := tar.NewReader(strings.NewReader(s))
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("tar: %v", err)
		}
		names = append(names, strings.TrimSuffix(h.Name, "/"))
	}
	return strings.Join(names, ",")
}

// jsonKeys lists the sorted keys of the first object of a JSON array.
func jsonKeys(t *testing.T, s string) string {
	t.Helper()
	var v []map[string]any
	if err := json.Unmarshal([]byte(s), &v); err != nil || len(v) == 0 {
		t.Fatalf("json %q: %v", s, err)
	}
	var keys []string
	for k := range v[0] {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, ",")
}

// TestPrivilegedPodmanCmds runs the container commands in Podman
// 4.3.1 and in berth on the same scenario and compares their output and
// exit codes.
func TestPrivilegedPodmanCmds(t *testing.T) {
	p := newETopo(t)
	pod := podmanRunner(t, p)
	ber := berthRunner(p)
	tarball := rootfsTar(t, p.rootfs)
	engineScenario(t, "podman", pod, tarball)
	engineScenario(t, "berth", ber, tarball)

	same := []struct {
		args []string
		norm func(string) string
	}{
		{[]string{"port", "inpod"}, nil},
		{[]string{"wait", "done"}, nil},
		{[]string{"wait", "--condition", "running", "web"}, nil},
		{[]string{"kill", "-s", "HUP", "web"}, nil},
		{[]string{"kill", "-s", "1", "web"}, nil},
		{[]string{"pause", "web"}, nil},
		{[]string{"ps", "-a", "--format", "{{.Names}} {{.Status}} {{.State}}", "--filter", "name=web"}, nil},
		{[]string{"inspect", "--format", "{{.State.Status}} {{.State.Paused}} {{.State.Running}}", "web"}, nil},
		{[]string{"wait", "--condition", "paused", "web"}, nil},
		{[]string{"stop", "web"}, nil},
		{[]string{"unpause", "web"}, nil},
		{[]string{"unpause", "web"}, nil},
		{[]string{"top", "web"}, headerCols},
		{[]string{"top", "web", "pid,comm"}, func(s string) string { return strings.Join(strings.Fields(s), " ") }},
		{[]string{"top", "web", "bogus"}, nil},
		{[]string{"top", "web", "-o", "pid,args"}, nil},
		{[]string{"stats", "--no-stream", "web"}, headerCols},
		{[]string{"stats", "--no-stream", "--format", "{{.Name}} {{.PIDS}}", "web"}, nil},
		{[]string{"stats", "--no-stream", "--format", "json", "web"}, func(s string) string { return jsonKeys(t, s) }},
		{[]string{"cp", "web:/etc/passwd", "-"}, func(s string) string { return tarNames(t, s) }},
		{[]string{"cp", "web:/www", "-"}, func(s string) string { return tarNames(t, s) }},
		{[]string{"cp", "done:/etc/passwd", "-"}, func(s string) string { return tarNames(t, s) }},
		{[]string{"cp", "/etc/hostname", "done:/www/"}, nil},
		{[]string{"cp", "done:/www", "-"}, func(s string) string { return tarNames(t, s) }},
		{[]string{"cp", "/etc/hostname", "done:/nonexistent/dir/"}, nil},
		{[]string{"rename", "done", "done2"}, nil},
		{[]string{"rename", "done2", "web"}, nil},
		{[]string{"restart", "-t", "0", "web"}, nil},
		{[]string{"restart", "done2"}, nil},
		{[]string{"wait", "done2"}, nil},
		{[]string{"wait", "nosuch"}, nil},
		{[]string{"wait", "--condition", "bogus", "web"}, nil},
		{[]string{"top", "nosuch"}, nil},
		{[]string{"pause", "nosuch"}, nil},
		{[]string{"pause"}, nil},
		{[]string{"restart"}, nil},
		{[]string{"cp", "a:/x", "b:/y"}, nil},
		{[]string{"cp", "web:/nonexistent", "-"}, nil},
		{[]string{"rename", "nosuch", "x"}, nil},
		{[]string{"kill", "-s", "BOGUS", "web"}, nil},
	}
	for _, s := range same {
		po, pe, prc := pod("", s.args...)
		bo, be, brc := ber("", s.args...)
		if s.norm != nil && prc == 0 && brc == 0 {
			po, bo = s.norm(po), s.norm(bo)
		}
		if prc != brc || po != bo {
			t.Errorf("%v:\npodman rc %d %q %s\nberth  rc %d %q %s", s.args, prc, po, pe, brc, bo, be)
		}
	}
}

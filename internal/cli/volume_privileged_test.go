package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/berthnet/berth/internal/image"
	"github.com/berthnet/berth/internal/image/imagetest"
)

// volTopo is an engine topology with an image whose /seed is a VOLUME
// holding a file.
func volTopo(t *testing.T) *etopo {
	t.Helper()
	p := newETopo(t)
	s, err := image.Open(filepath.Join(p.root, "images"))
	if err != nil {
		t.Fatal(err)
	}
	imagetest.Import(t, s, "volimg", map[string]imagetest.File{"seed/hello": {Mode: 0o644, Content: "seeded\n"}},
		`VOLUME /seed`, `CMD ["sh"]`)
	return p
}

// TestPrivilegedNamedVolume: data written in a named volume by one
// container is read by a second after the first is removed; a volume in
// use cannot be removed (exit 2) unless -f, which removes its
// containers; removal takes the data.
func TestPrivilegedNamedVolume(t *testing.T) {
	p := volTopo(t)
	if out := p.mustB(t, "volume", "create", "--label", "k=v", "data"); out != "data\n" {
		t.Fatalf("volume create: %q", out)
	}
	var vi []map[string]any
	if err := json.Unmarshal([]byte(p.mustB(t, "volume", "inspect", "data")), &vi); err != nil || len(vi) != 1 {
		t.Fatalf("volume inspect: %v %v", err, vi)
	}
	mp := filepath.Join(p.root, "volumes", "data", "_data")
	if vi[0]["Mountpoint"] != mp || vi[0]["Driver"] != "local" || vi[0]["Scope"] != "local" || vi[0]["NeedsCopyUp"] != true {
		t.Errorf("volume inspect: %v", vi[0])
	}
	p.mustB(t, "run", "--name", "writer", "--network", "none", "-v", "data:/data", "volimg", "sh", "-c", "echo persisted > /data/f")
	p.mustB(t, "rm", "writer")
	if out := p.mustB(t, "run", "--rm", "--network", "none", "--mount", "type=volume,source=data,target=/d,ro", "volimg", "cat", "/d/f"); out != "persisted\n" {
		t.Errorf("second container reads %q", out)
	}
	p.mustB(t, "create", "--name", "holder", "-v", "data:/data", "volimg")
	if out, err := p.b("volume", "rm", "data"); exitCode(err) != 2 || !strings.Contains(out, "is being used") {
		t.Errorf("volume rm of a volume in use: %v %s", err, out)
	}
	if out := p.mustB(t, "volume", "ls", "--filter", "label=k=v"); out != "DRIVER      VOLUME NAME\nlocal       data\n" {
		t.Errorf("volume ls:\n%s", out)
	}
	p.mustB(t, "volume", "rm", "-f", "data")
	if out, err := p.b("inspect", "holder"); err == nil {
		t.Errorf("holder survives volume rm -f: %s", out)
	}
	if _, err := p.b("volume", "exists", "data"); exitCode(err) != 1 {
		t.Errorf("volume exists after rm: %v", err)
	}
	if _, err := os.Stat(mp); !os.IsNotExist(err) {
		t.Errorf("volume data left: %v", err)
	}
}

// TestPrivilegedVolumeCopyUpAnonymous: the image's VOLUME gets an
// anonymous volume holding the image's content, shown by inspect and
// removed by rm -v and --rm; a new named volume mounted over image content gets
// that content too.
func TestPrivilegedVolumeCopyUpAnonymous(t *testing.T) {
	p := volTopo(t)
	// --rm takes the anonymous volume with the container.
	p.mustB(t, "run", "--rm", "--network", "none", "volimg", "true")
	if out := p.mustB(t, "volume", "ls", "-q"); out != "" {
		t.Errorf("anonymous volume left by --rm: %q", out)
	}
	if out := p.mustB(t, "run", "--name", "anon", "--network", "none", "volimg", "cat", "/seed/hello"); out != "seeded\n" {
		t.Errorf("anonymous volume content: %q", out)
	}
	var mounts []inspectMount
	if err := json.Unmarshal([]byte(p.inspect(t, "anon", "{{json .Mounts}}")), &mounts); err != nil || len(mounts) != 1 {
		t.Fatalf("inspect Mounts: %v %v", err, mounts)
	}
	m := mounts[0]
	if m.Type != "volume" || m.Destination != "/seed" || m.Source != filepath.Join(p.root, "volumes", m.Name, "_data") || !m.RW || m.Propagation != "rprivate" {
		t.Errorf("inspect mount: %+v", m)
	}
	if got, err := os.ReadFile(filepath.Join(m.Source, "hello")); err != nil || string(got) != "seeded\n" {
		t.Errorf("copied up file: %q %v", got, err)
	}
	if out := p.mustB(t, "volume", "ls", "-q"); out != m.Name+"\n" {
		t.Errorf("volume ls -q: %q", out)
	}
	p.mustB(t, "rm", "-v", "anon")
	if out := p.mustB(t, "volume", "ls", "-q"); out != "" {
		t.Errorf("anonymous volume left after rm -v: %q", out)
	}
	// A named volume is created on first use and gets the content.
	if out := p.mustB(t, "run", "--rm", "--network", "none", "-v", "cu:/seed", "volimg", "cat", "/seed/hello"); out != "seeded\n" {
		t.Errorf("named volume copy-up: %q", out)
	}
	if out := p.mustB(t, "volume", "inspect", "--format", "{{.Name}} {{.NeedsCopyUp}}", "cu"); out != "cu false\n" {
		t.Errorf("after first use: %q", out)
	}
	// nocopy leaves a new volume empty.
	if out := p.mustB(t, "run", "--rm", "--network", "none", "-v", "empty:/seed:nocopy", "volimg", "ls", "/seed"); out != "" {
		t.Errorf("nocopy volume: %q", out)
	}
	if out := p.mustB(t, "volume", "prune", "-f"); out != "cu\nempty\n" {
		t.Errorf("volume prune: %q", out)
	}
}

// TestPrivilegedBindAndTmpfs: a read-only bind mount refuses writes, a
// read-write one takes them, --tmpfs and --mount type=tmpfs are tmpfs.
func TestPrivilegedBindAndTmpfs(t *testing.T) {
	p := volTopo(t)
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "x"), []byte("from host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := p.b("run", "--rm", "--network", "none", "-v", host+":/h:ro", "volimg", "sh", "-c", "cat /h/x; touch /h/y")
	if err == nil || !strings.Contains(out, "from host") || !strings.Contains(out, "Read-only file system") {
		t.Errorf("write to a read-only bind mount: %v %q", err, out)
	}
	if _, err := os.Stat(filepath.Join(host, "y")); !os.IsNotExist(err) {
		t.Errorf("file created through a read-only bind: %v", err)
	}
	p.mustB(t, "run", "--rm", "--network", "none", "--mount", "type=bind,src="+host+",dst=/h", "volimg", "touch", "/h/y")
	if _, err := os.Stat(filepath.Join(host, "y")); err != nil {
		t.Errorf("write through a read-write bind: %v", err)
	}
	if out, err := p.b("run", "--rm", "--network", "none", "-v", "/nonexistent-berth:/h", "volimg", "true"); err == nil || !strings.Contains(out, "no such file or directory") {
		t.Errorf("bind of a missing host path: %v %q", err, out)
	}
	out = p.mustB(t, "run", "--rm", "--network", "none", "--tmpfs", "/t:size=1m", "--mount", "type=tmpfs,target=/u", "volimg", "grep", "-E", " /(t|u) ", "/proc/mounts")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	sort.Strings(lines)
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "tmpfs /t tmpfs") || !strings.Contains(lines[0], "size=1024k") || !strings.HasPrefix(lines[1], "tmpfs /u tmpfs") {
		t.Errorf("tmpfs mounts:\n%s", out)
	}
}

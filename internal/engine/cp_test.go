package engine

import (
	"archive/tar"
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthnet/berth/internal/network"
	"github.com/berthnet/berth/internal/runopts"
)

func TestCopyTarget(t *testing.T) {
	for _, tc := range []struct {
		name                       string
		srcDir, contents           bool
		dst                        string
		exists, isDir              bool
		wantDir, wantName, wantErr string
	}{
		{name: "file into dir", dst: "/tmp", exists: true, isDir: true, wantDir: "/tmp", wantName: "f"},
		{name: "file to new name", dst: "/tmp/g", wantDir: "/tmp", wantName: "g"},
		{name: "file over file", dst: "/tmp/g", exists: true, wantDir: "/tmp", wantName: "g"},
		{name: "file to missing dir", dst: "/tmp/new/", wantErr: "does not exist"},
		{name: "dir into dir", srcDir: true, dst: "/data", exists: true, isDir: true, wantDir: "/data", wantName: "f"},
		{name: "dir to new name", srcDir: true, dst: "/data2", wantDir: "/", wantName: "data2"},
		{name: "dir over file", srcDir: true, dst: "/etc/passwd", exists: true, wantErr: "not a directory"},
		{name: "contents into dir", srcDir: true, contents: true, dst: "/data", exists: true, isDir: true, wantDir: "/data", wantName: "."},
		{name: "contents to new dir", srcDir: true, contents: true, dst: "/new", wantDir: "/new", wantName: "."},
		{name: "contents of a file", contents: true, dst: "/x", wantErr: "not a directory"},
		{name: "dir to root", srcDir: true, dst: "/", exists: true, isDir: true, wantDir: "/", wantName: "f"},
		{name: "dotdot stays inside", dst: "/../../x", wantDir: "/", wantName: "x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, name, err := copyTarget(tc.srcDir, tc.contents, "f", tc.dst, tc.exists, tc.isDir)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || dir != tc.wantDir || name != tc.wantName {
				t.Fatalf("got %q %q %v, want %q %q", dir, name, err, tc.wantDir, tc.wantName)
			}
		})
	}
}

func TestArchiveName(t *testing.T) {
	for _, tc := range []struct{ name, rename, want string }{
		{"a/b/c", "", "a/b/c"},
		{"./a/b", "", "a/b"},
		{"../../etc/passwd", "", "etc/passwd"},
		{"/abs/x", "", "abs/x"},
		{"src/x", "dst", "dst/x"},
		{"src", "dst", "dst"},
		{"src/", ".", "."},
		{"src/x/y", ".", "x/y"},
		{"./", "", ""},
	} {
		if got := archiveName(tc.name, tc.rename); got != tc.want {
			t.Errorf("archiveName(%q, %q) = %q, want %q", tc.name, tc.rename, got, tc.want)
		}
	}
}

func FuzzArchiveName(f *testing.F) {
	for _, s := range []string{"a/b", "../../x", "/", "./a/../../b", ""} {
		f.Add(s, "")
		f.Add(s, "dst")
	}
	f.Fuzz(func(t *testing.T, name, rename string) {
		got := archiveName(name, rename)
		if rename != "" || got == "" {
			return
		}
		if strings.HasPrefix(got, "/") || got == ".." || strings.HasPrefix(got, "../") || filepath.Clean(got) != got {
			t.Fatalf("archiveName(%q) = %q leaves the destination", name, got)
		}
	})
}

func FuzzCopyTarget(f *testing.F) {
	f.Add(true, false, "/a/b", true, true)
	f.Add(false, false, "/../x/", false, false)
	f.Fuzz(func(t *testing.T, srcDir, contents bool, dst string, exists, isDir bool) {
		dir, name, err := copyTarget(srcDir, contents, "f", dst, exists, isDir)
		if err != nil {
			return
		}
		if !strings.HasPrefix(dir, "/") || strings.Contains(name, "/") || name == "" || name == ".." {
			t.Fatalf("copyTarget(%q) = %q %q", dst, dir, name)
		}
	})
}

// tarOf archives p of root under name.
func tarOf(t *testing.T, root *rootFS, p, name string) *bytes.Buffer {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if err := root.tarFrom(tw, p, name, false); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &b
}

// TestRootFSContainsSymlinks: a copy into a tree whose links point out of
// it (absolute and with ..) lands inside the tree, and reading through
// them reads the tree's files.
func TestRootFSContainsSymlinks(t *testing.T) {
	outside := t.TempDir()
	rootDir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(rootDir, "etc"), 0o755))
	must(os.WriteFile(filepath.Join(rootDir, "etc", "secret"), []byte("inside\n"), 0o644))
	must(os.WriteFile(filepath.Join(outside, "secret"), []byte("outside\n"), 0o644))
	must(os.Symlink("/", filepath.Join(rootDir, "abs")))
	must(os.Symlink("../../../../../../../../"+outside, filepath.Join(rootDir, "rel")))
	must(os.Symlink(outside, filepath.Join(rootDir, "out")))

	src := t.TempDir()
	must(os.MkdirAll(filepath.Join(src, "d", "sub"), 0o755))
	must(os.WriteFile(filepath.Join(src, "d", "sub", "f"), []byte("payload\n"), 0o640))
	must(os.Symlink("sub/f", filepath.Join(src, "d", "link")))
	srcFS, err := openRootFS(src)
	must(err)
	defer srcFS.Close()
	root, err := openRootFS(rootDir)
	must(err)
	defer root.Close()

	for _, via := range []string{"/abs", "/rel", "/out"} {
		t.Run(via, func(t *testing.T) {
			err := root.untar(tar.NewReader(tarOf(t, srcFS, "/d", "d")), via, extractOptions{NoChown: true})
			if err != nil && !strings.Contains(err.Error(), "no such file") {
				t.Fatalf("untar via %s: %v", via, err)
			}
			if _, err := os.Stat(filepath.Join(outside, "d")); err == nil {
				t.Fatalf("copy through %s wrote outside the root", via)
			}
			var out bytes.Buffer
			tw := tar.NewWriter(&out)
			if err := root.tarFrom(tw, via+"/etc/secret", "s", true); err == nil {
				_ = tw.Close()
				h, data := readOne(t, &out)
				if h.Name != "s" || data != "inside\n" {
					t.Fatalf("read through %s: %q %q", via, h.Name, data)
				}
			} else if via == "/abs" {
				t.Fatalf("read through /abs: %v", err)
			}
		})
	}
	if got, err := os.ReadFile(filepath.Join(rootDir, "d", "sub", "f")); err != nil || string(got) != "payload\n" {
		t.Fatalf("copy via /abs: %q %v", got, err)
	}
	if l, err := os.Readlink(filepath.Join(rootDir, "d", "link")); err != nil || l != "sub/f" {
		t.Fatalf("symlink copied as %q %v", l, err)
	}
	if st, err := os.Stat(filepath.Join(rootDir, "d", "sub", "f")); err != nil || st.Mode().Perm() != 0o640 {
		t.Fatalf("mode: %v %v", st, err)
	}
}

func readOne(t *testing.T, b *bytes.Buffer) (*tar.Header, string) {
	t.Helper()
	tr := tar.NewReader(b)
	h, err := tr.Next()
	if err != nil {
		t.Fatal(err)
	}
	var data bytes.Buffer
	_, _ = data.ReadFrom(tr)
	return h, data.String()
}

// TestUntarHostileArchive: entries with .. and a link planted by the
// archive itself stay inside the root.
func TestUntarHostileArchive(t *testing.T) {
	outside := t.TempDir()
	rootDir := t.TempDir()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	add := func(h *tar.Header, body string) {
		h.Size = int64(len(body))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write([]byte(body))
	}
	add(&tar.Header{Name: "../../../../" + outside + "/a", Typeflag: tar.TypeReg, Mode: 0o644}, "x")
	add(&tar.Header{Name: "esc", Typeflag: tar.TypeSymlink, Linkname: outside}, "")
	add(&tar.Header{Name: "esc/b", Typeflag: tar.TypeReg, Mode: 0o644}, "y")
	_ = tw.Close()
	if err := os.MkdirAll(filepath.Join(rootDir, outside), 0o755); err != nil {
		t.Fatal(err)
	}
	root, err := openRootFS(rootDir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	err = root.untar(tar.NewReader(&b), "/", extractOptions{NoChown: true})
	ents, _ := os.ReadDir(outside)
	if len(ents) != 0 {
		t.Fatalf("hostile archive wrote outside: %v (err %v)", ents, err)
	}
	for _, f := range []string{"a", "b"} {
		if _, err := os.Stat(filepath.Join(rootDir, outside, f)); err != nil {
			t.Errorf("entry %s should land inside the root: %v", f, err)
		}
	}
}

func TestKeepAddresses(t *testing.T) {
	ip := netip.MustParseAddr("10.88.0.5")
	atts := []Attachment{{Network: network.Network{Name: "podman"}, Opts: network.PerNetworkOptions{InterfaceName: "eth0", StaticIPs: []netip.Addr{ip}, StaticMAC: "aa:bb:cc:dd:ee:ff"}}}
	got := keepAddresses([]runopts.NetworkRequest{{}}, atts)
	if len(got) != 1 || len(got[0].IPs) != 1 || got[0].IPs[0] != ip || got[0].MAC != "aa:bb:cc:dd:ee:ff" {
		t.Fatalf("keepAddresses: %+v", got)
	}
	if got := keepAddresses([]runopts.NetworkRequest{{IPs: []netip.Addr{ip}, MAC: "x"}}, atts); got != nil {
		t.Errorf("requested addresses kept: %+v", got)
	}
	if got := keepAddresses([]runopts.NetworkRequest{{Name: "other"}}, atts); got != nil {
		t.Errorf("another network's addresses taken: %+v", got)
	}
	if got := keepAddresses([]runopts.NetworkRequest{{}}, nil); got != nil {
		t.Errorf("nothing to keep: %+v", got)
	}
}

// TestUntarCopyOutDropsSetID: a set-user-ID file copied out to the
// caller loses the bit.
func TestUntarCopyOutDropsSetID(t *testing.T) {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if err := tw.WriteHeader(&tar.Header{Name: "suid", Typeflag: tar.TypeReg, Mode: 0o4755, Size: 1}); err != nil {
		t.Fatal(err)
	}
	_, _ = tw.Write([]byte("x"))
	_ = tw.Close()
	dir := t.TempDir()
	root, err := openRootFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if err := root.untar(tar.NewReader(&b), "/", extractOptions{NoChown: true}); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(dir, "suid")); err != nil || st.Mode()&os.ModeSetuid != 0 || st.Mode().Perm() != 0o755 {
		t.Errorf("mode %v %v", st.Mode(), err)
	}
}

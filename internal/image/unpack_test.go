package image

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// entry is one tar entry for a test layer.
type entry struct {
	name, link, body string
	typ              byte
	mode             int64
}

func dir(n string) entry        { return entry{name: n, typ: tar.TypeDir, mode: 0o755} }
func file(n, body string) entry { return entry{name: n, body: body, typ: tar.TypeReg, mode: 0o644} }
func symlink(n, target string) entry {
	return entry{name: n, link: target, typ: tar.TypeSymlink, mode: 0o777}
}
func hardlink(n, target string) entry {
	return entry{name: n, link: target, typ: tar.TypeLink, mode: 0o644}
}

func layer(t *testing.T, es ...entry) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: e.mode, Size: int64(len(e.body))}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

// sandbox returns a root inside a parent directory, and the parent: an
// escape would show up as a file in the parent.
func sandbox(t *testing.T) (root, outside string) {
	t.Helper()
	outside = t.TempDir()
	root = filepath.Join(outside, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	return root, outside
}

func unpack(t *testing.T, root string, es ...entry) error {
	t.Helper()
	_, err := Unpack(layer(t, es...), root, UnpackOptions{})
	return err
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mustNotExist(t *testing.T, p string) {
	t.Helper()
	if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s exists (err %v), want it absent", p, err)
	}
}

func TestUnpackRefusesDotDot(t *testing.T) {
	for _, name := range []string{"../evil", "a/../../evil", "./../evil", "/../evil"} {
		root, outside := sandbox(t)
		err := unpack(t, root, file(name, "x"))
		var esc *EscapeError
		if !errors.As(err, &esc) {
			t.Errorf("%q: err = %v, want EscapeError", name, err)
		}
		mustNotExist(t, filepath.Join(outside, "evil"))
	}
}

func TestUnpackAbsolutePathsStayInside(t *testing.T) {
	root, _ := sandbox(t)
	if err := unpack(t, root, file("/etc/abs-file", "inside")); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, filepath.Join(root, "etc/abs-file")); got != "inside" {
		t.Errorf("content %q", got)
	}
}

func TestUnpackSymlinkThenWriteStaysInside(t *testing.T) {
	for _, target := range []string{"../../..", "/", "../outside-dir", "/../../"} {
		root, outside := sandbox(t)
		err := unpack(t, root,
			symlink("escape", target),
			file("escape/pwned", "x"),
			dir("escape/sub/"),
			file("escape/sub/pwned2", "y"),
		)
		if err != nil {
			t.Fatalf("target %q: %v", target, err)
		}
		mustNotExist(t, filepath.Join(outside, "pwned"))
		mustNotExist(t, filepath.Join(outside, "outside-dir"))
		mustNotExist(t, filepath.Join(filepath.Dir(outside), "pwned"))
		// The writes landed where the link points when root is "/".
		matches, _ := filepath.Glob(filepath.Join(root, "**", "pwned"))
		top, _ := filepath.Glob(filepath.Join(root, "pwned"))
		if len(matches)+len(top) != 1 {
			t.Errorf("target %q: pwned written %d times inside the root", target, len(matches)+len(top))
		}
	}
}

func TestUnpackSymlinkChainAndAbsoluteTarget(t *testing.T) {
	root, outside := sandbox(t)
	// /var/run -> /run (absolute, as in Debian), /a -> b, /b -> /var
	err := unpack(t, root,
		dir("run/"),
		dir("var/"),
		symlink("var/run", "/run"),
		symlink("a", "b"),
		symlink("b", "/var"),
		file("a/run/pid", "42"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, filepath.Join(root, "run/pid")); got != "42" {
		t.Errorf("run/pid = %q", got)
	}
	mustNotExist(t, filepath.Join(outside, "run"))
	// Symlinks are kept as written.
	if l, err := os.Readlink(filepath.Join(root, "var/run")); err != nil || l != "/run" {
		t.Errorf("var/run -> %q, %v", l, err)
	}
}

func TestUnpackSymlinkLoop(t *testing.T) {
	root, _ := sandbox(t)
	err := unpack(t, root, symlink("l1", "l2"), symlink("l2", "l1"), file("l1/x", "x"))
	if err == nil {
		t.Fatal("a symlink loop unpacked without error")
	}
}

func TestUnpackFileOverSymlinkReplacesTheLink(t *testing.T) {
	root, outside := sandbox(t)
	victim := filepath.Join(outside, "victim")
	if err := os.WriteFile(victim, []byte("original"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := unpack(t, root, symlink("f", victim), file("f", "new"))
	if err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, victim); got != "original" {
		t.Errorf("the file outside was written: %q", got)
	}
	if got := mustRead(t, filepath.Join(root, "f")); got != "new" {
		t.Errorf("f = %q", got)
	}
}

func TestUnpackHardlinks(t *testing.T) {
	root, outside := sandbox(t)
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Inside: fine, same inode.
	if err := unpack(t, root, file("a", "data"), hardlink("b", "a")); err != nil {
		t.Fatal(err)
	}
	sa, _ := os.Stat(filepath.Join(root, "a"))
	sb, _ := os.Stat(filepath.Join(root, "b"))
	if !os.SameFile(sa, sb) {
		t.Error("b is not a hard link of a")
	}
	// Escapes: ".." is refused; through a symlink it resolves inside, where
	// there is nothing to link to; an absolute name is taken inside.
	cases := [][]entry{
		{hardlink("h", "../secret")},
		{symlink("s", outside), hardlink("h", "s/secret")},
		{hardlink("h", secret)},
	}
	for i, es := range cases {
		r, _ := sandbox(t)
		if err := unpack(t, r, es...); err == nil {
			t.Errorf("case %d: hard link out of the root unpacked", i)
		}
		if fi, err := os.Stat(secret); err != nil || fi.Sys() == nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(filepath.Join(r, "h")); err == nil {
			t.Errorf("case %d: h exists with %q", i, b)
		}
	}
	// A hard link to a symlink that points outside links the symlink itself.
	r, _ := sandbox(t)
	if err := unpack(t, r, symlink("s", secret), hardlink("h", "s")); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(filepath.Join(r, "h")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("h should be a symlink (a link to the link): %v %v", fi, err)
	}
}

func TestUnpackWhiteoutsAcrossLayers(t *testing.T) {
	root, _ := sandbox(t)
	if err := unpack(t, root,
		dir("etc/"), file("etc/keep", "k"), file("etc/gone", "g"),
		dir("opq/"), file("opq/old1", "1"), dir("opq/olddir/"), file("opq/olddir/x", "x"),
		dir("dir/"), file("dir/f", "f"),
	); err != nil {
		t.Fatal(err)
	}
	if err := unpack(t, root,
		file("etc/.wh.gone", ""),
		file(".wh.dir", ""),
		file("opq/new-before", "nb"), // same layer, before the marker: kept
		file("opq/.wh..wh..opq", ""),
		file("opq/new-after", "na"),
		file("etc/.wh.never-existed", ""),
		file("nodir/.wh.x", ""),
	); err != nil {
		t.Fatal(err)
	}
	mustNotExist(t, filepath.Join(root, "etc/gone"))
	mustNotExist(t, filepath.Join(root, "dir"))
	mustNotExist(t, filepath.Join(root, "opq/old1"))
	mustNotExist(t, filepath.Join(root, "opq/olddir"))
	mustNotExist(t, filepath.Join(root, "etc/.wh.gone"))
	mustNotExist(t, filepath.Join(root, "opq/.wh..wh..opq"))
	mustNotExist(t, filepath.Join(root, "nodir"))
	for p, want := range map[string]string{"etc/keep": "k", "opq/new-before": "nb", "opq/new-after": "na"} {
		if got := mustRead(t, filepath.Join(root, p)); got != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}
	// A whiteout cannot reach out through a symlink.
	_, outside := sandbox(t)
	if err := os.WriteFile(filepath.Join(outside, "precious"), []byte("p"), 0o644); err != nil {
		t.Fatal(err)
	}
	r2 := filepath.Join(outside, "root")
	if err := unpack(t, r2, symlink("up", ".."), file("up/.wh.precious", "")); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, filepath.Join(outside, "precious")); got != "p" {
		t.Error("whiteout deleted a file outside the root")
	}
}

func TestUnpackReplacesAcrossLayers(t *testing.T) {
	root, _ := sandbox(t)
	if err := unpack(t, root, dir("x/"), file("x/in", "1"), file("f", "file")); err != nil {
		t.Fatal(err)
	}
	// A file replaces a directory; a directory replaces a file.
	if err := unpack(t, root, file("x", "now a file"), dir("f/"), file("f/in", "2")); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, filepath.Join(root, "x")); got != "now a file" {
		t.Errorf("x = %q", got)
	}
	if got := mustRead(t, filepath.Join(root, "f/in")); got != "2" {
		t.Errorf("f/in = %q", got)
	}
}

func TestUnpackModesAndDevices(t *testing.T) {
	root, _ := sandbox(t)
	res, err := Unpack(layer(t,
		entry{name: "exe", typ: tar.TypeReg, mode: 0o4755},
		entry{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
		entry{name: "dev/null", typ: tar.TypeChar, mode: 0o666},
		entry{name: "fifo", typ: tar.TypeFifo, mode: 0o600},
	), root, UnpackOptions{Privileged: false})
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(filepath.Join(root, "exe"))
	if fi.Mode()&os.ModeSetuid == 0 || fi.Mode().Perm() != 0o755 {
		t.Errorf("exe mode %v", fi.Mode())
	}
	fi, _ = os.Stat(filepath.Join(root, "tmp"))
	if fi.Mode()&os.ModeSticky == 0 || fi.Mode().Perm() != 0o777 {
		t.Errorf("tmp mode %v", fi.Mode())
	}
	mustNotExist(t, filepath.Join(root, "dev/null"))
	if len(res.Skipped) != 1 || res.Skipped[0] != "dev/null" {
		t.Errorf("skipped %v", res.Skipped)
	}
	if fi, err := os.Lstat(filepath.Join(root, "fifo")); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("fifo: %v %v", fi, err)
	}
}

func TestResolve(t *testing.T) {
	root, _ := sandbox(t)
	if err := unpack(t, root, dir("usr/lib/"), symlink("lib", "usr/lib"), symlink("usr/lib/up", "../../../..")); err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{
		"lib/x":            "usr/lib/x",
		"lib/up/etc":       "etc",
		"../../etc/passwd": "etc/passwd",
		"/lib/../bin":      "usr/bin",
		"nonexist/../a":    "a",
	} {
		got, err := resolve(root, in)
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if got != filepath.Join(root, want) {
			t.Errorf("resolve(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestUnpackOwnersTimesXattrsAsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: chown and device nodes")
	}
	root, _ := sandbox(t)
	mt := time.Date(2020, 5, 6, 7, 8, 9, 0, time.UTC)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o750, Uid: 1234, Gid: 5678, ModTime: mt},
		{Name: "d/f", Typeflag: tar.TypeReg, Mode: 0o640, Uid: 1234, Gid: 5678, ModTime: mt, Size: 1,
			PAXRecords: map[string]string{"SCHILY.xattr.user.berth": "yes", "SCHILY.xattr.trusted.overlay.opaque": "y"}},
		{Name: "d/l", Typeflag: tar.TypeSymlink, Linkname: "f", Uid: 1234, Gid: 5678, ModTime: mt},
		{Name: "dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size == 1 {
			_, _ = tw.Write([]byte("x"))
		}
	}
	_ = tw.Close()
	if _, err := Unpack(&buf, root, UnpackOptions{Privileged: true}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"d", "d/f", "d/l"} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(root, p), &st); err != nil {
			t.Fatal(err)
		}
		if st.Uid != 1234 || st.Gid != 5678 {
			t.Errorf("%s owned by %d:%d", p, st.Uid, st.Gid)
		}
		if got := time.Unix(st.Mtim.Unix()); !got.Equal(mt) {
			t.Errorf("%s mtime %v, want %v", p, got, mt)
		}
	}
	v := make([]byte, 16)
	if n, err := unix.Lgetxattr(filepath.Join(root, "d/f"), "user.berth", v); err == nil && string(v[:n]) != "yes" {
		t.Errorf("user.berth = %q", v[:n])
	} else if err != nil && !errors.Is(err, unix.ENOTSUP) {
		t.Errorf("user.berth: %v", err)
	}
	if _, err := unix.Lgetxattr(filepath.Join(root, "d/f"), "trusted.overlay.opaque", v); err == nil {
		t.Error("a layer set trusted.overlay.opaque")
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(root, "dev/null"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(1, 3) {
		t.Errorf("dev/null: mode %o rdev %d err %v", st.Mode, st.Rdev, err)
	}
}

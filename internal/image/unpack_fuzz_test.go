package image

import (
	"archive/tar"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
)

// fuzzEntry is one entry of a fuzzed layer: typ is a tar type flag; link
// is the symlink or hard-link target, or a regular file's content.
type fuzzEntry struct {
	typ        byte
	name, link string
	mode       int64
}

// fuzzTar writes entries as a tar stream.
func fuzzTar(es ...fuzzEntry) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		h := &tar.Header{Typeflag: e.typ, Name: e.name, Mode: e.mode}
		switch e.typ {
		case tar.TypeReg:
			h.Size = int64(len(e.link))
		case tar.TypeSymlink, tar.TypeLink:
			h.Linkname = e.link
		}
		if h.Mode == 0 {
			h.Mode = 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil
		}
		if e.typ == tar.TypeReg {
			_, _ = tw.Write([]byte(e.link))
		}
	}
	_ = tw.Close()
	return buf.Bytes()
}

// escapeSeeds are layers that try every known way out of the root, plus
// an ordinary image layer.
var escapeSeeds = [][]fuzzEntry{
	{{typ: tar.TypeDir, name: "etc/"}, {typ: tar.TypeReg, name: "etc/hostname", link: "box\n", mode: 0o644},
		{typ: tar.TypeSymlink, name: "bin/sh", link: "/bin/busybox"}, {typ: tar.TypeLink, name: "bin/ls", link: "etc/hostname"},
		{typ: tar.TypeFifo, name: "run/fifo", mode: 0o600}, {typ: tar.TypeReg, name: "./usr/lib/os-release", link: "ID=box\n"}},
	{{typ: tar.TypeReg, name: "../sentinel", link: "pwned"}},
	{{typ: tar.TypeReg, name: "/../../outside/keep", link: "pwned"}},
	{{typ: tar.TypeSymlink, name: "up", link: "../outside"}, {typ: tar.TypeReg, name: "up/keep", link: "pwned"}},
	{{typ: tar.TypeSymlink, name: "abs", link: "/"}, {typ: tar.TypeReg, name: "abs/../sentinel", link: "pwned"}},
	{{typ: tar.TypeSymlink, name: "a", link: "b/../../.."}, {typ: tar.TypeDir, name: "b"}, {typ: tar.TypeReg, name: "a/sentinel", link: "pwned"}},
	{{typ: tar.TypeSymlink, name: "s", link: "../sentinel"}, {typ: tar.TypeReg, name: "s", link: "pwned"}},
	{{typ: tar.TypeLink, name: "h", link: "../sentinel"}},
	{{typ: tar.TypeSymlink, name: "o", link: ".."}, {typ: tar.TypeLink, name: "h", link: "o/sentinel"}},
	{{typ: tar.TypeSymlink, name: "o", link: "/.."}, {typ: tar.TypeReg, name: "o/outside/.wh.keep"}, {typ: tar.TypeReg, name: "o/.wh..wh..opq"}},
	{{typ: tar.TypeSymlink, name: "loop", link: "loop/x"}, {typ: tar.TypeReg, name: "loop/y", link: "z"}},
	{{typ: tar.TypeDir, name: "d", mode: 0o000}, {typ: tar.TypeReg, name: "d/f", link: "x"}, {typ: tar.TypeReg, name: "d/.wh.f"}},
	{{typ: tar.TypeSymlink, name: "c", link: "../outside/keep"}, {typ: tar.TypeSymlink, name: "c2", link: "c"}, {typ: tar.TypeLink, name: "h", link: "c2"}},
}

// confinement is the state outside the unpack root that no layer may
// change: a parent directory holding the root, a sentinel file and a
// directory with one file.
type confinement struct {
	parent, root string
	files        map[string]fileState
}

type fileState struct {
	data  string
	mode  fs.FileMode
	nlink uint64
	mtime int64
}

func newConfinement(t *testing.T) *confinement {
	parent := t.TempDir()
	// Directories a layer made unreadable must not stop the clean-up.
	t.Cleanup(func() {
		_ = filepath.WalkDir(parent, func(p string, d fs.DirEntry, err error) error {
			if d != nil && d.IsDir() {
				_ = os.Chmod(p, 0o700)
			}
			return nil
		})
	})
	c := &confinement{parent: parent, root: filepath.Join(parent, "root"), files: map[string]fileState{}}
	for _, d := range []string{c.root, filepath.Join(parent, "outside")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"sentinel", "outside/keep"} {
		if err := os.WriteFile(filepath.Join(parent, f), []byte("untouched "+f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c.files = c.snapshot(t)
	return c
}

// snapshot records everything in the parent except the root's content.
func (c *confinement) snapshot(t *testing.T) map[string]fileState {
	out := map[string]fileState{}
	err := filepath.WalkDir(c.parent, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == c.root {
			return filepath.SkipDir
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fileState{mode: fi.Mode(), mtime: fi.ModTime().UnixNano()}
		if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
			st.nlink = uint64(sys.Nlink)
		}
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			st.data = string(b)
		}
		if fi.IsDir() {
			st.mtime = 0 // the root's own entries change the parent's time
			if p != c.parent {
				st.mtime = fi.ModTime().UnixNano()
			}
		}
		out[p] = st
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot outside the root: %v", err)
	}
	return out
}

// check fails t if anything outside the root changed, or if a path inside
// the root resolves (as the unpacker follows symlinks) to outside it.
func (c *confinement) check(t *testing.T) {
	now := c.snapshot(t)
	var names []string
	for p := range now {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, p := range names {
		if _, ok := c.files[p]; !ok {
			t.Fatalf("unpack created %s outside the root", p)
		}
	}
	for p, was := range c.files {
		if got, ok := now[p]; !ok || got != was {
			t.Fatalf("unpack changed %s outside the root: %+v, was %+v", p, got, was)
		}
	}
	rootFS := fsDev(t, c.root)
	err := filepath.WalkDir(c.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // an unreadable directory a layer made
		}
		rel, _ := filepath.Rel(c.root, p)
		resolved, err := resolve(c.root, filepath.ToSlash(rel))
		if err != nil {
			return nil // a symlink loop, refused
		}
		if !within(c.root, resolved) {
			t.Fatalf("%s resolves to %s, outside the root", rel, resolved)
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return nil
		}
		if fsDev(t, p) != rootFS {
			t.Fatalf("%s is on another file system", rel)
		}
		if fi.Mode()&(fs.ModeDevice|fs.ModeCharDevice) != 0 {
			t.Fatalf("unprivileged unpack created device %s", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func fsDev(t *testing.T, p string) uint64 {
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return uint64(fi.Sys().(*syscall.Stat_t).Dev)
}

// bounded reports whether every entry of the stream is small: a sparse
// or huge entry would only test the disk, not confinement.
func bounded(data []byte) bool {
	tr := tar.NewReader(bytes.NewReader(data))
	for n := 0; ; n++ {
		h, err := tr.Next()
		if err != nil {
			return true
		}
		if h.Size > 1<<20 || n > 1000 {
			return false
		}
	}
}

// fixChecksums recomputes the checksum of every header block the tar
// reader will meet, so that mutated names and types reach the unpacker
// instead of failing the checksum.
func fixChecksums(data []byte) []byte {
	b := append([]byte(nil), data...)
	for off := 0; off+512 <= len(b); off += 512 {
		blk := b[off : off+512]
		if string(blk[257:262]) != "ustar" {
			continue
		}
		copy(blk[148:156], "        ")
		var sum int64
		for _, c := range blk {
			sum += int64(c)
		}
		s := []byte("000000\x00 ")
		o := []byte(strconvOctal(sum))
		copy(s[6-len(o):], o)
		copy(blk[148:156], s)
	}
	return b
}

func strconvOctal(v int64) string {
	if v == 0 {
		return "0"
	}
	var out []byte
	for ; v > 0; v /= 8 {
		out = append([]byte{byte('0' + v%8)}, out...)
	}
	if len(out) > 6 {
		out = out[len(out)-6:]
	}
	return string(out)
}

// unpackConfined unpacks data into a fresh root and checks confinement,
// whatever Unpack returned.
func unpackConfined(t *testing.T, data []byte) {
	if !bounded(data) {
		return
	}
	c := newConfinement(t)
	_, _ = Unpack(bytes.NewReader(data), c.root, UnpackOptions{})
	c.check(t)
	// A second layer on top of the first (symlinks it left are followed
	// now) must stay inside as well.
	_, _ = Unpack(bytes.NewReader(data), c.root, UnpackOptions{})
	c.check(t)
}

// FuzzUnpack: no tar stream writes, links or removes anything outside the
// root, and nothing inside resolves outside it.
func FuzzUnpack(f *testing.F) {
	for _, es := range escapeSeeds {
		f.Add(fuzzTar(es...))
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		unpackConfined(t, fixChecksums(data))
	})
}

// FuzzUnpackEntries is FuzzUnpack over a line-per-entry description
// ("TYPE NAME[\tLINK]", TYPE one of f d l h p), which mutates names and
// link targets far more readily than raw tar bytes.
func FuzzUnpackEntries(f *testing.F) {
	for _, es := range escapeSeeds {
		var b strings.Builder
		for _, e := range es {
			b.WriteString(string(typeLetter[e.typ]) + " " + e.name + "\t" + e.link + "\n")
		}
		f.Add(b.String())
	}
	f.Fuzz(func(t *testing.T, spec string) {
		var es []fuzzEntry
		for _, line := range strings.Split(spec, "\n") {
			if len(line) < 2 {
				continue
			}
			typ, ok := letterType[line[0]]
			if !ok {
				continue
			}
			name, link, _ := strings.Cut(line[2:], "\t")
			es = append(es, fuzzEntry{typ: typ, name: name, link: link})
		}
		data := fuzzTar(es...)
		if data == nil {
			return
		}
		unpackConfined(t, data)
	})
}

var typeLetter = map[byte]byte{tar.TypeReg: 'f', tar.TypeDir: 'd', tar.TypeSymlink: 'l', tar.TypeLink: 'h', tar.TypeFifo: 'p'}
var letterType = map[byte]byte{'f': tar.TypeReg, 'd': tar.TypeDir, 'l': tar.TypeSymlink, 'h': tar.TypeLink, 'p': tar.TypeFifo}

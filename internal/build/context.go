package build

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// Context is a build context directory and its .dockerignore rules.
type Context struct {
	dir string
	pm  *patternmatcher.PatternMatcher // nil: nothing is excluded
}

// OpenContext opens the context in dir with the rules of
// dir/.dockerignore, if there is one.
func OpenContext(dir string) (*Context, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(abs); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("build context %s: not a directory", dir)
	}
	var patterns []string
	f, err := os.Open(filepath.Join(abs, ".dockerignore"))
	if err == nil {
		patterns, err = ignorefile.ReadAll(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("read .dockerignore: %w", err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return newContext(abs, patterns)
}

func newContext(dir string, patterns []string) (*Context, error) {
	c := &Context{dir: dir}
	if len(patterns) == 0 {
		return c, nil
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, fmt.Errorf(".dockerignore: %w", err)
	}
	c.pm = pm
	return c, nil
}

// Dir is the context's directory.
func (c *Context) Dir() string { return c.dir }

// Excluded reports whether .dockerignore excludes rel, a slash-separated
// path relative to the context.
func (c *Context) Excluded(rel string) bool {
	if c.pm == nil || rel == "." || rel == "" {
		return false
	}
	m, err := c.pm.MatchesOrParentMatches(rel)
	return err == nil && m
}

// source is a file or directory of the context a COPY names.
type source struct {
	rel   string
	isDir bool
}

// hasGlob reports whether p has filepath.Match's special characters.
func hasGlob(p string) bool { return strings.ContainsAny(p, "*?[") }

// cleanRel makes a COPY source a path relative to the context root; ".."
// never leaves it.
func cleanRel(p string) string {
	rel := strings.TrimPrefix(path.Clean("/"+filepath.ToSlash(p)), "/")
	if rel == "" {
		return "."
	}
	return rel
}

// sources resolves COPY source paths, globs matched as Docker does
// (filepath.Match on paths relative to the context), excluded files
// left out.
func (c *Context) sources(paths []string) ([]source, error) {
	var out []source
	for _, p := range paths {
		rel := cleanRel(p)
		if !hasGlob(rel) {
			s, err := c.literal(rel)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
			continue
		}
		matched, err := c.glob(rel)
		if err != nil {
			return nil, err
		}
		out = append(out, matched...)
	}
	if len(out) == 0 {
		return nil, errors.New("no source files were specified")
	}
	return out, nil
}

// literal is one named source; a symbolic link is followed inside the
// context.
func (c *Context) literal(rel string) (source, error) {
	notFound := fmt.Errorf("file not found in build context or excluded by .dockerignore: %s", rel)
	if c.Excluded(rel) {
		return source{}, notFound
	}
	abs, err := c.resolve(rel)
	if err != nil {
		return source{}, notFound
	}
	st, err := os.Stat(abs)
	if err != nil {
		return source{}, notFound
	}
	r, _ := filepath.Rel(c.dir, abs)
	return source{rel: filepath.ToSlash(r), isDir: st.IsDir()}, nil
}

// resolve follows symbolic links in rel and refuses a path that leaves
// the context.
func (c *Context) resolve(rel string) (string, error) {
	abs, err := filepath.EvalSymlinks(filepath.Join(c.dir, filepath.FromSlash(rel)))
	if err != nil {
		return "", err
	}
	root, err := filepath.EvalSymlinks(c.dir)
	if err != nil {
		return "", err
	}
	if abs != root && !strings.HasPrefix(abs, root+string(filepath.Separator)) {
		return "", fmt.Errorf("%s is outside the build context", rel)
	}
	if root != c.dir {
		r, _ := filepath.Rel(root, abs)
		abs = filepath.Join(c.dir, r)
	}
	return abs, nil
}

// glob lists the context's paths that pattern matches.
func (c *Context) glob(pattern string) ([]source, error) {
	if _, err := path.Match(pattern, ""); err != nil {
		return nil, fmt.Errorf("source %q: %w", pattern, err)
	}
	var out []source
	err := filepath.WalkDir(c.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == c.dir {
			return err
		}
		r, _ := filepath.Rel(c.dir, p)
		rel := filepath.ToSlash(r)
		if c.Excluded(rel) {
			if d.IsDir() && !c.pm.Exclusions() {
				return fs.SkipDir
			}
			return nil
		}
		if ok, _ := path.Match(pattern, rel); ok {
			out = append(out, source{rel: rel, isDir: d.IsDir()})
		}
		return nil
	})
	return out, err
}

// entry is one file of a COPY: a context file (abs, info) or an archive
// ADD extracts, under name in the destination directory.
type entry struct {
	abs     string
	name    string
	info    fs.FileInfo
	archive bool
}

// entries are the files a source copies: a directory's contents (name
// is then a directory prefix, "" for the destination itself), or the
// file under name.
func (c *Context) entries(s source, name string, extract bool) ([]entry, error) {
	abs, err := c.resolve(s.rel)
	if err != nil {
		return nil, err
	}
	if !s.isDir {
		st, err := os.Stat(abs)
		if err != nil {
			return nil, err
		}
		if extract && isArchive(abs) {
			return []entry{{abs: abs, info: st, archive: true}}, nil
		}
		return []entry{{abs: abs, name: name, info: st}}, nil
	}
	var out []entry
	err = filepath.WalkDir(abs, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == abs {
			return err
		}
		r, _ := filepath.Rel(c.dir, p)
		if c.Excluded(filepath.ToSlash(r)) {
			if d.IsDir() && !c.pm.Exclusions() {
				return fs.SkipDir
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		in, _ := filepath.Rel(abs, p)
		out = append(out, entry{abs: p, name: path.Join(name, filepath.ToSlash(in)), info: fi})
		return nil
	})
	return out, err
}

// owner is the --chown of a COPY: nil keeps root (context files) or the
// archive's owners.
type owner struct{ uid, gid int }

// entryHeader is the tar header of a context file.
func entryHeader(e entry, own *owner) (*tar.Header, error) {
	link := ""
	if e.info.Mode()&fs.ModeSymlink != 0 {
		var err error
		if link, err = os.Readlink(e.abs); err != nil {
			return nil, err
		}
	}
	h, err := tar.FileInfoHeader(e.info, link)
	if err != nil {
		return nil, err
	}
	h.Name = e.name
	if e.info.IsDir() {
		h.Name += "/"
	}
	h.Uid, h.Gid, h.Uname, h.Gname = 0, 0, "", ""
	if own != nil {
		h.Uid, h.Gid = own.uid, own.gid
	}
	h.Format = tar.FormatPAX
	return h, nil
}

// writeTar writes the entries as a tar stream, archives extracted.
func writeTar(w io.Writer, entries []entry, own *owner) error {
	tw := tar.NewWriter(w)
	for _, e := range entries {
		if err := writeEntry(tw, e, own); err != nil {
			return err
		}
	}
	return tw.Close()
}

func writeEntry(tw *tar.Writer, e entry, own *owner) error {
	if e.archive {
		return copyArchive(tw, e.abs)
	}
	h, err := entryHeader(e, own)
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	if h.Typeflag != tar.TypeReg {
		return nil
	}
	f, err := os.Open(e.abs)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.CopyN(tw, f, h.Size)
	return err
}

// hashEntries is the content hash of what writeTar writes (names,
// modes, owners, link targets and file contents).
func hashEntries(entries []entry, own *owner) (string, error) {
	sum := sha256.New()
	for _, e := range entries {
		if err := hashEntry(sum, e, own); err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(sum.Sum(nil)), nil
}

func hashEntry(w io.Writer, e entry, own *owner) error {
	if e.archive {
		fmt.Fprintf(w, "archive\x00")
		return hashFile(w, e.abs)
	}
	h, err := entryHeader(e, own)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%s\x00%o\x00%d:%d\x00%d\x00%s\x00", h.Name, h.Mode, h.Uid, h.Gid, h.Size, h.Linkname)
	if h.Typeflag == tar.TypeReg {
		return hashFile(w, e.abs)
	}
	return nil
}

func hashFile(w io.Writer, p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}

// isArchive reports whether the file is a tar archive ADD extracts:
// plain, gzip or bzip2 compressed.
func isArchive(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	r, err := decompress(f)
	if err != nil {
		return false
	}
	_, err = tar.NewReader(r).Next()
	return err == nil
}

// decompress undoes gzip or bzip2 compression, if any.
func decompress(r io.Reader) (io.Reader, error) {
	br := bufio.NewReader(r)
	magic, _ := br.Peek(3)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		return gzip.NewReader(br)
	case bytes.HasPrefix(magic, []byte("BZh")):
		return bzip2.NewReader(br), nil
	}
	return br, nil
}

// copyArchive copies an archive's entries into tw, names cleaned to
// relative paths and owners kept.
func copyArchive(tw *tar.Writer, p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := decompress(f)
	if err != nil {
		return err
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read archive %s: %w", filepath.Base(p), err)
		}
		name := cleanRel(h.Name)
		if name == "." {
			continue
		}
		h.Name = name
		if h.Typeflag == tar.TypeLink {
			h.Linkname = cleanRel(h.Linkname)
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}

// copyDest decides where a COPY's sources land: dir is the directory the
// stream is extracted into; name is a single file's name there ("" when
// sources keep their names or a directory's contents are copied).
// destIsDir tells whether the destination is an existing directory.
func copyDest(dest, workdir string, srcs []source, destIsDir func(string) bool) (dir, name string, err error) {
	slash := strings.HasSuffix(dest, "/") || dest == "." || strings.HasSuffix(dest, "/.")
	if !path.IsAbs(dest) {
		dest = path.Join("/", workdir, dest)
	}
	dest = path.Clean(dest)
	if len(srcs) > 1 && !slash {
		return "", "", errors.New("when using COPY with more than one source file, the destination must be a directory and end with a /")
	}
	if slash || srcs[0].isDir || destIsDir(dest) {
		return dest, "", nil
	}
	if dest == "/" {
		return "/", "", nil
	}
	return path.Dir(dest), path.Base(dest), nil
}

package build

import (
	"path"
	"strings"
	"testing"
)

// FuzzParse: any Dockerfile parses or fails cleanly; a plan has a FROM
// per stage and a base name for each.
func FuzzParse(f *testing.F) {
	f.Add([]byte(multiStage), "")
	f.Add([]byte("FROM a\nENV A=$B\nARG X=${Y:-z}\nCOPY --from=0 /x /y\n"), "0")
	f.Fuzz(func(t *testing.T, df []byte, target string) {
		p, err := Parse(df, map[string]string{"TAG": "t"}, target, map[string]string{"k": "v"})
		if err != nil {
			return
		}
		if len(p.Stages) == 0 || p.Steps() < len(p.Stages) {
			t.Fatalf("plan without stages: %+v", p)
		}
		for _, s := range p.Stages {
			if s.Base == "" {
				t.Fatalf("stage without a base: %+v", s)
			}
		}
	})
}

// FuzzCopyDest: a COPY always lands in an absolute, clean directory, a
// single file under a plain name.
func FuzzCopyDest(f *testing.F) {
	f.Add("/x/y", "/app", false, 1)
	f.Add("../../..", "rel/dir", true, 2)
	f.Fuzz(func(t *testing.T, dest, workdir string, isDir bool, n int) {
		srcs := make([]source, 1+min(max(n, 0), 3))
		for i := range srcs {
			srcs[i] = source{rel: "s", isDir: isDir}
		}
		dir, name, err := copyDest(dest, workdir, srcs, func(string) bool { return false })
		if err != nil {
			return
		}
		if !path.IsAbs(dir) || path.Clean(dir) != dir || strings.Contains(name, "/") || name == ".." {
			t.Fatalf("copyDest(%q, %q) = %q %q", dest, workdir, dir, name)
		}
	})
}

// FuzzRenameEntry: names copied out of an image stay relative.
func FuzzRenameEntry(f *testing.F) {
	f.Add("../../etc/passwd", "")
	f.Fuzz(func(t *testing.T, name, file string) {
		got := renameEntry(name, cleanRel(file))
		if strings.HasPrefix(got, "/") || strings.HasPrefix(got, "../") || got == ".." {
			t.Fatalf("renameEntry(%q) = %q", name, got)
		}
	})
}

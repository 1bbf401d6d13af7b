package image_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/berthnet/berth/internal/image"
	"github.com/berthnet/berth/internal/image/imagetest"
)

// tarNames lists the entry names of a tar.
func tarNames(t *testing.T, r io.Reader) map[string]string {
	t.Helper()
	out := map[string]string{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out[h.Name] = string(b)
	}
}

func TestCommitAndExportOfACopiedRootfs(t *testing.T) {
	s := copyStore(t)
	src, err := s.Add(context.Background(), twoLayerImage(t), []string{"localhost/base:1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rootfs, err := s.Mount(src.ID, "ctr1")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "etc/added"), []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(rootfs, "etc/keep")); err != nil {
		t.Fatal(err)
	}
	var exp bytes.Buffer
	if err := s.Export("ctr1", &exp); err != nil {
		t.Fatal(err)
	}
	names := tarNames(t, &exp)
	if names["etc/added"] != "a" || names["app/new"] != "n" {
		t.Errorf("export lacks files: %v", names)
	}
	if _, ok := names["etc/keep"]; ok {
		t.Error("export has a deleted file")
	}
	img, err := s.Commit(context.Background(), "ctr1", image.CommitOptions{
		Reference: "committed", Author: "Ann", Message: "snap",
		Changes: []string{`CMD ["/bin/true"]`, "ENV A=1", "WORKDIR /app", "LABEL k=v", "EXPOSE 8080", `ENTRYPOINT ["/bin/env"]`},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(img.Names, []string{"localhost/committed:latest"}) || img.Config.WorkingDir != "/app" ||
		!slices.Equal(img.Config.Cmd, []string{"/bin/true"}) || !slices.Equal(img.Config.Entrypoint, []string{"/bin/env"}) ||
		!slices.Contains(img.Config.Env, "A=1") || img.Config.Labels["k"] != "v" || !slices.Contains(img.Config.ExposedPorts, "8080/tcp") {
		t.Errorf("committed image %+v", img)
	}
	cf, err := s.ConfigFile(img.ID)
	if err != nil || cf.Author != "Ann" || cf.History[len(cf.History)-1].Comment != "snap" {
		t.Errorf("config %+v %v", cf, err)
	}
	root2, err := s.Mount(img.ID, "ctr2")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(root2, "etc/added")); err != nil || string(b) != "a" {
		t.Errorf("committed file: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(root2, "etc/keep")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("deleted file is back: %v", err)
	}
	if _, err := s.Commit(context.Background(), "nosuch", image.CommitOptions{}); err == nil {
		t.Error("commit of an unknown container")
	}
	if _, err := s.Commit(context.Background(), "ctr1", image.CommitOptions{Changes: []string{"FROM x"}}); err == nil || !strings.Contains(err.Error(), "FROM") {
		t.Errorf("bad change: %v", err)
	}
}

func TestSaveAndLoadRoundTrip(t *testing.T) {
	for _, format := range []string{image.FormatDockerArchive, image.FormatOCIArchive} {
		t.Run(format, func(t *testing.T) {
			s := copyStore(t)
			a, err := s.Add(context.Background(), twoLayerImage(t), []string{"localhost/a:1"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			b := imagetest.BusyboxImage(t, s)
			var archive bytes.Buffer
			names := []string{"a:1", b.Names[0]}
			if format == image.FormatOCIArchive {
				names = names[:1]
			}
			if err := s.Save(&archive, names, format); err != nil {
				t.Fatal(err)
			}
			s2 := copyStore(t)
			loaded, err := s2.LoadReader(context.Background(), &archive, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(loaded) != len(names) || loaded[0].Image.ID != a.ID || !slices.Equal(loaded[0].Names, []string{"localhost/a:1"}) {
				t.Fatalf("loaded %+v", loaded)
			}
			if len(names) == 2 && loaded[1].Image.ID != b.ID {
				t.Errorf("second image %s, want %s", loaded[1].Image.ID, b.ID)
			}
			root, err := s2.Mount(a.ID, "c")
			if err != nil {
				t.Fatal(err)
			}
			checkFlattened(t, root)
		})
	}
	s := copyStore(t)
	if err := s.Save(io.Discard, []string{"nosuch"}, ""); !errors.Is(err, image.ErrNotFound) {
		t.Errorf("save of a missing image: %v", err)
	}
	if err := s.Save(io.Discard, nil, "tar"); err == nil {
		t.Error("save of nothing")
	}
}

func TestPrune(t *testing.T) {
	s := copyStore(t)
	named, err := s.Add(context.Background(), twoLayerImage(t), []string{"localhost/a:1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	dangling := imagetest.Import(t, s, "", nil)
	used := imagetest.Import(t, s, "", nil, "ENV X=1")
	if _, err := s.Mount(used.ID, "c1"); err != nil {
		t.Fatal(err)
	}
	got, err := s.Prune(false)
	if err != nil || !slices.Equal(got, []string{dangling.ID}) {
		t.Errorf("Prune(false) = %v, %v; want %s", got, err, dangling.ID)
	}
	got, err = s.Prune(true)
	if err != nil || !slices.Equal(got, []string{named.ID}) {
		t.Errorf("Prune(true) = %v, %v; want %s", got, err, named.ID)
	}
	imgs, _ := s.List()
	if len(imgs) != 1 || imgs[0].ID != used.ID {
		t.Errorf("left %v", imgs)
	}
}

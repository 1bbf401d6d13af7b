package build

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"

	"github.com/berthnet/berth/internal/engine"
	"github.com/berthnet/berth/internal/image"
	"github.com/berthnet/berth/internal/runopts"
	"github.com/berthnet/berth/internal/runspec"
)

// copySpec is a COPY or ADD.
type copySpec struct {
	srcs        []string
	dest, chown string
	from        string
	add         bool
}

// work is a container on the image a COPY changes ("" id: the image is
// empty, and the layer is written directly).
type work struct {
	b  *build
	id string
	// also are containers of images a COPY --from reads.
	also []*work
}

// workContainer creates a container (never started) on image cur.
func (r *build) workContainer(cur string, c instructions.Command) (*work, error) {
	w := &work{b: r}
	if cur == "" {
		return w, nil
	}
	ctr, _, err := r.b.Engine.Create(engine.CreateOptions{
		Image: cur, Entrypoint: []string{}, Args: []string{"/bin/sh", "-c", "#(nop) " + instructionText(c)},
		Net: runopts.NetMode{Kind: runopts.ModeNone},
	})
	if err != nil {
		return nil, fmt.Errorf("create a container: %w", err)
	}
	w.id = ctr.Config.ID
	return w, nil
}

func (w *work) remove() {
	if w.id != "" {
		_, _ = w.b.b.Engine.RemoveWith(w.id, true, true)
	}
	for _, a := range w.also {
		a.remove()
	}
}

// errStop ends a copy out once its first header is read.
var errStop = errors.New("stop")

// headWriter keeps the start of a tar stream: enough for its first
// header, with a PAX extended header before it.
type headWriter struct{ bytes.Buffer }

const headSize = 8 << 10

func (h *headWriter) Write(p []byte) (int, error) {
	n := min(len(p), headSize-h.Len())
	h.Buffer.Write(p[:n])
	if h.Len() >= headSize {
		return n, errStop
	}
	return n, nil
}

// isDir reports whether p is a directory (following links) in ctr.
func (w *work) isDir(ctr, p string) bool {
	if ctr == "" {
		return false
	}
	var hw headWriter
	_ = w.b.b.Engine.Copy(engine.CopyEnd{Container: ctr, Path: strings.TrimSuffix(p, "/") + "/"}, engine.CopyEnd{Path: "-"}, engine.CopyOptions{Stdout: &hw})
	h, err := tar.NewReader(&hw.Buffer).Next()
	return err == nil && h.Typeflag == tar.TypeDir
}

// readFile reads a small file of ctr (nil when missing).
func (w *work) readFile(p string) []byte {
	if w.id == "" {
		return nil
	}
	var buf bytes.Buffer
	if err := w.b.b.Engine.Copy(engine.CopyEnd{Container: w.id, Path: p}, engine.CopyEnd{Path: "-"}, engine.CopyOptions{Stdout: &buf}); err != nil {
		return nil
	}
	tr := tar.NewReader(&buf)
	if _, err := tr.Next(); err != nil {
		return nil
	}
	data, _ := io.ReadAll(io.LimitReader(tr, 4<<20))
	return data
}

// owner resolves --chown against the image's /etc/passwd and /etc/group;
// a user alone gives the group of the same number, as Docker does.
func (w *work) owner(spec string) (*owner, error) {
	if spec == "" {
		return nil, nil
	}
	return parseChown(spec, func() ([]byte, []byte) { return w.readFile("/etc/passwd"), w.readFile("/etc/group") })
}

// parseChown resolves USER[:GROUP]; files reads passwd and group, only
// for names.
func parseChown(spec string, files func() ([]byte, []byte)) (*owner, error) {
	u, g, hasGroup := strings.Cut(spec, ":")
	var passwd, group []byte
	if !numeric(u) || (hasGroup && !numeric(g)) {
		passwd, group = files()
	}
	if !hasGroup {
		uid, _, err := runspec.ResolveUser(u, passwd, group)
		if err != nil {
			return nil, fmt.Errorf("--chown=%s: %w", spec, err)
		}
		return &owner{uid: int(uid), gid: int(uid)}, nil
	}
	uid, gid, err := runspec.ResolveUser(u+":"+g, passwd, group)
	if err != nil {
		return nil, fmt.Errorf("--chown=%s: %w", spec, err)
	}
	return &owner{uid: int(uid), gid: int(gid)}, nil
}

func numeric(s string) bool {
	_, err := strconv.ParseUint(s, 10, 32)
	return err == nil
}

// copy runs a COPY or ADD.
func (r *build) copy(ctx context.Context, s *state, cur string, c instructions.Command, sp copySpec) (string, error) {
	w, err := r.workContainer(cur, c)
	if err != nil {
		return "", fmt.Errorf("%s: %w", strings.ToUpper(c.Name()), err)
	}
	defer w.remove()
	own, err := w.owner(sp.chown)
	if err != nil {
		return "", err
	}
	var (
		dir   string
		write func(io.Writer) error
		extra string
	)
	if sp.from != "" {
		dir, write, extra, err = r.fromImage(ctx, s, w, sp, own)
	} else {
		dir, write, extra, err = r.fromContext(s, w, sp, own)
	}
	if err != nil {
		return "", fmt.Errorf("%s failed: %w", strings.ToUpper(c.Name()), err)
	}
	key := cacheKey(cur, instructionText(c), s.argsKey(), dir+"\x00"+extra)
	if id, ok := r.cached(key); ok {
		return id, nil
	}
	id, err := r.layer(ctx, s, cur, w, c, dir, write)
	if err != nil {
		return "", fmt.Errorf("%s: %w", strings.ToUpper(c.Name()), err)
	}
	return r.done(key, id)
}

// fromContext plans a copy from the build context.
func (r *build) fromContext(s *state, w *work, sp copySpec, own *owner) (string, func(io.Writer) error, string, error) {
	if r.o.Context == nil {
		return "", nil, "", errors.New("the build has no context")
	}
	for _, p := range sp.srcs {
		if strings.Contains(p, "://") || strings.HasPrefix(p, "git@") {
			return "", nil, "", fmt.Errorf("ADD of a URL (%s): %w; download it with RUN or beforehand", p, ErrUnsupported)
		}
	}
	srcs, err := r.o.Context.sources(sp.srcs)
	if err != nil {
		return "", nil, "", err
	}
	dir, name, err := copyDest(sp.dest, s.cfg.WorkingDir, srcs, func(d string) bool { return w.isDir(w.id, d) })
	if err != nil {
		return "", nil, "", err
	}
	var entries []entry
	for _, src := range srcs {
		n := ""
		if !src.isDir {
			n = name
			if n == "" {
				n = path.Base(src.rel)
			}
		}
		es, err := r.o.Context.entries(src, n, sp.add)
		if err != nil {
			return "", nil, "", err
		}
		entries = append(entries, es...)
	}
	sum, err := hashEntries(entries, own)
	if err != nil {
		return "", nil, "", err
	}
	return dir, func(wr io.Writer) error { return writeTar(wr, entries, own) }, sum, nil
}

// fromImage plans a COPY --from: files of an earlier stage or an image.
func (r *build) fromImage(ctx context.Context, s *state, w *work, sp copySpec, own *owner) (string, func(io.Writer) error, string, error) {
	id, ok := r.stageRef(sp.from)
	if !ok {
		var err error
		if id, err = r.image(ctx, sp.from); err != nil {
			return "", nil, "", err
		}
	}
	if id == "" {
		return "", nil, "", fmt.Errorf("--from=%s is an empty image", sp.from)
	}
	src, err := r.workContainer(id, &instructions.CopyCommand{})
	if err != nil {
		return "", nil, "", err
	}
	w.also = append(w.also, src)
	var srcs []source
	for _, p := range sp.srcs {
		if hasGlob(p) {
			return "", nil, "", fmt.Errorf("COPY --from with a wildcard (%s): %w", p, ErrUnsupported)
		}
		abs := path.Join("/", p)
		srcs = append(srcs, source{rel: abs, isDir: w.isDir(src.id, abs)})
	}
	dir, name, err := copyDest(sp.dest, s.cfg.WorkingDir, srcs, func(d string) bool { return w.isDir(w.id, d) })
	if err != nil {
		return "", nil, "", err
	}
	extra := fmt.Sprintf("from %s %q %q", id, sp.srcs, fmt.Sprint(own))
	write := func(wr io.Writer) error { return r.imageFiles(wr, src.id, srcs, name, own) }
	return dir, write, extra, nil
}

// imageFiles writes the sources copied out of container ctr as one tar:
// a directory's contents, or a file under name (its own when "").
func (r *build) imageFiles(wr io.Writer, ctr string, srcs []source, name string, own *owner) error {
	tw := tar.NewWriter(wr)
	for _, src := range srcs {
		p, to := src.rel, name
		if src.isDir {
			p, to = strings.TrimSuffix(src.rel, "/")+"/.", ""
		} else if to == "" {
			to = path.Base(src.rel)
		}
		pr, pw := io.Pipe()
		go func() {
			pw.CloseWithError(r.b.Engine.Copy(engine.CopyEnd{Container: ctr, Path: p}, engine.CopyEnd{Path: "-"}, engine.CopyOptions{Stdout: pw}))
		}()
		err := retar(tw, tar.NewReader(pr), to, own)
		pr.CloseWithError(io.ErrClosedPipe)
		if err != nil {
			return err
		}
	}
	return tw.Close()
}

// retar copies the tar stream of one source copied out of a container
// into tw: a file's single entry named file, or a directory's contents
// (file ""; the directory itself left out); owners set by own when
// given.
func retar(tw *tar.Writer, tr *tar.Reader, file string, own *owner) error {
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := renameEntry(h.Name, file)
		if name == "" {
			continue
		}
		h.Name = name
		if h.Typeflag == tar.TypeDir {
			h.Name += "/"
		}
		if h.Typeflag == tar.TypeLink {
			h.Linkname = renameEntry(h.Linkname, file)
		}
		if own != nil {
			h.Uid, h.Gid, h.Uname, h.Gname = own.uid, own.gid, "", ""
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}

// renameEntry is an entry's name in the copy: file for a file source,
// else the name made relative ("" for the directory itself).
func renameEntry(name, file string) string {
	if file != "" {
		return file
	}
	rel := cleanRel(name)
	if rel == "." {
		return ""
	}
	return rel
}

// layer commits the files write produces, extracted into dir, as a new
// layer on cur.
func (r *build) layer(ctx context.Context, s *state, cur string, w *work, c instructions.Command, dir string, write func(io.Writer) error) (string, error) {
	createdBy := historyLine(c, nil)
	if w.id == "" {
		return r.firstLayer(ctx, s, dir, write, createdBy)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(write(pw)) }()
	err := r.b.Engine.Copy(engine.CopyEnd{Path: "-"}, engine.CopyEnd{Container: w.id, Path: dir}, engine.CopyOptions{Stdin: pr, MakeParents: true})
	pr.CloseWithError(io.ErrClosedPipe)
	if err != nil {
		return "", err
	}
	img, err := r.b.Images.Commit(ctx, w.id, image.CommitOptions{ContainerConfig: &s.cfg, CreatedBy: createdBy, Author: s.author, Now: r.now()})
	if err != nil {
		return "", err
	}
	return img.ID, nil
}

// firstLayer writes the first layer of an empty image directly: the
// directories down to dir, then the files.
func (r *build) firstLayer(ctx context.Context, s *state, dir string, write func(io.Writer) error, createdBy string) (string, error) {
	f, err := os.CreateTemp("", "berth-build-layer-")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	err = prefixedLayer(f, dir, write)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", err
	}
	layer, err := tarball.LayerFromFile(f.Name())
	if err != nil {
		return "", err
	}
	base, err := r.v1Image("")
	if err != nil {
		return "", err
	}
	img, err := mutate.Append(base, mutate.Addendum{Layer: layer})
	if err != nil {
		return "", err
	}
	if img, err = r.withConfig(img, s, v1.History{CreatedBy: createdBy}); err != nil {
		return "", err
	}
	stored, err := r.b.Images.Add(ctx, img, nil, nil)
	if err != nil {
		return "", err
	}
	return stored.ID, nil
}

// prefixedLayer writes a layer holding the directories of dir and the
// stream write produces, moved under dir.
func prefixedLayer(out io.Writer, dir string, write func(io.Writer) error) error {
	tw := tar.NewWriter(out)
	rel := cleanRel(dir)
	if rel != "." {
		parts := strings.Split(rel, "/")
		for i := range parts {
			h := &tar.Header{Name: strings.Join(parts[:i+1], "/") + "/", Typeflag: tar.TypeDir, Mode: 0o755}
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
		}
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(write(pw)) }()
	tr := tar.NewReader(pr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			pr.CloseWithError(err)
			return err
		}
		h.Name = strings.TrimPrefix(path.Join(rel, h.Name), "./")
		if h.Typeflag == tar.TypeDir {
			h.Name += "/"
		}
		if h.Typeflag == tar.TypeLink {
			h.Linkname = path.Join(rel, h.Linkname)
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
	return tw.Close()
}

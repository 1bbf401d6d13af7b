package dockerapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/moby/client"

	"github.com/berthnet/berth/internal/engine"
	"github.com/berthnet/berth/internal/image"
)

// fakeStore keeps images and volumes in memory for fakeBackend.
type fakeStore struct {
	smu      sync.Mutex
	imgs     []ImageInfo
	vols     []VolumeInfo
	lastAuth *authn.AuthConfig
}

func fakeID(c byte) string { return strings.Repeat(string(c), 64) }

func (f *fakeStore) Images(context.Context) ([]ImageInfo, error) {
	f.smu.Lock()
	defer f.smu.Unlock()
	return slices.Clone(f.imgs), nil
}

func (f *fakeStore) find(ref string) int {
	for i, in := range f.imgs {
		if strings.HasPrefix(in.Image.ID, strings.TrimPrefix(ref, "sha256:")) || slices.Contains(in.Image.Names, ref) ||
			slices.Contains(in.Image.Names, "docker.io/library/"+ref) || slices.Contains(in.Image.Names, "docker.io/library/"+ref+":latest") {
			return i
		}
	}
	return -1
}

func (f *fakeStore) Image(_ context.Context, ref string) (ImageInfo, error) {
	f.smu.Lock()
	defer f.smu.Unlock()
	if i := f.find(ref); i >= 0 {
		return f.imgs[i], nil
	}
	return ImageInfo{}, fmt.Errorf("%s: image not known: %w", ref, ErrNotFound)
}

func (f *fakeStore) PullImage(_ context.Context, ref string, auth *authn.AuthConfig, progress io.Writer) (image.Image, error) {
	f.smu.Lock()
	f.lastAuth = auth
	f.smu.Unlock()
	fmt.Fprintf(progress, "Trying to pull %s...\n", ref)
	if strings.Contains(ref, "missing") {
		return image.Image{}, fmt.Errorf("pull %s: manifest unknown: %w", ref, ErrNotFound)
	}
	fmt.Fprintln(progress, "Getting image source signatures")
	fmt.Fprintln(progress, "Copying blob sha256:"+fakeID('1')+" skipped: already exists")
	fmt.Fprintln(progress, "Copying blob sha256:"+fakeID('2'))
	if strings.Contains(ref, "broken") {
		return image.Image{}, fmt.Errorf("pull %s: unexpected EOF", ref)
	}
	fmt.Fprintln(progress, "Copying config sha256:"+fakeID('c'))
	img := image.Image{ID: fakeID('c'), Names: []string{"docker.io/library/" + ref}, Digest: "sha256:" + fakeID('d')}
	f.smu.Lock()
	defer f.smu.Unlock()
	f.imgs = append(f.imgs, ImageInfo{Image: img})
	return img, nil
}

func (f *fakeStore) TagImage(_ context.Context, target, name string) error {
	f.smu.Lock()
	defer f.smu.Unlock()
	i := f.find(target)
	if i < 0 {
		return fmt.Errorf("%s: image not known: %w", target, ErrNotFound)
	}
	f.imgs[i].Image.Names = append(f.imgs[i].Image.Names, name)
	return nil
}

func (f *fakeStore) RemoveImage(_ context.Context, ref string, force bool) (image.RemoveResult, error) {
	f.smu.Lock()
	defer f.smu.Unlock()
	i := f.find(ref)
	if i < 0 {
		return image.RemoveResult{}, fmt.Errorf("%s: image not known: %w", ref, ErrNotFound)
	}
	if f.imgs[i].Containers > 0 && !force {
		return image.RemoveResult{}, fmt.Errorf("image used by c1: %w", ErrConflict)
	}
	res := image.RemoveResult{Untagged: f.imgs[i].Image.Names, Deleted: f.imgs[i].Image.ID}
	f.imgs = slices.Delete(f.imgs, i, i+1)
	return res, nil
}

func (f *fakeStore) PruneImages(_ context.Context, all bool) ([]string, error) {
	f.smu.Lock()
	defer f.smu.Unlock()
	var ids []string
	f.imgs = slices.DeleteFunc(f.imgs, func(in ImageInfo) bool {
		gone := in.Containers == 0 && (all || len(in.Image.Names) == 0)
		if gone {
			ids = append(ids, in.Image.ID)
		}
		return gone
	})
	return ids, nil
}

// SaveImages writes the images as JSON, which LoadImages reads back.
func (f *fakeStore) SaveImages(_ context.Context, names []string, w io.Writer) error {
	f.smu.Lock()
	defer f.smu.Unlock()
	var imgs []image.Image
	for _, n := range names {
		i := f.find(n)
		if i < 0 {
			return fmt.Errorf("%s: image not known", n)
		}
		imgs = append(imgs, f.imgs[i].Image)
	}
	return json.NewEncoder(w).Encode(imgs)
}

func (f *fakeStore) LoadImages(_ context.Context, r io.Reader) ([]LoadedImage, error) {
	var imgs []image.Image
	if err := json.NewDecoder(r).Decode(&imgs); err != nil {
		return nil, fmt.Errorf("load: not an archive: %w", ErrInvalid)
	}
	f.smu.Lock()
	defer f.smu.Unlock()
	var out []LoadedImage
	for _, img := range imgs {
		f.imgs = append(f.imgs, ImageInfo{Image: img})
		out = append(out, LoadedImage{ID: img.ID, Names: img.Names})
	}
	return out, nil
}

func (f *fakeStore) LayerSizes(_ context.Context, id string) ([]int64, error) {
	f.smu.Lock()
	defer f.smu.Unlock()
	i := f.find(id)
	if i < 0 {
		return nil, fmt.Errorf("%s: image not known: %w", id, ErrNotFound)
	}
	var sizes []int64
	for n := range f.imgs[i].Image.Layers {
		sizes = append(sizes, int64(100*(n+1)))
	}
	return sizes, nil
}

func (f *fakeStore) Volumes(context.Context) ([]VolumeInfo, error) {
	f.smu.Lock()
	defer f.smu.Unlock()
	return slices.Clone(f.vols), nil
}

func (f *fakeStore) Volume(_ context.Context, name string) (VolumeInfo, error) {
	f.smu.Lock()
	defer f.smu.Unlock()
	for _, v := range f.vols {
		if v.Volume.Name == name {
			return v, nil
		}
	}
	return VolumeInfo{}, fmt.Errorf("get volume: no such volume %s: %w", name, ErrNotFound)
}

func (f *fakeStore) CreateVolume(_ context.Context, o engine.VolumeOptions) (VolumeInfo, error) {
	f.smu.Lock()
	defer f.smu.Unlock()
	if o.Name == "" {
		o.Name = fakeID('a')
	}
	for _, v := range f.vols {
		if v.Volume.Name == o.Name {
			return VolumeInfo{}, fmt.Errorf("volume with name %s already exists: %w", o.Name, ErrConflict)
		}
	}
	v := VolumeInfo{Volume: engine.Volume{Name: o.Name, Driver: "local", Labels: o.Labels, Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		Mountpoint: "/var/lib/berth/volumes/" + o.Name + "/_data"}
	f.vols = append(f.vols, v)
	return v, nil
}

func (f *fakeStore) RemoveVolume(_ context.Context, name string) error {
	f.smu.Lock()
	defer f.smu.Unlock()
	for i, v := range f.vols {
		if v.Volume.Name == name {
			if v.InUse {
				return fmt.Errorf("volume %s is being used: %w", name, ErrConflict)
			}
			f.vols = slices.Delete(f.vols, i, i+1)
			return nil
		}
	}
	return fmt.Errorf("no volume with name %q found: %w", name, ErrNotFound)
}

func testImages() []ImageInfo {
	cf := &v1.ConfigFile{Architecture: "amd64", OS: "linux", Config: v1.Config{
		Cmd: []string{"sh"}, Env: []string{"PATH=/bin"}, WorkingDir: "/srv", User: "1000",
		ExposedPorts: map[string]struct{}{"80/tcp": {}}, Labels: map[string]string{"app": "web"},
		Healthcheck: &v1.HealthConfig{Test: []string{"CMD", "true"}, Interval: time.Second},
	}}
	return []ImageInfo{
		{Image: image.Image{ID: fakeID('b'), Names: []string{"docker.io/library/busybox:latest", "localhost/x:1"},
			RepoDigests: []string{"docker.io/library/busybox@sha256:" + fakeID('e')},
			Created:     time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC), Size: 1234, Architecture: "amd64", OS: "linux",
			Config: image.Config{Labels: map[string]string{"app": "web"}}, Layers: []string{"sha256:" + fakeID('9')}},
			Config: cf, Containers: 1},
		{Image: image.Image{ID: fakeID('f'), Created: time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC), Size: 10}},
	}
}

func TestImageListInspect(t *testing.T) {
	b := &fakeBackend{}
	b.imgs = testImages()
	c, _ := serve(t, b)
	ctx := context.Background()
	res, err := c.ImageList(ctx, client.ImageListOptions{})
	if err != nil || len(res.Items) != 2 {
		t.Fatalf("list: %+v %v", res, err)
	}
	s := res.Items[0]
	if s.ID != "sha256:"+fakeID('b') || strings.Join(s.RepoTags, ",") != "busybox:latest,localhost/x:1" ||
		s.RepoDigests[0] != "busybox@sha256:"+fakeID('e') || s.Created != time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC).Unix() || s.Size != 1234 {
		t.Fatalf("summary %+v", s)
	}
	for _, tc := range []struct {
		f    client.Filters
		want string
	}{
		{client.Filters{}.Add("dangling", "true"), fakeID('f')},
		{client.Filters{}.Add("label", "app=web"), fakeID('b')},
		{client.Filters{}.Add("reference", "busybox"), fakeID('b')},
		{client.Filters{}.Add("reference", "localhost/*:1"), fakeID('b')},
		{client.Filters{}.Add("before", "busybox"), fakeID('f')},
	} {
		res, err := c.ImageList(ctx, client.ImageListOptions{Filters: tc.f})
		if err != nil || len(res.Items) != 1 || res.Items[0].ID != "sha256:"+tc.want {
			t.Errorf("filter %v: %+v %v", tc.f, res.Items, err)
		}
	}
	if _, err := c.ImageList(ctx, client.ImageListOptions{Filters: client.Filters{}.Add("dangling", "maybe")}); !cerrdefs.IsInvalidArgument(err) {
		t.Errorf("bad dangling: %v", err)
	}
	in, err := c.ImageInspect(ctx, "localhost/x:1")
	if err != nil {
		t.Fatal(err)
	}
	cfg := in.Config
	if in.ID != "sha256:"+fakeID('b') || in.Os != "linux" || in.Architecture != "amd64" || in.RootFS.Layers[0] != "sha256:"+fakeID('9') ||
		in.Created != "2024-05-01T00:00:00Z" || cfg == nil || cfg.Cmd[0] != "sh" || cfg.WorkingDir != "/srv" || cfg.User != "1000" ||
		cfg.Labels["app"] != "web" || len(cfg.ExposedPorts) != 1 || cfg.Healthcheck == nil || cfg.Healthcheck.Interval != time.Second {
		t.Fatalf("inspect %+v config %+v", in.InspectResponse, cfg)
	}
	if _, err := c.ImageInspect(ctx, "nosuch"); !cerrdefs.IsNotFound(err) || !strings.Contains(err.Error(), "No such image: nosuch") {
		t.Fatalf("missing: %v", err)
	}
}

func TestImageTagRemovePrune(t *testing.T) {
	b := &fakeBackend{}
	b.imgs = testImages()
	c, _ := serve(t, b)
	ctx := context.Background()
	if _, err := c.ImageTag(ctx, client.ImageTagOptions{Source: "busybox", Target: "team/app:v2"}); err != nil {
		t.Fatal(err)
	}
	if in, err := c.ImageInspect(ctx, "docker.io/team/app:v2"); err != nil || in.ID != "sha256:"+fakeID('b') {
		t.Fatalf("tagged: %v", err)
	}
	if _, err := c.ImageTag(ctx, client.ImageTagOptions{Source: "nosuch", Target: "a:b"}); !cerrdefs.IsNotFound(err) {
		t.Fatalf("tag missing: %v", err)
	}
	if _, err := c.ImageRemove(ctx, "busybox", client.ImageRemoveOptions{}); !cerrdefs.IsConflict(err) {
		t.Fatalf("remove in use: %v", err)
	}
	rm, err := c.ImageRemove(ctx, "busybox", client.ImageRemoveOptions{Force: true})
	if err != nil || len(rm.Items) != 4 || rm.Items[2].Untagged != "team/app:v2" || rm.Items[0].Untagged != "busybox:latest" || rm.Items[3].Deleted != "sha256:"+fakeID('b') {
		t.Fatalf("remove: %+v %v", rm.Items, err)
	}
	pr, err := c.ImagePrune(ctx, client.ImagePruneOptions{})
	if err != nil || len(pr.Report.ImagesDeleted) != 1 || pr.Report.ImagesDeleted[0].Deleted != "sha256:"+fakeID('f') || pr.Report.SpaceReclaimed != 10 {
		t.Fatalf("prune: %+v %v", pr, err)
	}
}

func TestImagePull(t *testing.T) {
	b := &fakeBackend{}
	c, _ := serve(t, b)
	ctx := context.Background()
	resp, err := c.ImagePull(ctx, "busybox:latest", client.ImagePullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for m, err := range resp.JSONMessages(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, m.ID+"|"+m.Status)
	}
	want := []string{"latest|Pulling from library/busybox", "111111111111|Already exists", "222222222222|Pull complete",
		"|Digest: sha256:" + fakeID('d'), "|Status: Downloaded newer image for busybox:latest"}
	if !slices.Equal(got, want) {
		t.Fatalf("messages\n%q\nwant\n%q", got, want)
	}
	if b.lastAuth != nil {
		t.Fatalf("credentials without a header: %+v", b.lastAuth)
	}
	// Credentials from X-Registry-Auth replace the stored ones.
	auth := base64.URLEncoding.EncodeToString([]byte(`{"username":"ann","password":"s3cret","serveraddress":"reg.example"}`))
	resp, err = c.ImagePull(ctx, "busybox:latest", client.ImagePullOptions{RegistryAuth: auth})
	if err != nil {
		t.Fatal(err)
	}
	if err := resp.Wait(ctx); err != nil || b.lastAuth == nil || b.lastAuth.Username != "ann" || b.lastAuth.Password != "s3cret" {
		t.Fatalf("pull with credentials: %v %+v", err, b.lastAuth)
	}
	if _, err := c.ImagePull(ctx, "busybox:latest", client.ImagePullOptions{RegistryAuth: "%%%"}); !cerrdefs.IsInvalidArgument(err) {
		t.Fatalf("bad auth header: %v", err)
	}
	// A pull that fails before any progress is a plain error status.
	if _, err := c.ImagePull(ctx, "missing", client.ImagePullOptions{}); !cerrdefs.IsNotFound(err) {
		t.Fatalf("missing: %v", err)
	}
	// One that fails mid-stream ends the stream with Docker's error message.
	resp, err = c.ImagePull(ctx, "broken", client.ImagePullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := resp.Wait(ctx); err == nil || !strings.Contains(err.Error(), "unexpected EOF") {
		t.Fatalf("broken pull: %v", err)
	}
}

func TestVolumes(t *testing.T) {
	b := &fakeBackend{}
	c, _ := serve(t, b)
	ctx := context.Background()
	cr, err := c.VolumeCreate(ctx, client.VolumeCreateOptions{Name: "data", Labels: map[string]string{"app": "db"}})
	if err != nil || cr.Volume.Name != "data" || cr.Volume.Driver != "local" || cr.Volume.Scope != "local" ||
		cr.Volume.CreatedAt != "2026-01-02T03:04:05Z" || cr.Volume.Mountpoint != "/var/lib/berth/volumes/data/_data" {
		t.Fatalf("create: %+v %v", cr, err)
	}
	// Creating an existing volume answers with it, as Docker does.
	if again, err := c.VolumeCreate(ctx, client.VolumeCreateOptions{Name: "data"}); err != nil || again.Volume.Labels["app"] != "db" {
		t.Fatalf("create again: %+v %v", again, err)
	}
	if _, err := c.VolumeCreate(ctx, client.VolumeCreateOptions{Name: "x", DriverOpts: map[string]string{"type": "nfs"}}); !cerrdefs.IsInvalidArgument(err) {
		t.Fatalf("driver opts: %v", err)
	}
	if _, err := c.VolumeCreate(ctx, client.VolumeCreateOptions{Name: "x", Driver: "nfs"}); !cerrdefs.IsInvalidArgument(err) {
		t.Fatalf("driver: %v", err)
	}
	if _, err := c.VolumeCreate(ctx, client.VolumeCreateOptions{Name: "other"}); err != nil {
		t.Fatal(err)
	}
	b.vols[1].InUse = true
	for _, tc := range []struct {
		f    client.Filters
		want string
	}{
		{client.Filters{}.Add("label", "app=db"), "data"},
		{client.Filters{}.Add("name", "^oth"), "other"},
		{client.Filters{}.Add("dangling", "true"), "data"},
		{client.Filters{}.Add("dangling", "false"), "other"},
	} {
		res, err := c.VolumeList(ctx, client.VolumeListOptions{Filters: tc.f})
		if err != nil || len(res.Items) != 1 || res.Items[0].Name != tc.want {
			t.Errorf("filter %v: %+v %v", tc.f, res.Items, err)
		}
	}
	if in, err := c.VolumeInspect(ctx, "data", client.VolumeInspectOptions{}); err != nil || in.Volume.Labels["app"] != "db" {
		t.Fatalf("inspect: %+v %v", in, err)
	}
	if _, err := c.VolumeInspect(ctx, "nosuch", client.VolumeInspectOptions{}); !cerrdefs.IsNotFound(err) {
		t.Fatalf("inspect missing: %v", err)
	}
	if _, err := c.VolumeRemove(ctx, "other", client.VolumeRemoveOptions{}); !cerrdefs.IsConflict(err) {
		t.Fatalf("remove in use: %v", err)
	}
	if _, err := c.VolumeRemove(ctx, "nosuch", client.VolumeRemoveOptions{}); !cerrdefs.IsNotFound(err) {
		t.Fatalf("remove missing: %v", err)
	}
	if _, err := c.VolumeRemove(ctx, "nosuch", client.VolumeRemoveOptions{Force: true}); err != nil {
		t.Fatalf("force remove missing: %v", err)
	}
	// Prune keeps named volumes unless all is asked for, and used ones always.
	if pr, err := c.VolumePrune(ctx, client.VolumePruneOptions{}); err != nil || len(pr.Report.VolumesDeleted) != 0 {
		t.Fatalf("prune: %+v %v", pr, err)
	}
	if pr, err := c.VolumePrune(ctx, client.VolumePruneOptions{All: true}); err != nil || !slices.Equal(pr.Report.VolumesDeleted, []string{"data"}) {
		t.Fatalf("prune all: %+v %v", pr, err)
	}
}

func FuzzProgressMessage(f *testing.F) {
	for _, s := range []string{"Copying blob sha256:" + fakeID('1'), "Copying blob sha256:ab skipped: already exists", "Copying blob ", "Trying to pull x..."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		m, ok := progressMessage(line)
		if ok && m.Status == "" {
			t.Fatalf("%q: message without status", line)
		}
		if len(m.ID) > 12 {
			t.Fatalf("%q: id %q", line, m.ID)
		}
	})
}

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"app": "docker.io/library/app", "team/app": "docker.io/team/app", "docker.io/team/app": "docker.io/team/app",
		"localhost/app": "localhost/app", "127.0.0.1:5000/x/y": "127.0.0.1:5000/x/y", "quay.io/a/b": "quay.io/a/b",
		"library/team/app": "docker.io/library/team/app",
	} {
		if got := Normalize(in); got != want {
			t.Errorf("Normalize(%q) = %q, want %q", in, got, want)
		}
		if f := Familiar(Normalize(in)); Normalize(f) != want {
			t.Errorf("Familiar(%q) = %q does not normalise back", want, f)
		}
	}
}

func TestPullPath(t *testing.T) {
	for in, want := range map[[2]string]string{
		{"docker.io/library/busybox", "latest"}:  "library/busybox latest",
		{"busybox", ""}:                          "library/busybox latest",
		{"127.0.0.1:5000/test/bb:1", ""}:         "test/bb 1",
		{"localhost/app", "v2"}:                  "app v2",
		{"quay.io/a/b", "sha256:" + fakeID('d')}: "a/b sha256:" + fakeID('d'),
	} {
		ref, err := pullRef(in[0], in[1])
		if err != nil {
			t.Fatal(err)
		}
		if repo, tag := pullPath(ref); repo+" "+tag != want {
			t.Errorf("pullPath(pullRef(%q, %q)) = %q %q, want %q", in[0], in[1], repo, tag, want)
		}
	}
	if _, err := pullRef("", "latest"); err == nil {
		t.Error("empty fromImage accepted")
	}
}

func FuzzPullRef(f *testing.F) {
	f.Add("busybox", "latest")
	f.Add("127.0.0.1:5000/a/b", "sha256:00")
	f.Add("localhost/x:1", "")
	f.Add("library/team/app", "")
	f.Fuzz(func(t *testing.T, from, tag string) {
		ref, err := pullRef(from, tag)
		if err != nil {
			return
		}
		if !strings.HasPrefix(ref, from) {
			t.Fatalf("pullRef(%q, %q) = %q", from, tag, ref)
		}
		pullPath(ref)
		if n := Normalize(from); Normalize(Familiar(n)) != n && !strings.HasPrefix(from, "docker.io/") {
			t.Fatalf("%q: Normalize(Familiar(%q)) = %q", from, n, Normalize(Familiar(n)))
		}
	})
}

func FuzzRegistryAuth(f *testing.F) {
	f.Add(base64.URLEncoding.EncodeToString([]byte(`{"username":"a","password":"b"}`)))
	f.Add("e30=")
	f.Add("%%%")
	f.Fuzz(func(t *testing.T, h string) {
		a, err := registryAuth(h)
		if err != nil && a != nil {
			t.Fatalf("%q: credentials and an error", h)
		}
		if a != nil && a.Username == "" && a.Password == "" && a.Auth == "" && a.IdentityToken == "" && a.RegistryToken == "" {
			t.Fatalf("%q: empty credentials returned", h)
		}
	})
}

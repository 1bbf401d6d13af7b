package dockerapi

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/moby/client"

	"github.com/berthnet/berth/internal/image"
)

// TestImageSaveLoad round-trips images through the save and load
// endpoints with Docker's client: save, remove, load, the same IDs.
func TestImageSaveLoad(t *testing.T) {
	b := &fakeBackend{}
	b.imgs = testImages()
	c, sock := serve(t, b)
	ctx := context.Background()
	rc, err := c.ImageSave(ctx, []string{"busybox", fakeID('f')})
	if err != nil {
		t.Fatal(err)
	}
	archive, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || len(archive) == 0 {
		t.Fatalf("save: %d bytes, %v", len(archive), err)
	}
	for _, ref := range []string{"busybox", fakeID('f')} {
		if _, err := c.ImageRemove(ctx, ref, client.ImageRemoveOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
	}
	for _, quiet := range []bool{true, false} {
		lr, err := c.ImageLoad(ctx, strings.NewReader(string(archive)), client.ImageLoadWithQuiet(quiet))
		if err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(lr)
		lr.Close()
		want := `{"stream":"Loaded image: busybox:latest\n"}` + "\n" + `{"stream":"Loaded image: localhost/x:1\n"}` + "\n" +
			`{"stream":"Loaded image ID: sha256:` + fakeID('f') + `\n"}` + "\n"
		if string(out) != want {
			t.Fatalf("load (quiet %v): %q", quiet, out)
		}
	}
	for ref, id := range map[string]string{"busybox": fakeID('b'), fakeID('f'): fakeID('f')} {
		if in, err := c.ImageInspect(ctx, ref); err != nil || in.ID != "sha256:"+id {
			t.Fatalf("inspect %s after load: %v", ref, err)
		}
	}
	if _, err := c.ImageSave(ctx, []string{"busybox", "nosuch"}); !cerrdefs.IsNotFound(err) || !strings.Contains(err.Error(), "No such image: nosuch") {
		t.Fatalf("save of a missing image: %v", err)
	}
	if _, err := c.ImageLoad(ctx, strings.NewReader("junk")); !cerrdefs.IsInvalidArgument(err) {
		t.Fatalf("load of junk: %v", err)
	}
	// GET /images/{name}/get is the one-image form docker 1.x clients use.
	hc := unixClient(sock)
	resp, err := hc.Get("http://d/v1.41/images/localhost/x:1/get")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-tar" || !strings.Contains(string(body), fakeID('b')) {
		t.Fatalf("GET /images/{name}/get: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
}

// TestImageHistory checks Docker's shape: newest first, the image's ID
// and tags on the newest entry, <missing> below, layer sizes on the
// steps that made a layer.
func TestImageHistory(t *testing.T) {
	b := &fakeBackend{}
	imgs := testImages()
	t0 := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	imgs[0].Image.Layers = append(imgs[0].Image.Layers, "sha256:"+fakeID('8'))
	imgs[0].Config.History = []v1.History{
		{Created: v1.Time{Time: t0}, CreatedBy: "ADD rootfs.tar /"},
		{Created: v1.Time{Time: t0.Add(time.Hour)}, CreatedBy: "CMD [\"sh\"]", EmptyLayer: true},
		{Created: v1.Time{Time: t0.Add(2 * time.Hour)}, CreatedBy: "RUN make", Comment: "built"},
	}
	b.imgs = imgs
	c, _ := serve(t, b)
	res, err := c.ImageHistory(context.Background(), "busybox")
	if err != nil {
		t.Fatal(err)
	}
	h := res.Items
	if len(h) != 3 || h[0].ID != "sha256:"+fakeID('b') || strings.Join(h[0].Tags, ",") != "busybox:latest,localhost/x:1" ||
		h[0].CreatedBy != "RUN make" || h[0].Comment != "built" || h[0].Size != 200 || h[0].Created != t0.Add(2*time.Hour).Unix() ||
		h[1].ID != "<missing>" || h[1].Size != 0 || h[1].Tags != nil || h[2].CreatedBy != "ADD rootfs.tar /" || h[2].Size != 100 {
		t.Fatalf("history: %+v", h)
	}
	// Without history in its configuration: one entry per layer.
	res, err = c.ImageHistory(context.Background(), fakeID('f'))
	if err != nil || len(res.Items) != 0 {
		t.Fatalf("history of an image without layers: %+v %v", res.Items, err)
	}
	if _, err := c.ImageHistory(context.Background(), "nosuch"); !cerrdefs.IsNotFound(err) {
		t.Fatalf("history of a missing image: %v", err)
	}
	// More non-empty steps than layers is a broken image, not a panic.
	in := imgs[0]
	in.Config = &v1.ConfigFile{History: []v1.History{{}, {}, {}}}
	if _, err := ImageHistory(in, []int64{1, 2}); err == nil {
		t.Fatal("history with too few layers: no error")
	}
	out, err := ImageHistory(ImageInfo{Image: image.Image{ID: fakeID('a'), Created: t0}}, []int64{5, 7})
	if err != nil || len(out) != 2 || out[0].Size != 7 || out[0].ID != "sha256:"+fakeID('a') || out[1].Size != 5 || out[1].Created != t0.Unix() {
		t.Fatalf("history without config history: %+v %v", out, err)
	}
}

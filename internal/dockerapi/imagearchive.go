package dockerapi

import (
	"bufio"
	"fmt"
	"net/http"
	"slices"

	dimage "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/jsonstream"
)

// imageSave serves GET /images/{name}/get and GET /images/get?names=...:
// the images as one docker-archive, the tar docker save writes. Every
// name is looked up before the first byte goes out, so a missing image
// is a 404; a failure while streaming aborts the connection, so the
// client never takes a cut archive for a whole one.
func (s *Server) imageSave(w http.ResponseWriter, r *http.Request, names []string) error {
	if len(r.URL.Query()["platform"]) > 0 {
		return fmt.Errorf("berth does not save images by platform: %w", ErrNotImplemented)
	}
	if len(names) == 0 {
		return fmt.Errorf("no image names given: %w", ErrInvalid)
	}
	for _, n := range names {
		if _, err := s.b.Image(r.Context(), n); err != nil {
			return noSuchImage(n, err)
		}
	}
	w.Header().Set("Content-Type", "application/x-tar")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	err := s.b.SaveImages(r.Context(), names, bw)
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		s.log.Warn("image save failed", "images", names, "err", err)
		panic(http.ErrAbortHandler)
	}
	return nil
}

// imageLoad serves POST /images/load: it stores the images of the
// archive in the body (a docker-archive or an OCI archive, compressed or
// not) and answers with Docker's JSON stream, one "Loaded image: NAME"
// (or "Loaded image ID: sha256:ID" for an image without a name) per
// image. berth shows no layer progress, with quiet or without.
func (s *Server) imageLoad(w http.ResponseWriter, r *http.Request) error {
	if len(r.URL.Query()["platform"]) > 0 {
		return fmt.Errorf("berth does not load images by platform: %w", ErrNotImplemented)
	}
	loaded, err := s.b.LoadImages(r.Context(), r.Body)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	for _, line := range LoadedLines(loaded) {
		b, err := jsonLine(jsonstream.Message{Stream: line + "\n"})
		if err != nil {
			return err
		}
		if _, err := w.Write(b); err != nil {
			return nil
		}
	}
	return nil
}

// LoadedLines are Docker's lines for loaded images: "Loaded image:
// busybox:latest" per name (familiar), "Loaded image ID: sha256:..." for
// an image without one.
func LoadedLines(loaded []LoadedImage) []string {
	var out []string
	for _, l := range loaded {
		if len(l.Names) == 0 {
			out = append(out, "Loaded image ID: sha256:"+l.ID)
			continue
		}
		for _, n := range l.Names {
			out = append(out, "Loaded image: "+Familiar(n))
		}
	}
	return out
}

// imageHistory serves GET /images/{name}/history.
func (s *Server) imageHistory(w http.ResponseWriter, r *http.Request, name string) error {
	if len(r.URL.Query()["platform"]) > 0 {
		return fmt.Errorf("berth does not keep images by platform: %w", ErrNotImplemented)
	}
	in, err := s.b.Image(r.Context(), name)
	if err != nil {
		return noSuchImage(name, err)
	}
	sizes, err := s.b.LayerSizes(r.Context(), in.Image.ID)
	if err != nil {
		return err
	}
	out, err := ImageHistory(in, sizes)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// ImageHistory is an image's history as Docker shows it: newest first,
// one entry per history step of the image's configuration, the size of
// the layer a step made (0 for an empty layer), the image's ID and tags
// on the newest entry and "<missing>" on the others (berth keeps no
// parent images). An image whose configuration has no history gets one
// entry per layer, created when the image was. sizes are the layers'
// sizes, bottom first.
func ImageHistory(in ImageInfo, sizes []int64) ([]dimage.HistoryResponseItem, error) {
	img := in.Image
	var out []dimage.HistoryResponseItem
	layer := 0
	nextSize := func() (int64, error) {
		if layer >= len(sizes) {
			return 0, fmt.Errorf("image %s: more non-empty layers in its history than in its root filesystem", img.ID)
		}
		layer++
		return sizes[layer-1], nil
	}
	if in.Config != nil && len(in.Config.History) > 0 {
		for _, h := range in.Config.History {
			it := dimage.HistoryResponseItem{ID: "<missing>", Created: h.Created.Unix(), CreatedBy: h.CreatedBy, Comment: h.Comment, Tags: nil}
			if !h.EmptyLayer {
				size, err := nextSize()
				if err != nil {
					return nil, err
				}
				it.Size = size
			}
			out = append(out, it)
		}
	} else {
		for range sizes {
			size, _ := nextSize()
			out = append(out, dimage.HistoryResponseItem{ID: "<missing>", Created: img.Created.Unix(), Size: size})
		}
	}
	slices.Reverse(out)
	if len(out) > 0 {
		tags, _ := repoTags(img)
		out[0].ID, out[0].Tags = "sha256:"+img.ID, tags
	}
	if out == nil {
		out = []dimage.HistoryResponseItem{}
	}
	return out, nil
}

package dockerapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	dimage "github.com/moby/moby/api/types/image"

	"github.com/berthnet/berth/internal/image"
)

var imageListFilters = []string{"before", "dangling", "label", "reference", "since"}

// Familiar is a reference as Docker shows it: Docker Hub's domain and
// library/ dropped (docker.io/library/busybox:latest is busybox:latest).
func Familiar(name string) string {
	rest, ok := strings.CutPrefix(name, "docker.io/")
	if !ok {
		return name
	}
	if short, ok := strings.CutPrefix(rest, "library/"); ok && !strings.Contains(short, "/") {
		return short
	}
	return rest
}

// Normalize completes a repository name as Docker does: a name without a
// registry is Docker Hub's (team/app is docker.io/team/app, app is
// docker.io/library/app). Older clients send familiar names, newer ones
// full names; both must mean the same.
func Normalize(repo string) string {
	first, _, hasSlash := strings.Cut(repo, "/")
	if hasSlash && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return repo
	}
	if !hasSlash {
		return "docker.io/library/" + repo
	}
	return "docker.io/" + repo
}

// repoTags splits an image's names into Docker's RepoTags (name:tag)
// and the by-digest names, both familiar.
func repoTags(img image.Image) (tags, digests []string) {
	tags, digests = []string{}, []string{}
	for _, n := range img.Names {
		if strings.Contains(n, "@") {
			digests = append(digests, Familiar(n))
		} else {
			tags = append(tags, Familiar(n))
		}
	}
	for _, d := range img.RepoDigests {
		if f := Familiar(d); !contains(digests, f) {
			digests = append(digests, f)
		}
	}
	return tags, digests
}

// ImageSummary is a stored image as GET /images/json lists it.
func ImageSummary(in ImageInfo) dimage.Summary {
	tags, digests := repoTags(in.Image)
	labels := in.Image.Config.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	return dimage.Summary{
		ID: "sha256:" + in.Image.ID, RepoTags: tags, RepoDigests: digests,
		Created: in.Image.Created.Unix(), Size: in.Image.Size, SharedSize: -1,
		Labels: labels, Containers: int64(in.Containers),
	}
}

// ImageInspect is a stored image as GET /images/{name}/json shows it.
// The configuration keeps the image's own JSON field names, which are
// Docker's.
func ImageInspect(in ImageInfo) (dimage.InspectResponse, error) {
	img := in.Image
	tags, digests := repoTags(img)
	out := dimage.InspectResponse{
		ID: "sha256:" + img.ID, RepoTags: tags, RepoDigests: digests,
		Created: img.Created.UTC().Format(time.RFC3339Nano), Architecture: img.Architecture, Os: img.OS,
		Size: img.Size, RootFS: dimage.RootFS{Type: "layers", Layers: img.Layers},
	}
	if cf := in.Config; cf != nil {
		out.Author, out.Variant, out.OsVersion = cf.Author, cf.Variant, cf.OSVersion
		b, err := json.Marshal(cf.Config)
		if err != nil {
			return out, err
		}
		if err := json.Unmarshal(b, &out.Config); err != nil {
			return out, fmt.Errorf("image %s config: %w", img.ID, err)
		}
	}
	return out, nil
}

func (s *Server) imageList(w http.ResponseWriter, r *http.Request) error {
	fs, err := ParseFilters(r.URL.Query().Get("filters"), imageListFilters...)
	if err != nil {
		return err
	}
	imgs, err := s.b.Images(r.Context())
	if err != nil {
		return err
	}
	match, err := s.imageMatcher(r, fs)
	if err != nil {
		return err
	}
	all := boolQuery(r, "all")
	out := []dimage.Summary{}
	for _, in := range imgs {
		if !match(in) || (!all && in.Image.Hidden()) {
			continue
		}
		if pats := fs["reference"]; len(pats) > 0 {
			// Docker lists only the names the reference filter matched.
			in.Image.Names = slices.DeleteFunc(slices.Clone(in.Image.Names), func(n string) bool {
				return !matchReference([]string{n}, pats)
			})
			in.Image.RepoDigests = slices.DeleteFunc(slices.Clone(in.Image.RepoDigests), func(n string) bool {
				return !matchReference([]string{n}, pats)
			})
		}
		out = append(out, ImageSummary(in))
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created > out[j].Created })
	writeJSON(w, http.StatusOK, out)
	return nil
}

// imageMatcher applies Docker's image list filters.
func (s *Server) imageMatcher(r *http.Request, fs Filters) (func(ImageInfo) bool, error) {
	var tests []func(ImageInfo) bool
	for k, vals := range fs {
		switch k {
		case "dangling":
			want, err := parseBoolFilter(k, vals)
			if err != nil {
				return nil, err
			}
			tests = append(tests, func(in ImageInfo) bool { return (len(in.Image.Names) == 0) == want })
		case "label":
			tests = append(tests, func(in ImageInfo) bool { return matchLabels(in.Image.Config.Labels, vals) })
		case "reference":
			for _, p := range vals {
				if _, err := path.Match(p, ""); err != nil {
					return nil, fmt.Errorf("invalid filter 'reference=%s': %v: %w", p, err, ErrInvalid)
				}
			}
			tests = append(tests, func(in ImageInfo) bool { return matchReference(in.Image.Names, vals) })
		case "before", "since":
			ref, err := s.b.Image(r.Context(), vals[0])
			if err != nil {
				return nil, err
			}
			t, before := ref.Image.Created, k == "before"
			tests = append(tests, func(in ImageInfo) bool {
				if before {
					return in.Image.Created.Before(t)
				}
				return in.Image.Created.After(t)
			})
		}
	}
	return func(in ImageInfo) bool {
		for _, t := range tests {
			if !t(in) {
				return false
			}
		}
		return true
	}, nil
}

// matchReference reports whether any name, with or without its tag, in
// full or familiar form, matches one of the patterns (path.Match).
func matchReference(names, patterns []string) bool {
	for _, n := range names {
		repo := n
		if i := strings.LastIndexAny(n, ":@"); i > strings.LastIndexByte(n, '/') {
			repo = n[:i]
		}
		for _, cand := range []string{n, repo, Familiar(n), Familiar(repo)} {
			for _, p := range patterns {
				if ok, _ := path.Match(p, cand); ok {
					return true
				}
			}
		}
	}
	return false
}

// imageGet serves GET /images/{name...}: names hold slashes, so the
// action is the last path element (json, history, get; GET /images/get
// saves several images).
func (s *Server) imageGet(w http.ResponseWriter, r *http.Request) error {
	name, action := splitAction(r.PathValue("name"))
	if action == "" && name == "search" {
		return fmt.Errorf("berth does not implement GET /images/%s yet: %w", name, ErrNotImplemented)
	}
	if action == "" && name == "get" {
		return s.imageSave(w, r, r.URL.Query()["names"])
	}
	switch action {
	case "json":
		return s.imageInspect(w, r, name)
	case "history":
		return s.imageHistory(w, r, name)
	case "get":
		return s.imageSave(w, r, []string{name})
	}
	return fmt.Errorf("page not found: %w", ErrNotFound)
}

// imagePost serves POST /images/load and /images/{name...}/tag (push is
// refused).
func (s *Server) imagePost(w http.ResponseWriter, r *http.Request) error {
	name, action := splitAction(r.PathValue("name"))
	if action == "" && name == "load" {
		return s.imageLoad(w, r)
	}
	switch action {
	case "tag":
		return s.imageTag(w, r, name)
	case "push":
		return fmt.Errorf("berth does not implement image push over the API yet (use berth push): %w", ErrNotImplemented)
	}
	return fmt.Errorf("page not found: %w", ErrNotFound)
}

// splitAction splits "localhost/x:1/json" into "localhost/x:1" and "json".
func splitAction(p string) (name, action string) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return p, ""
	}
	return p[:i], p[i+1:]
}

func (s *Server) imageInspect(w http.ResponseWriter, r *http.Request, name string) error {
	in, err := s.b.Image(r.Context(), name)
	if err != nil {
		return noSuchImage(name, err)
	}
	out, err := ImageInspect(in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// noSuchImage words a missing image as Docker does.
func noSuchImage(name string, err error) error {
	if errors.Is(err, ErrNotFound) {
		//lint:ignore ST1005 Docker's message, which clients match.
		return fmt.Errorf("No such image: %s: %w", name, ErrNotFound)
	}
	return err
}

func (s *Server) imageTag(w http.ResponseWriter, r *http.Request, name string) error {
	q := r.URL.Query()
	repo, tag := q.Get("repo"), q.Get("tag")
	if repo == "" {
		return fmt.Errorf("repository name must have at least one component: %w", ErrInvalid)
	}
	repo = Normalize(repo)
	if tag != "" {
		repo += ":" + tag
	}
	if err := s.b.TagImage(r.Context(), name, repo); err != nil {
		return noSuchImage(name, err)
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (s *Server) imageRemove(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	res, err := s.b.RemoveImage(r.Context(), name, boolQuery(r, "force"))
	if err != nil {
		return noSuchImage(name, err)
	}
	writeJSON(w, http.StatusOK, deleteResponses(res))
	return nil
}

func deleteResponses(res image.RemoveResult) []dimage.DeleteResponse {
	out := []dimage.DeleteResponse{}
	for _, u := range res.Untagged {
		out = append(out, dimage.DeleteResponse{Untagged: Familiar(u)})
	}
	if res.Deleted != "" {
		out = append(out, dimage.DeleteResponse{Deleted: "sha256:" + res.Deleted})
	}
	return out
}

// imagePrune removes unused dangling images, or every unused image with
// the filter dangling=false.
func (s *Server) imagePrune(w http.ResponseWriter, r *http.Request) error {
	fs, err := ParseFilters(r.URL.Query().Get("filters"), "dangling")
	if err != nil {
		return err
	}
	dangling := true
	if v := fs["dangling"]; len(v) > 0 {
		if dangling, err = parseBoolFilter("dangling", v); err != nil {
			return err
		}
	}
	before, err := s.b.Images(r.Context())
	if err != nil {
		return err
	}
	ids, err := s.b.PruneImages(r.Context(), !dangling)
	if err != nil {
		return err
	}
	rep := dimage.PruneReport{ImagesDeleted: []dimage.DeleteResponse{}}
	for _, id := range ids {
		for _, in := range before {
			if in.Image.ID != id {
				continue
			}
			rep.ImagesDeleted = append(rep.ImagesDeleted, deleteResponses(image.RemoveResult{Untagged: in.Image.Names, Deleted: id})...)
			rep.SpaceReclaimed += uint64(max(in.Image.Size, 0))
		}
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

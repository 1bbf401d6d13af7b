package dockerapi

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/moby/moby/api/types/volume"

	"github.com/berthnet/berth/internal/engine"
)

var volumeListFilters = []string{"dangling", "driver", "label", "name"}

// VolumeOf is a berth volume in Docker's shape.
func VolumeOf(v VolumeInfo) volume.Volume {
	labels := v.Volume.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	return volume.Volume{
		Name: v.Volume.Name, Driver: v.Volume.Driver, Mountpoint: v.Mountpoint,
		CreatedAt: v.Volume.Created.UTC().Format(time.RFC3339), Labels: labels,
		Scope: "local", Options: map[string]string{},
	}
}

func (s *Server) volumeList(w http.ResponseWriter, r *http.Request) error {
	fs, err := ParseFilters(r.URL.Query().Get("filters"), volumeListFilters...)
	if err != nil {
		return err
	}
	match, err := volumeMatcher(fs)
	if err != nil {
		return err
	}
	vols, err := s.b.Volumes(r.Context())
	if err != nil {
		return err
	}
	out := volume.ListResponse{Volumes: []volume.Volume{}, Warnings: []string{}}
	for _, v := range vols {
		if match(v) {
			out.Volumes = append(out.Volumes, VolumeOf(v))
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// volumeMatcher applies Docker's volume list filters: values of one key
// are alternatives, keys must all match; label values must all match.
func volumeMatcher(fs Filters) (func(VolumeInfo) bool, error) {
	var tests []func(VolumeInfo) bool
	for k, vals := range fs {
		switch k {
		case "label":
			tests = append(tests, func(v VolumeInfo) bool { return matchLabels(v.Volume.Labels, vals) })
		case "name":
			var res []*regexp.Regexp
			for _, p := range vals {
				re, err := regexp.Compile(p)
				if err != nil {
					return nil, fmt.Errorf("invalid filter 'name=%s': %v: %w", p, err, ErrInvalid)
				}
				res = append(res, re)
			}
			tests = append(tests, func(v VolumeInfo) bool {
				for _, re := range res {
					if re.MatchString(v.Volume.Name) {
						return true
					}
				}
				return false
			})
		case "driver":
			tests = append(tests, func(v VolumeInfo) bool { return contains(vals, v.Volume.Driver) })
		case "dangling":
			want, err := parseBoolFilter(k, vals)
			if err != nil {
				return nil, err
			}
			tests = append(tests, func(v VolumeInfo) bool { return v.InUse != want })
		}
	}
	return func(v VolumeInfo) bool {
		for _, t := range tests {
			if !t(v) {
				return false
			}
		}
		return true
	}, nil
}

// parseBoolFilter reads a filter that takes one of true/1 or false/0.
func parseBoolFilter(k string, vals []string) (bool, error) {
	var want *bool
	for _, v := range vals {
		var b bool
		switch strings.ToLower(v) {
		case "true", "1":
			b = true
		case "false", "0":
		default:
			return false, fmt.Errorf("invalid filter '%s=%s': %w", k, v, ErrInvalid)
		}
		if want != nil && *want != b {
			return false, fmt.Errorf("invalid filter '%s': both true and false: %w", k, ErrInvalid)
		}
		want = &b
	}
	return want != nil && *want, nil
}

func (s *Server) volumeInspect(w http.ResponseWriter, r *http.Request) error {
	v, err := s.b.Volume(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, VolumeOf(v))
	return nil
}

func (s *Server) volumeCreate(w http.ResponseWriter, r *http.Request) error {
	var req volume.CreateRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	if req.Driver != "" && req.Driver != engine.LocalDriver {
		return fmt.Errorf("volume driver %q: berth supports the local driver only: %w", req.Driver, ErrInvalid)
	}
	if len(req.DriverOpts) > 0 {
		return fmt.Errorf("volume driver options (%s): berth's local driver takes none: %w", firstKey(req.DriverOpts), ErrInvalid)
	}
	if req.ClusterVolumeSpec != nil {
		return fmt.Errorf("cluster volumes are a swarm feature: %w", ErrNotImplemented)
	}
	v, err := s.b.CreateVolume(r.Context(), engine.VolumeOptions{Name: req.Name, Labels: req.Labels})
	if errors.Is(err, ErrConflict) && req.Name != "" {
		// Docker answers a create of an existing local volume with it.
		v, err = s.b.Volume(r.Context(), req.Name)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, VolumeOf(v))
	return nil
}

func firstKey(m map[string]string) string {
	first := ""
	for k := range m {
		if first == "" || k < first {
			first = k
		}
	}
	return first
}

// volumeRemove removes a volume; force only ignores a missing one, as
// Docker's does (a volume in use is refused either way).
func (s *Server) volumeRemove(w http.ResponseWriter, r *http.Request) error {
	err := s.b.RemoveVolume(r.Context(), r.PathValue("name"))
	if err != nil && !(errors.Is(err, ErrNotFound) && boolQuery(r, "force")) {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// volumePrune removes unused volumes: anonymous ones only unless the
// filter all=true is given, as Docker 23 (API 1.42) does.
func (s *Server) volumePrune(w http.ResponseWriter, r *http.Request) error {
	fs, err := ParseFilters(r.URL.Query().Get("filters"), "all", "label", "label!")
	if err != nil {
		return err
	}
	all := false
	if v := fs["all"]; len(v) > 0 {
		if all, err = parseBoolFilter("all", v); err != nil {
			return err
		}
	}
	vols, err := s.b.Volumes(r.Context())
	if err != nil {
		return err
	}
	rep := volume.PruneReport{VolumesDeleted: []string{}}
	for _, v := range vols {
		if v.InUse || (!all && !v.Volume.Anonymous) || !labelsPrunable(v.Volume.Labels, fs) {
			continue
		}
		if err := s.b.RemoveVolume(r.Context(), v.Volume.Name); err != nil {
			if errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound) {
				continue
			}
			return err
		}
		rep.VolumesDeleted = append(rep.VolumesDeleted, v.Volume.Name)
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

// labelsPrunable applies prune's label and label! filters.
func labelsPrunable(labels map[string]string, fs Filters) bool {
	if l := fs["label"]; len(l) > 0 && !matchLabels(labels, l) {
		return false
	}
	for _, l := range fs["label!"] {
		if matchLabels(labels, []string{l}) {
			return false
		}
	}
	return true
}

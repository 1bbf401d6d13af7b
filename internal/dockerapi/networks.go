package dockerapi

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"sort"
	"strings"
	"time"

	dnet "github.com/moby/moby/api/types/network"

	"github.com/berthnet/berth/internal/engine"
	"github.com/berthnet/berth/internal/network"
)

var networkListFilters = []string{"dangling", "driver", "id", "label", "name", "scope", "type"}

// allNetworks is every network a Docker client sees: berth's and the
// built-in host and none.
func (s *Server) allNetworks(r *http.Request) ([]dnet.Inspect, map[string]bool, error) {
	infos, err := s.b.Networks(r.Context())
	if err != nil {
		return nil, nil, err
	}
	var out []dnet.Inspect
	inUse := map[string]bool{}
	for _, in := range infos {
		out = append(out, NetworkInspect(in))
		inUse[in.Network.ID] = in.InUse || len(in.Endpoints) > 0
	}
	return append(out, builtinNetworks()...), inUse, nil
}

func (s *Server) networkList(w http.ResponseWriter, r *http.Request) error {
	fs, err := ParseFilters(r.URL.Query().Get("filters"), networkListFilters...)
	if err != nil {
		return err
	}
	nets, inUse, err := s.allNetworks(r)
	if err != nil {
		return err
	}
	out := []dnet.Inspect{}
	for _, n := range nets {
		ok, err := networkMatches(n, fs, inUse[n.ID])
		if err != nil {
			return err
		}
		if ok {
			n.Containers = map[string]dnet.EndpointResource{}
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	writeJSON(w, http.StatusOK, out)
	return nil
}

func builtin(n dnet.Inspect) bool { return n.Driver == "host" || n.Driver == "null" }

// networkMatches applies Docker's network list filters: values of one
// key are alternatives, keys must all match.
func networkMatches(n dnet.Inspect, fs Filters, inUse bool) (bool, error) {
	for k, vals := range fs {
		if k == "label" {
			if !matchLabels(n.Labels, vals) {
				return false, nil
			}
			continue
		}
		hit := false
		for _, v := range vals {
			m, err := networkMatch(n, k, v, inUse)
			if err != nil {
				return false, err
			}
			hit = hit || m
		}
		if !hit {
			return false, nil
		}
	}
	return true, nil
}

func networkMatch(n dnet.Inspect, k, v string, inUse bool) (bool, error) {
	switch k {
	case "driver":
		return n.Driver == v, nil
	case "id":
		return strings.HasPrefix(n.ID, v), nil
	case "name":
		return strings.Contains(n.Name, v), nil
	case "scope":
		return v == "local", nil
	case "type":
		switch v {
		case "custom":
			return !builtin(n), nil
		case "builtin":
			return builtin(n), nil
		}
		return false, fmt.Errorf("invalid filter: 'type'='%s': %w", v, ErrInvalid)
	case "dangling":
		switch strings.ToLower(v) {
		case "true", "1":
			return !builtin(n) && !inUse, nil
		case "false", "0":
			return builtin(n) || inUse, nil
		}
		return false, fmt.Errorf("invalid filter 'dangling=%s': %w", v, ErrInvalid)
	}
	return true, nil
}

// findNetwork resolves a reference Docker clients use: a berth network
// by name, ID or ID prefix, a built-in, or "bridge" for the default
// network.
func (s *Server) findNetwork(r *http.Request, ref string) (dnet.Inspect, error) {
	for _, b := range builtinNetworks() {
		if ref == b.Name || ref == b.ID {
			return b, nil
		}
	}
	info, err := s.b.Network(r.Context(), ref)
	if err == nil {
		return NetworkInspect(info), nil
	}
	if !errors.Is(err, ErrNotFound) {
		return dnet.Inspect{}, err
	}
	if ref == "bridge" {
		if d, derr := s.defaultNetwork(r); derr == nil {
			return d, nil
		}
	}
	return dnet.Inspect{}, fmt.Errorf("network %s not found: %w", ref, ErrNotFound)
}

func (s *Server) defaultNetwork(r *http.Request) (dnet.Inspect, error) {
	infos, err := s.b.Networks(r.Context())
	if err != nil {
		return dnet.Inspect{}, err
	}
	for _, in := range infos {
		if s.b.IsDefaultNetwork(in.Network) {
			return NetworkInspect(in), nil
		}
	}
	return dnet.Inspect{}, fmt.Errorf("no default network: %w", ErrNotFound)
}

func (s *Server) networkInspect(w http.ResponseWriter, r *http.Request) error {
	if sc := r.URL.Query().Get("scope"); sc != "" && sc != "local" {
		return fmt.Errorf("network %s not found: %w", r.PathValue("id"), ErrNotFound)
	}
	n, err := s.findNetwork(r, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, n)
	return nil
}

func (s *Server) networkCreate(w http.ResponseWriter, r *http.Request) error {
	var req dnet.CreateRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	for _, b := range builtinNetworks() {
		if req.Name == b.Name {
			return fmt.Errorf("operation is not permitted on predefined %s network : %w", b.Name, ErrForbidden)
		}
	}
	n, err := NetworkFromCreate(req)
	if err != nil {
		return err
	}
	created, err := s.b.CreateNetwork(r.Context(), n)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, dnet.CreateResponse{ID: created.ID})
	return nil
}

func (s *Server) networkRemove(w http.ResponseWriter, r *http.Request) error {
	ref := r.PathValue("id")
	n, err := s.findNetwork(r, ref)
	if err != nil {
		return err
	}
	if builtin(n) {
		return fmt.Errorf("%s is a pre-defined network and cannot be removed: %w", n.Name, ErrForbidden)
	}
	if err := s.b.RemoveNetwork(r.Context(), n.ID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) networkPrune(w http.ResponseWriter, r *http.Request) error {
	fs, err := ParseFilters(r.URL.Query().Get("filters"), "until", "label", "label!")
	if err != nil {
		return err
	}
	var until time.Time
	if v := fs["until"]; len(v) > 0 {
		if until, err = parseUntil(v[0], time.Now()); err != nil {
			return err
		}
	}
	infos, err := s.b.Networks(r.Context())
	if err != nil {
		return err
	}
	rep := dnet.PruneReport{NetworksDeleted: []string{}}
	for _, in := range infos {
		if in.InUse || len(in.Endpoints) > 0 || s.b.IsDefaultNetwork(in.Network) || !pruneMatches(in.Network, fs, until) {
			continue
		}
		if err := s.b.RemoveNetwork(r.Context(), in.Network.ID); err != nil {
			if errors.Is(err, ErrForbidden) || errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound) {
				continue
			}
			return err
		}
		rep.NetworksDeleted = append(rep.NetworksDeleted, in.Network.Name)
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

func pruneMatches(n network.Network, fs Filters, until time.Time) bool {
	if !until.IsZero() {
		c, err := time.Parse(time.RFC3339Nano, n.Created)
		if err != nil || !c.Before(until) {
			return false
		}
	}
	if l := fs["label"]; len(l) > 0 && !matchLabels(n.Labels, l) {
		return false
	}
	for _, l := range fs["label!"] {
		if matchLabels(n.Labels, []string{l}) {
			return false
		}
	}
	return true
}

// parseUntil reads Docker's `until` filter: a Unix timestamp, an RFC
// 3339 time or a duration before now.
func parseUntil(v string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	var sec, nsec int64
	if n, _ := fmt.Sscanf(v, "%d.%d", &sec, &nsec); n >= 1 {
		return time.Unix(sec, nsec), nil
	}
	return time.Time{}, fmt.Errorf("invalid filter 'until=%s': want a timestamp, a date or a duration: %w", v, ErrInvalid)
}

func (s *Server) networkConnect(w http.ResponseWriter, r *http.Request) error {
	var req dnet.ConnectRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	n, err := s.findNetwork(r, r.PathValue("id"))
	if err != nil {
		return err
	}
	if builtin(n) {
		return fmt.Errorf("container cannot be connected to the %s network: %w", n.Name, ErrForbidden)
	}
	cr, err := ConnectFromEndpoint(n.ID, req.EndpointConfig)
	if err != nil {
		return err
	}
	if err := s.b.Connect(r.Context(), req.Container, cr); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// ConnectFromEndpoint translates Docker's endpoint settings for one
// network into berth's connect request, refusing what berth cannot do.
func ConnectFromEndpoint(networkID string, es *dnet.EndpointSettings) (engine.ConnectRequest, error) {
	cr := engine.ConnectRequest{Network: networkID}
	if es == nil {
		return cr, nil
	}
	if len(es.Links) > 0 {
		return cr, fmt.Errorf("links are not supported by berth (use network aliases): %w", ErrNotImplemented)
	}
	if len(es.DriverOpts) > 0 {
		return cr, fmt.Errorf("endpoint driver options are not supported by berth: %w", ErrNotImplemented)
	}
	for _, a := range es.Aliases {
		if a == "" || strings.ContainsAny(a, " ,\n\t") {
			return cr, fmt.Errorf("alias %q: must not be empty or contain spaces or commas: %w", a, ErrInvalid)
		}
	}
	cr.Aliases, cr.GwPriority = es.Aliases, es.GwPriority
	if c := es.IPAMConfig; c != nil {
		if len(c.LinkLocalIPs) > 0 {
			return cr, fmt.Errorf("link-local IPs are not supported by berth: %w", ErrNotImplemented)
		}
		for _, a := range []netip.Addr{c.IPv4Address, c.IPv6Address} {
			if a.IsValid() {
				cr.IPs = append(cr.IPs, a.Unmap())
			}
		}
	}
	if len(es.MacAddress) > 0 {
		cr.MAC = es.MacAddress.String()
	}
	return cr, nil
}

func (s *Server) networkDisconnect(w http.ResponseWriter, r *http.Request) error {
	var req dnet.DisconnectRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	n, err := s.findNetwork(r, r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := s.b.Disconnect(r.Context(), req.Container, n.ID, req.Force); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

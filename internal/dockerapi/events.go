package dockerapi

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/berthnet/berth/internal/events"
)

// EventSource is the part of a Backend that serves GET /events: the
// event journal berth's commands append to. A Backend without it answers
// 501.
type EventSource interface {
	Events() *events.Journal
}

// eventFilters are the filters GET /events accepts.
var eventFilters = []string{"container", "event", "image", "label", "network", "type", "volume"}

// legacyEventsBefore is the first API version whose messages lack the
// deprecated status, id and from fields.
const legacyEventsBefore = "1.44"

// Message is Docker's events.Message, with the fields clients before API
// 1.44 read (Status, ID, From).
type Message struct {
	Status   string `json:"status,omitempty"`
	ID       string `json:"id,omitempty"`
	From     string `json:"from,omitempty"`
	Type     string
	Action   string
	Actor    Actor
	Scope    string `json:"scope,omitempty"`
	Time     int64  `json:"time,omitempty"`
	TimeNano int64  `json:"timeNano,omitempty"`
}

// Actor is what an event is about: its ID and attributes (a container's
// labels, name and image; a network's name and the container connected
// ...).
type Actor struct {
	ID         string
	Attributes map[string]string
}

// dockerActions are berth's (Podman's) actions under Docker's names.
var dockerActions = map[string]map[string]string{
	events.TypeContainer: {"died": "die", "remove": "destroy", "exec_died": "exec_die"},
	events.TypeImage:     {"remove": "delete"},
	events.TypeNetwork:   {"remove": "destroy"},
	events.TypeVolume:    {"remove": "destroy"},
}

// ToMessage translates a journal event into Docker's message; ok is
// false for events Docker has no type for (pods).
func ToMessage(e events.Event, legacy bool) (m Message, ok bool) {
	action := e.Action
	if a, found := dockerActions[e.Type][action]; found {
		action = a
	}
	attrs := map[string]string{}
	actorID := e.ID
	switch e.Type {
	case events.TypeContainer:
		for k, v := range e.Attributes {
			switch k {
			case events.AttrPod:
			case events.AttrHealth:
				action = "health_status: " + v
			case events.AttrExecCommand:
				if e.Action == "exec" {
					action = "exec_start: " + v
				}
			default:
				attrs[k] = v
			}
		}
		attrs["name"], attrs["image"] = e.Name, e.Image
	case events.TypeImage:
		if e.Name != "" {
			attrs["name"] = e.Name
		}
		if e.Action == "pull" && e.Name != "" {
			actorID = e.Name
		} else if e.ID != "" && !strings.HasPrefix(e.ID, "sha256:") {
			actorID = "sha256:" + e.ID
		}
	case events.TypeNetwork:
		attrs["name"] = e.Name
		attrs["type"] = "bridge"
		if c := e.Attributes[events.AttrContainer]; c != "" {
			attrs["container"] = c
		}
	case events.TypeVolume:
		attrs["driver"] = "local"
		actorID = e.Name
	default:
		return Message{}, false
	}
	m = Message{Type: e.Type, Action: action, Actor: Actor{ID: actorID, Attributes: attrs},
		Scope: "local", Time: e.Time.Unix(), TimeNano: e.Time.UnixNano()}
	if legacy && (e.Type == events.TypeContainer || e.Type == events.TypeImage) {
		m.Status, m.ID = action, actorID
		if e.Type == events.TypeContainer {
			m.From = e.Image
		}
	}
	return m, true
}

// matchMessage applies GET /events filters as Docker does: values of a
// key are alternatives, keys must all match; container, network and
// volume match the actor's ID or name by prefix, image the actor or its
// image attribute, label the attributes.
func matchMessage(f Filters, m Message) bool {
	for k, vals := range f {
		if k == "label" {
			if !matchLabels(m.Actor.Attributes, vals) {
				return false
			}
			continue
		}
		hit := false
		for _, v := range vals {
			if matchEventKey(k, v, m) {
				hit = true
				break
			}
		}
		if !hit {
			return false
		}
	}
	return true
}

func matchEventKey(k, v string, m Message) bool {
	switch k {
	case "type":
		return m.Type == v
	case "event":
		a, _, _ := strings.Cut(m.Action, ":")
		return m.Action == v || a == v
	case "container", "network", "volume":
		return m.Type == k && (strings.HasPrefix(m.Actor.ID, v) || strings.HasPrefix(m.Actor.Attributes["name"], v))
	case "image":
		for _, s := range []string{m.Actor.ID, m.Actor.Attributes["image"], m.Actor.Attributes["name"]} {
			if s != "" && sameImage(s, v) {
				return true
			}
		}
	}
	return false
}

// sameImage compares image references as written (busybox,
// busybox:latest and docker.io/library/busybox:latest are one).
func sameImage(a, b string) bool {
	return a == b || normalImage(a) == normalImage(b)
}

func normalImage(s string) string {
	if strings.HasPrefix(s, "sha256:") {
		return s
	}
	s = strings.TrimPrefix(s, "docker.io/")
	s = strings.TrimPrefix(s, "library/")
	if i := strings.LastIndexByte(s, '/'); !strings.Contains(s[i+1:], ":") && !strings.Contains(s, "@") {
		s += ":latest"
	}
	return s
}

// ParseEventTime reads a since or until parameter: Unix seconds with an
// optional fraction (what Docker's clients send), or an RFC 3339 time.
func ParseEventTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if sec, frac, ok := strings.Cut(s, "."); ok || sec != "" {
		if n, err := strconv.ParseInt(sec, 10, 64); err == nil && n >= 0 && n < math.MaxInt64/1_000_000_000 {
			nsec := int64(0)
			if ok {
				if len(frac) > 9 || frac == "" {
					return time.Time{}, fmt.Errorf("timestamp %q: %w", s, ErrInvalid)
				}
				f, err := strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
				if err != nil || f < 0 {
					return time.Time{}, fmt.Errorf("timestamp %q: %w", s, ErrInvalid)
				}
				nsec = f
			}
			return time.Unix(n, nsec), nil
		}
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("timestamp %q: want Unix seconds or RFC 3339: %w", s, ErrInvalid)
}

// clientVersion is the API version the request named in its path ("":
// none, the current one).
func clientVersion(r *http.Request) string {
	path, _, _ := strings.Cut(r.RequestURI, "?")
	if v, _, ok := splitVersion(path); ok {
		return v
	}
	return ""
}

// eventsQuery reads GET /events's parameters.
func eventsQuery(r *http.Request) (events.Query, Filters, error) {
	var q events.Query
	f, err := ParseFilters(r.URL.Query().Get("filters"), eventFilters...)
	if err != nil {
		return q, nil, err
	}
	if q.Since, err = ParseEventTime(r.URL.Query().Get("since")); err != nil {
		return q, nil, err
	}
	if q.Until, err = ParseEventTime(r.URL.Query().Get("until")); err != nil {
		return q, nil, err
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && q.Until.Before(q.Since) {
		return q, nil, fmt.Errorf("since time (%s) cannot be after until time (%s): %w",
			r.URL.Query().Get("since"), r.URL.Query().Get("until"), ErrInvalid)
	}
	// Without until the stream lasts until the client leaves; with one
	// in the future it lasts until then.
	q.Follow = true
	return q, f, nil
}

// events serves GET /events: past events since `since`, then new ones as
// they come, one JSON message per line.
func (s *Server) events(w http.ResponseWriter, r *http.Request) error {
	src, ok := s.b.(EventSource)
	if !ok {
		return fmt.Errorf("events: %w", ErrNotImplemented)
	}
	q, f, err := eventsQuery(r)
	if err != nil {
		return err
	}
	v := clientVersion(r)
	legacy := v != "" && compareVersions(v, legacyEventsBefore) < 0
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		flusher.Flush()
	}
	enc := json.NewEncoder(w)
	err = src.Events().Read(r.Context(), q, func(e events.Event) error {
		m, ok := ToMessage(e, legacy)
		if !ok || !matchMessage(f, m) {
			return nil
		}
		if err := enc.Encode(m); err != nil {
			return err
		}
		if flusher != nil {
			flusher.Flush()
		}
		return nil
	})
	if err != nil {
		s.log.Debug("events stream ended", "err", err)
	}
	return nil
}

// Package ref normalises image references the way Podman does: a short
// name gets docker.io (and library/ for a single path component) and the
// tag "latest"; localhost/NAME stays local. It is pure string logic.
package ref

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// DefaultRegistry is the registry of short names.
const DefaultRegistry = "docker.io"

// ErrInvalid wraps every reference the grammar rejects.
var ErrInvalid = errors.New("invalid reference format")

// Reference is a parsed, normalised image reference.
type Reference struct {
	// Domain is the registry host (and port): docker.io, localhost,
	// quay.io, 127.0.0.1:5000.
	Domain string
	// Path is the repository path inside the registry: library/busybox.
	Path string
	// Tag is the tag; empty when the reference is by digest only.
	Tag string
	// Digest is "sha256:..." for a reference by digest.
	Digest string
}

// Repository is domain/path: docker.io/library/busybox.
func (r Reference) Repository() string { return r.Domain + "/" + r.Path }

// String is the full normalised reference: repository:tag, or
// repository@digest (repository:tag@digest when both are given).
func (r Reference) String() string {
	s := r.Repository()
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}

var (
	// component of a repository path (distribution's reference grammar).
	pathComponent = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$`)
	tagRE         = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	digestRE      = regexp.MustCompile(`^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$`)
	domainRE      = regexp.MustCompile(`^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::[0-9]+)?$|^\[[0-9a-fA-F:.]+\](?::[0-9]+)?$`)
	hexID         = regexp.MustCompile(`^[a-f0-9]{64}$`)
)

// Parse normalises s as Podman does: "busybox" is
// docker.io/library/busybox:latest, "quay.io/x/y" is quay.io/x/y:latest,
// "localhost/banner" stays in localhost. A 64-hex string is refused (it
// is an image ID, not a name).
func Parse(s string) (Reference, error) {
	if s == "" {
		return Reference{}, fmt.Errorf("%w: empty reference", ErrInvalid)
	}
	if hexID.MatchString(s) {
		return Reference{}, fmt.Errorf("%w: %q is an image ID, not a name", ErrInvalid, s)
	}
	rest := s
	var r Reference
	if i := strings.IndexByte(rest, '@'); i >= 0 {
		r.Digest = rest[i+1:]
		rest = rest[:i]
		if !digestRE.MatchString(r.Digest) {
			return Reference{}, fmt.Errorf("%w: %q: bad digest %q", ErrInvalid, s, r.Digest)
		}
	}
	// A tag is after the last colon that comes after the last slash.
	if i := strings.LastIndexByte(rest, ':'); i >= 0 && i > strings.LastIndexByte(rest, '/') {
		r.Tag = rest[i+1:]
		rest = rest[:i]
		if !tagRE.MatchString(r.Tag) {
			return Reference{}, fmt.Errorf("%w: %q: bad tag %q (letters, digits, _ . -, at most 128)", ErrInvalid, s, r.Tag)
		}
	}
	if rest == "" {
		return Reference{}, fmt.Errorf("%w: %q has no repository name", ErrInvalid, s)
	}
	first, remainder, hasSlash := strings.Cut(rest, "/")
	if hasSlash && (strings.ContainsAny(first, ".:") || first == "localhost" || strings.HasPrefix(first, "[")) {
		if !domainRE.MatchString(first) {
			return Reference{}, fmt.Errorf("%w: %q: bad registry %q", ErrInvalid, s, first)
		}
		r.Domain, r.Path = first, remainder
	} else {
		r.Domain, r.Path = DefaultRegistry, rest
	}
	if r.Domain == "index.docker.io" || r.Domain == "registry-1.docker.io" {
		r.Domain = DefaultRegistry
	}
	if r.Domain == DefaultRegistry && !strings.Contains(r.Path, "/") {
		r.Path = "library/" + r.Path
	}
	for _, c := range strings.Split(r.Path, "/") {
		if !pathComponent.MatchString(c) {
			if strings.ToLower(c) == c {
				return Reference{}, fmt.Errorf("%w: %q: bad repository name component %q", ErrInvalid, s, c)
			}
			return Reference{}, fmt.Errorf("%w: %q: repository name must be lowercase", ErrInvalid, s)
		}
	}
	if len(r.Repository()) > 255 {
		return Reference{}, fmt.Errorf("%w: %q: repository name longer than 255 characters", ErrInvalid, s)
	}
	if r.Tag == "" && r.Digest == "" {
		r.Tag = "latest"
	}
	return r, nil
}

// ParseLocal normalises a name for an image created locally (import, tag):
// a name without a registry goes to localhost, as Podman does
// ("banner" is localhost/banner:latest).
func ParseLocal(s string) (Reference, error) {
	r, err := Parse(s)
	if err != nil {
		return r, err
	}
	if !hasDomain(s) {
		r.Domain = "localhost"
		r.Path = strings.TrimPrefix(r.Path, "library/")
		if strings.HasPrefix(s, "library/") {
			r.Path = "library/" + r.Path
		}
	}
	return r, nil
}

// IsShort reports whether s names no registry (busybox, library/busybox,
// foo/bar:1).
func IsShort(s string) bool { return !hasDomain(s) }

func hasDomain(s string) bool {
	s, _, _ = strings.Cut(s, "@")
	first, _, ok := strings.Cut(s, "/")
	return ok && (strings.ContainsAny(first, ".:") || first == "localhost" || strings.HasPrefix(first, "["))
}

// Candidates lists the full names a user's name may mean, in the order
// Podman's local lookup tries them: the name as given when it has a
// registry; otherwise localhost/NAME first, then docker.io.
func Candidates(s string) []Reference {
	if hasDomain(s) {
		r, err := Parse(s)
		if err != nil {
			return nil
		}
		return []Reference{r}
	}
	var out []Reference
	if r, err := ParseLocal(s); err == nil {
		out = append(out, r)
	}
	if r, err := Parse(s); err == nil {
		out = append(out, r)
	}
	return out
}

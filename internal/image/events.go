package image

import (
	"context"
	"io"
)

// Event is a change the store made to an image: Action is pull, tag,
// untag, remove, load, import or commit; Name the name concerned (the
// reference pulled, the name tagged or untagged), else the image's
// first name.
type Event struct {
	Action, ID, Name string
}

// SetEvents makes the store call fn after each change to its images
// (berth records them in its event journal).
func (s *Store) SetEvents(fn func(Event)) { s.onEvent = fn }

func (s *Store) emit(action, id, name string) {
	if s.onEvent != nil {
		s.onEvent(Event{Action: action, ID: id, Name: name})
	}
}

func (s *Store) emitImage(action string, img *Image) {
	if img == nil {
		return
	}
	name := ""
	if len(img.Names) > 0 {
		name = img.Names[0]
	}
	s.emit(action, img.ID, name)
}

// Pull fetches reference from its registry into the store, as podman
// pull does (see pull).
func (s *Store) Pull(ctx context.Context, reference string, o PullOptions) (*Image, error) {
	img, err := s.pull(ctx, reference, o)
	if err == nil {
		s.emit("pull", img.ID, reference)
	}
	return img, err
}

// Tag adds name (normalised as a local name: banner is
// localhost/banner:latest) to the image target refers to; the name moves
// from any image that had it. It returns the full name.
func (s *Store) Tag(target, name string) (string, error) {
	full, err := s.tag(target, name)
	if err == nil {
		id := ""
		if img, lerr := s.Lookup(full); lerr == nil {
			id = img.ID
		}
		s.emit("tag", id, full)
	}
	return full, err
}

// Remove removes the image name refers to, as podman rmi does (see
// remove): untagged names and a deleted image are reported as events.
func (s *Store) Remove(name string, force bool) (RemoveResult, error) {
	var id string
	if img, err := s.Lookup(name); err == nil {
		id = img.ID
	}
	res, err := s.remove(name, force)
	if err != nil {
		return res, err
	}
	for _, n := range res.Untagged {
		s.emit("untag", id, n)
	}
	if res.Deleted != "" {
		s.emit("remove", res.Deleted, name)
	}
	return res, nil
}

// Load stores the images of the archive at path, as podman load does.
func (s *Store) Load(ctx context.Context, path string, progress io.Writer) ([]Loaded, error) {
	loaded, err := s.load(ctx, path, progress)
	s.emitLoaded(loaded)
	return loaded, err
}

// LoadReader is Load from a stream.
func (s *Store) LoadReader(ctx context.Context, r io.Reader, progress io.Writer) ([]Loaded, error) {
	loaded, err := s.loadReader(ctx, r, progress)
	s.emitLoaded(loaded)
	return loaded, err
}

func (s *Store) emitLoaded(loaded []Loaded) {
	for _, l := range loaded {
		s.emitImage("load", l.Image)
	}
}

// Import stores a root filesystem tarball as a one-layer image, as
// podman import does.
func (s *Store) Import(ctx context.Context, r io.Reader, o ImportOptions) (*Image, error) {
	img, err := s.importImage(ctx, r, o)
	if err == nil {
		s.emitImage("import", img)
	}
	return img, err
}

// Commit makes an image of a container's root filesystem, as podman
// commit does.
func (s *Store) Commit(ctx context.Context, containerID string, o CommitOptions) (*Image, error) {
	img, err := s.commit(ctx, containerID, o)
	if err == nil {
		s.emitImage("commit", img)
	}
	return img, err
}

// Prune removes the images no container uses: those without a name
// (dangling), or with all, every one. It returns the removed IDs.
func (s *Store) Prune(all bool) ([]string, error) {
	ids, err := s.prune(all)
	for _, id := range ids {
		s.emit("remove", id, "")
	}
	return ids, err
}

package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/berthnet/berth/internal/dockerapi"
	"github.com/berthnet/berth/internal/engine"
	"github.com/berthnet/berth/internal/image"
	"github.com/berthnet/berth/internal/image/ref"
	"github.com/berthnet/berth/internal/runopts"
)

// imageErr classifies the image store's errors for the API.
func imageErr(err error) error {
	var class error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, image.ErrNotFound):
		class = dockerapi.ErrNotFound
	case errors.Is(err, image.ErrInUse):
		class = dockerapi.ErrConflict
	case errors.Is(err, image.ErrAmbiguous), errors.Is(err, ref.ErrInvalid):
		class = dockerapi.ErrInvalid
	default:
		return err
	}
	return fmt.Errorf("%w: %w", err, class)
}

func (b dockerBackend) images() (*image.Store, error) {
	s, err := image.Open(filepath.Join(b.w.root, "images"))
	if err == nil {
		s.SetEvents(imageEvents(b.w.journal(), b.w.log))
	}
	return s, err
}

func (b dockerBackend) Images(ctx context.Context) ([]dockerapi.ImageInfo, error) {
	st, err := b.images()
	if err != nil {
		return nil, err
	}
	imgs, err := st.List()
	if err != nil {
		return nil, err
	}
	out := make([]dockerapi.ImageInfo, 0, len(imgs))
	for _, img := range imgs {
		users, err := st.Containers(img.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, dockerapi.ImageInfo{Image: img, Containers: len(users)})
	}
	return out, nil
}

func (b dockerBackend) Image(ctx context.Context, name string) (dockerapi.ImageInfo, error) {
	st, err := b.images()
	if err != nil {
		return dockerapi.ImageInfo{}, err
	}
	img, err := st.Lookup(name)
	if err != nil {
		return dockerapi.ImageInfo{}, imageErr(err)
	}
	users, err := st.Containers(img.ID)
	if err != nil {
		return dockerapi.ImageInfo{}, err
	}
	in := dockerapi.ImageInfo{Image: *img, Containers: len(users)}
	if cf, err := st.ConfigFile(img.ID); err == nil {
		in.Config = cf
	}
	return in, nil
}

// PullImage pulls with the CLI's registry configuration (registries.conf,
// certs.d, the docker and podman auth files unless the client sent
// credentials).
func (b dockerBackend) PullImage(ctx context.Context, reference string, auth *authn.AuthConfig, progress io.Writer) (image.Image, error) {
	st, err := b.images()
	if err != nil {
		return image.Image{}, err
	}
	rc, err := image.LoadRegistryConfig(registriesGetenv(b.w.env))
	if err != nil {
		return image.Image{}, err
	}
	o := image.PullOptions{RemoteOptions: image.RemoteOptions{Registries: rc, Progress: progress}}
	if auth != nil {
		o.Keychain = image.StaticKeychain(*auth)
	}
	img, err := st.Pull(ctx, reference, o)
	if err != nil {
		return image.Image{}, imageErr(err)
	}
	return *img, nil
}

func (b dockerBackend) TagImage(ctx context.Context, target, name string) error {
	st, err := b.images()
	if err != nil {
		return err
	}
	_, err = st.Tag(target, name)
	return imageErr(err)
}

var imageIDRef = regexp.MustCompile(`^(sha256:)?[0-9a-f]{3,64}$`)

// RemoveImage removes as Docker does: an ID of an image with several
// names is refused (409) unless forced.
func (b dockerBackend) RemoveImage(ctx context.Context, name string, force bool) (image.RemoveResult, error) {
	st, err := b.images()
	if err != nil {
		return image.RemoveResult{}, err
	}
	img, err := st.Lookup(name)
	if err != nil {
		return image.RemoveResult{}, imageErr(err)
	}
	byID := imageIDRef.MatchString(name) && strings.HasPrefix(img.ID, strings.TrimPrefix(name, "sha256:"))
	if byID && len(img.Names) > 1 && !force {
		return image.RemoveResult{}, fmt.Errorf("conflict: unable to delete %s (must be forced) - image is referenced in multiple repositories: %w",
			img.ID[:12], dockerapi.ErrConflict)
	}
	if byID {
		name = img.ID
	}
	res, err := st.Remove(name, force)
	if errors.Is(err, image.ErrInUse) {
		return res, fmt.Errorf("conflict: unable to remove repository reference %q (must force) - %w: %w", name, err, dockerapi.ErrConflict)
	}
	return res, imageErr(err)
}

func (b dockerBackend) PruneImages(ctx context.Context, all bool) ([]string, error) {
	st, err := b.images()
	if err != nil {
		return nil, err
	}
	return st.Prune(all)
}

// SaveImages writes a docker-archive, as berth save does.
func (b dockerBackend) SaveImages(ctx context.Context, names []string, w io.Writer) error {
	st, err := b.images()
	if err != nil {
		return err
	}
	return imageErr(st.Save(w, names, image.FormatDockerArchive))
}

// LoadImages loads an archive, as berth load does.
func (b dockerBackend) LoadImages(ctx context.Context, r io.Reader) ([]dockerapi.LoadedImage, error) {
	st, err := b.images()
	if err != nil {
		return nil, err
	}
	loaded, err := st.LoadReader(ctx, r, io.Discard)
	if err != nil {
		return nil, imageErr(err)
	}
	out := make([]dockerapi.LoadedImage, 0, len(loaded))
	for _, l := range loaded {
		out = append(out, dockerapi.LoadedImage{ID: l.Image.ID, Names: l.Names})
	}
	return out, nil
}

func (b dockerBackend) LayerSizes(ctx context.Context, id string) ([]int64, error) {
	st, err := b.images()
	if err != nil {
		return nil, err
	}
	sizes, err := st.LayerSizes(id)
	return sizes, imageErr(err)
}

func (b dockerBackend) volumeInfo(e *engine.Engine, v *engine.Volume) (dockerapi.VolumeInfo, error) {
	users, err := e.VolumeUsers(v.Name)
	if err != nil {
		return dockerapi.VolumeInfo{}, err
	}
	return dockerapi.VolumeInfo{Volume: *v, Mountpoint: e.VolumePath(v.Name), InUse: len(users) > 0}, nil
}

func (b dockerBackend) Volumes(ctx context.Context) ([]dockerapi.VolumeInfo, error) {
	e, err := b.w.engine()
	if err != nil {
		return nil, err
	}
	vols, err := e.Volumes()
	if err != nil {
		return nil, err
	}
	out := make([]dockerapi.VolumeInfo, 0, len(vols))
	for _, v := range vols {
		in, err := b.volumeInfo(e, v)
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	return out, nil
}

// Volume finds exactly name (Docker matches no prefixes).
func (b dockerBackend) Volume(ctx context.Context, name string) (dockerapi.VolumeInfo, error) {
	e, err := b.w.engine()
	if err != nil {
		return dockerapi.VolumeInfo{}, err
	}
	v, err := e.GetVolume(name)
	if err == nil && v.Name != name {
		err = engine.ErrNoSuchVolume
	}
	if err != nil {
		if errors.Is(err, engine.ErrNoSuchVolume) {
			return dockerapi.VolumeInfo{}, fmt.Errorf("get %s: no such volume: %w", name, dockerapi.ErrNotFound)
		}
		return dockerapi.VolumeInfo{}, err
	}
	return b.volumeInfo(e, v)
}

func (b dockerBackend) CreateVolume(ctx context.Context, o engine.VolumeOptions) (dockerapi.VolumeInfo, error) {
	if o.Name != "" && !runopts.ValidVolumeName(o.Name) {
		return dockerapi.VolumeInfo{}, fmt.Errorf("create %s: %q includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed: %w",
			o.Name, o.Name, dockerapi.ErrInvalid)
	}
	e, err := b.w.engine()
	if err != nil {
		return dockerapi.VolumeInfo{}, err
	}
	v, err := e.CreateVolume(o)
	if err != nil {
		return dockerapi.VolumeInfo{}, apiErr(err)
	}
	return b.volumeInfo(e, v)
}

// RemoveVolume removes a volume no container uses; unlike berth volume
// rm --force, it never removes containers.
func (b dockerBackend) RemoveVolume(ctx context.Context, name string) error {
	if _, err := b.Volume(ctx, name); err != nil {
		return err
	}
	e, err := b.w.engine()
	if err != nil {
		return err
	}
	err = e.RemoveVolume(name, false)
	if errors.Is(err, engine.ErrVolumeInUse) {
		return fmt.Errorf("remove %s: volume is in use - %w: %w", name, err, dockerapi.ErrConflict)
	}
	return apiErr(err)
}

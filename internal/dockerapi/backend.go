package dockerapi

import (
	"context"
	"errors"
	"io"
	"net/netip"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berthnet/berth/internal/engine"
	"github.com/berthnet/berth/internal/image"
	"github.com/berthnet/berth/internal/network"
	"github.com/berthnet/berth/internal/runspec"
)

// Errors a Backend wraps so the server answers with Docker's status codes.
var (
	// ErrNotFound: 404.
	ErrNotFound = errors.New("not found")
	// ErrConflict: 409 (a name in use, a network with containers).
	ErrConflict = errors.New("conflict")
	// ErrInvalid: 400 (a request berth cannot accept as given).
	ErrInvalid = errors.New("invalid request")
	// ErrForbidden: 403 (removing a network with active endpoints).
	ErrForbidden = errors.New("forbidden")
	// ErrNotImplemented: 501 (an endpoint or option berth does not serve).
	ErrNotImplemented = errors.New("not implemented")
)

// Endpoint is one container's attachment to a network, as network
// inspect lists it.
type Endpoint struct {
	ContainerID string
	Name        string
	MAC         string
	IPv4, IPv6  netip.Prefix
}

// NetworkInfo is a network and the containers attached to it.
type NetworkInfo struct {
	Network   network.Network
	Endpoints []Endpoint
	// InUse is true when any container (running or not) is configured
	// on the network.
	InUse bool
}

// HostInfo is what /info and /version report about the host.
type HostInfo struct {
	Name          string
	KernelVersion string
	OS            string
	Arch          string
	NCPU          int
	MemTotal      int64
	Root          string
	Rootless      bool
	Version       string
	Containers    int
	Running       int
	Paused        int
	Stopped       int
	Images        int
}

// Backend is berth's side of the API: every handler translates into one
// of these calls. Errors wrap ErrNotFound, ErrConflict, ErrInvalid or
// ErrNotImplemented to choose the status code; anything else is a 500.
type Backend interface {
	Info(ctx context.Context) (HostInfo, error)
	ImageBackend
	VolumeBackend

	// Networks lists every network with its endpoints.
	Networks(ctx context.Context) ([]NetworkInfo, error)
	// Network finds one network by full name, full ID or unique ID prefix.
	Network(ctx context.Context, ref string) (NetworkInfo, error)
	// CreateNetwork completes (free subnet, bridge name, ID) and writes n.
	CreateNetwork(ctx context.Context, n network.Network) (network.Network, error)
	// RemoveNetwork removes a network no container uses.
	RemoveNetwork(ctx context.Context, ref string) error
	// Connect attaches a container to a network.
	Connect(ctx context.Context, container string, r engine.ConnectRequest) error
	// Disconnect detaches a container from a network.
	Disconnect(ctx context.Context, container, network string, force bool) error
	// IsDefaultNetwork tells whether n is the engine's default network,
	// the one Docker clients call "bridge".
	IsDefaultNetwork(n network.Network) bool

	// Engine is the container engine (opened on first use).
	Engine() (ContainerEngine, error)
	// InspectInfo is where the engine keeps a container's files.
	InspectInfo(c *engine.Container) InspectInfo
}

// ContainerEngine is the part of berth's engine the container endpoints
// drive; *engine.Engine implements it. Its errors are berth's own
// (engine.ErrNoSuchContainer ...); the server classifies them.
type ContainerEngine interface {
	List() ([]*engine.Container, error)
	Get(ref string) (*engine.Container, error)
	Create(o engine.CreateOptions) (*engine.Container, []string, error)
	Start(ref string, so engine.StartOptions) (*engine.Container, error)
	Stop(ref string, timeout *uint) (*engine.Container, error)
	Kill(ref, sig string) (*engine.Container, error)
	Restart(ref string, timeout *uint) (*engine.Container, error)
	Wait(ref string) (*engine.Container, error)
	RemoveWith(ref string, force, volumes bool) (*engine.Container, error)
	Pause(ref string) (*engine.Container, error)
	Unpause(ref string) (*engine.Container, error)
	Rename(ref, name string) (*engine.Container, error)
	LogPath(id string) string
	AttachSocket(id string) string
	Exec(ref string, p runspec.Process, detach bool, stdin io.Reader, stdout, stderr io.Writer) (int, error)
	ExecWith(ref string, p runspec.Process, o engine.ExecIO) (int, error)
	ResizeTerminal(ref string, rows, cols uint16) error
	Copy(src, dst engine.CopyEnd, o engine.CopyOptions) error
	Top(ref string) (*engine.Container, []engine.Proc, error)
	Stats(ref string) (engine.Stats, error)
}

// ImageInfo is a stored image with what inspect adds to it.
type ImageInfo struct {
	Image image.Image
	// Config is the image's full configuration (nil when unreadable).
	Config *v1.ConfigFile
	// Containers counts the containers whose root filesystem it is.
	Containers int
}

// ImageBackend is berth's image store as the /images endpoints use it.
type ImageBackend interface {
	// Images lists every stored image.
	Images(ctx context.Context) ([]ImageInfo, error)
	// Image finds one image by name, short name, ID or ID prefix.
	Image(ctx context.Context, ref string) (ImageInfo, error)
	// PullImage pulls reference, writing Podman-style progress lines
	// (see PullProgress) to progress; auth, when not nil, replaces the
	// stored credentials.
	PullImage(ctx context.Context, reference string, auth *authn.AuthConfig, progress io.Writer) (image.Image, error)
	// TagImage adds name to the image target refers to.
	TagImage(ctx context.Context, target, name string) error
	// RemoveImage untags or removes an image; force removes one that
	// containers use (ErrConflict otherwise) or that has several names.
	RemoveImage(ctx context.Context, ref string, force bool) (image.RemoveResult, error)
	// PruneImages removes the unused images without a name (all: every
	// unused image) and returns their IDs.
	PruneImages(ctx context.Context, all bool) ([]string, error)
	// SaveImages writes the images names refer to as one docker-archive
	// (what docker save writes) to w.
	SaveImages(ctx context.Context, names []string, w io.Writer) error
	// LoadImages stores the images of an archive read from r: a
	// docker-archive or an OCI archive, gzip-compressed or not.
	LoadImages(ctx context.Context, r io.Reader) ([]LoadedImage, error)
	// LayerSizes returns the uncompressed size of each layer of the image
	// with this ID, bottom first.
	LayerSizes(ctx context.Context, id string) ([]int64, error)
}

// LoadedImage is an image LoadImages stored, with the names it got
// (full references; none for an archive entry without one).
type LoadedImage struct {
	ID    string
	Names []string
}

// VolumeInfo is a volume with its data directory and whether any
// container uses it.
type VolumeInfo struct {
	Volume     engine.Volume
	Mountpoint string
	InUse      bool
}

// VolumeBackend is berth's engine volumes as the /volumes endpoints use
// them.
type VolumeBackend interface {
	Volumes(ctx context.Context) ([]VolumeInfo, error)
	// Volume finds a volume by its exact name.
	Volume(ctx context.Context, name string) (VolumeInfo, error)
	CreateVolume(ctx context.Context, o engine.VolumeOptions) (VolumeInfo, error)
	// RemoveVolume removes a volume no container uses (ErrConflict
	// otherwise).
	RemoveVolume(ctx context.Context, name string) error
}

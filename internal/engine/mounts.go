package engine

// A container's storage: bind mounts, volumes and tmpfs, resolved at
// create and turned into OCI mounts at start (with the copy-up of the
// image's content into a new volume).

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/rollback"
	"github.com/berthnet/berth/internal/runopts"
)

// prepareMounts resolves a new container's mounts: bind sources are made
// absolute and must exist, every VOLUME of the image not covered by a
// mount gets an anonymous volume, named volumes that do not exist are
// created (as Podman does) and anonymous ones get random names. What it
// creates is removed when a later step fails.
func (e *Engine) prepareMounts(cfg *Config, given []runopts.Mount, imageVolumes []string, rb *rollback.Stack) error {
	ms := slices.Clone(given)
	for _, d := range imageVolumes {
		if !slices.ContainsFunc(ms, func(m runopts.Mount) bool { return m.Destination == filepath.Clean(d) }) {
			ms = append(ms, runopts.Mount{Type: runopts.MountVolume, Destination: filepath.Clean(d), Anonymous: true})
		}
	}
	if err := runopts.CheckMounts(ms); err != nil {
		return err
	}
	for i := range ms {
		if err := e.prepareMount(&ms[i], rb); err != nil {
			return err
		}
	}
	cfg.Mounts = ms
	return nil
}

func (e *Engine) prepareMount(m *runopts.Mount, rb *rollback.Stack) error {
	switch m.Type {
	case runopts.MountBind:
		abs, err := filepath.Abs(m.Source)
		if err != nil {
			return err
		}
		var st unix.Statfs_t
		if err := unix.Statfs(abs, &st); err != nil {
			return &os.PathError{Op: "statfs", Path: abs, Err: err}
		}
		m.Source = abs
	case runopts.MountVolume:
		if !m.Anonymous {
			if _, err := e.volume(m.Source); err == nil {
				return nil
			} else if !errors.Is(err, ErrNoSuchVolume) {
				return err
			}
		}
		v, err := e.CreateVolume(VolumeOptions{Name: m.Source, Anonymous: m.Anonymous})
		if err != nil && !errors.Is(err, ErrVolumeExists) {
			return err
		}
		if err == nil {
			m.Source = v.Name
			rb.Defer(func() { _ = e.deleteVolume(v.Name) })
		}
	}
	return nil
}

// storageMounts returns the container's OCI mounts, parents before
// children; a volume mounted for the first time gets the image's content
// at its mount point and that content's owner (see Volume).
func (e *Engine) storageMounts(c *Container, rootfs string, uid, gid uint32) ([]specs.Mount, error) {
	var out []specs.Mount
	for _, m := range c.Config.Mounts {
		sm := specs.Mount{Destination: m.Destination, Type: "bind", Source: m.Source}
		switch m.Type {
		case runopts.MountBind:
			sm.Options = bindOptions(m.Options, nil)
		case runopts.MountVolume:
			if err := e.firstUse(m, rootfs, uid, gid); err != nil {
				return nil, fmt.Errorf("volume %s: %w", m.Source, err)
			}
			sm.Source = e.VolumePath(m.Source)
			sm.Options = bindOptions(m.Options, []string{"nosuid", "nodev"})
		case runopts.MountTmpfs:
			sm.Type, sm.Source = "tmpfs", "tmpfs"
			sm.Options = tmpfsOptions(m.Options)
		default:
			return nil, fmt.Errorf("mount %s: unknown type %q", m.Destination, m.Type)
		}
		out = append(out, sm)
	}
	sort.SliceStable(out, func(i, j int) bool { return depth(out[i].Destination) < depth(out[j].Destination) })
	return out, nil
}

func depth(p string) int { return strings.Count(filepath.Clean(p), "/") }

// bindOptions are the runc options of a bind mount or volume: rbind
// (bind when asked), rprivate unless a propagation is given, the
// defaults unless their opposites are given, and the given options
// without berth's own (copy, nocopy) and the SELinux ones (z, Z).
func bindOptions(given, defaults []string) []string {
	var opts []string
	opposite := map[string]string{"nosuid": "suid", "nodev": "dev"}
	for _, d := range defaults {
		if !slices.Contains(given, opposite[d]) {
			opts = append(opts, d)
		}
	}
	if slices.Contains(given, "bind") {
		opts = append(opts, "bind")
	} else {
		opts = append(opts, "rbind")
	}
	prop := false
	for _, o := range given {
		switch o {
		case "bind", "rbind", "copy", "nocopy", "z", "Z":
			continue
		case "private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable":
			prop = true
		}
		opts = append(opts, o)
	}
	if !prop {
		opts = append(opts, "rprivate")
	}
	return opts
}

// tmpfsOptions adds tmpcopyup (Podman's default) unless notmpcopyup is
// given; runc knows tmpcopyup only.
func tmpfsOptions(given []string) []string {
	var opts []string
	for _, o := range given {
		if o != "notmpcopyup" && o != "tmpcopyup" {
			opts = append(opts, o)
		}
	}
	if !slices.Contains(given, "notmpcopyup") {
		opts = append(opts, "tmpcopyup")
	}
	return opts
}

// firstUse copies the image's content at the mount point into an empty
// volume mounted for the first time (unless nocopy) and gives the
// volume's directory that content's owner and mode, else the container's
// user.
func (e *Engine) firstUse(m runopts.Mount, rootfs string, uid, gid uint32) error {
	unlock, err := lockDir(e.VolumeDir(m.Source))
	if err != nil {
		return err
	}
	defer unlock()
	v, err := e.volume(m.Source)
	if err != nil {
		return err
	}
	if !v.NeedsCopyUp && !v.NeedsChown {
		return nil
	}
	data := e.VolumePath(v.Name)
	src, st, err := imageDir(rootfs, m.Destination)
	if err != nil {
		return err
	}
	if src != nil {
		defer src.Close()
	}
	if v.NeedsChown {
		if st != nil {
			uid, gid = st.Uid, st.Gid
			if err := os.Chmod(data, os.FileMode(st.Mode&0o7777)); err != nil {
				return err
			}
		}
		if err := os.Lchown(data, int(uid), int(gid)); err != nil {
			return err
		}
	}
	if v.NeedsCopyUp && src != nil && !slices.Contains(m.Options, "nocopy") {
		if empty, err := isEmptyDir(data); err != nil || !empty {
			return err
		}
		if err := copyTree(os.DirFS(fmt.Sprintf("/proc/self/fd/%d", src.Fd())), fmt.Sprintf("/proc/self/fd/%d", src.Fd()), data); err != nil {
			return fmt.Errorf("copy the image's content: %w", err)
		}
	}
	v.NeedsCopyUp, v.NeedsChown = false, false
	return e.putVolume(v, false)
}

// imageDir opens the directory dest of the root filesystem, resolved
// inside it; nil when it does not exist or is no directory.
func imageDir(rootfs, dest string) (*os.File, *unix.Stat_t, error) {
	root, err := os.Open(rootfs)
	if err != nil {
		return nil, nil, err
	}
	defer root.Close()
	fd, err := unix.Openat2(int(root.Fd()), strings.TrimPrefix(dest, "/"), &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("open %s in the root filesystem: %w", dest, err)
	}
	f := os.NewFile(uintptr(fd), dest)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, &st, nil
}

func isEmptyDir(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	return false, err
}

// copyTree copies the tree under srcDir into dst, keeping modes, owners
// and symbolic links (never followed).
func copyTree(fsys fs.FS, srcDir, dst string) error {
	return fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == "." {
			return err
		}
		src, to := filepath.Join(srcDir, p), filepath.Join(dst, p)
		var st unix.Stat_t
		if err := unix.Lstat(src, &st); err != nil {
			return err
		}
		if err := copyEntry(src, to, &st); err != nil {
			return err
		}
		if err := os.Lchown(to, int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			return nil
		}
		return os.Chmod(to, os.FileMode(st.Mode&0o777)|modeBits(st.Mode))
	})
}

// modeBits are the setuid, setgid and sticky bits as Go file mode bits.
func modeBits(m uint32) os.FileMode {
	var out os.FileMode
	if m&unix.S_ISUID != 0 {
		out |= os.ModeSetuid
	}
	if m&unix.S_ISGID != 0 {
		out |= os.ModeSetgid
	}
	if m&unix.S_ISVTX != 0 {
		out |= os.ModeSticky
	}
	return out
}

func copyEntry(src, to string, st *unix.Stat_t) error {
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return os.Mkdir(to, 0o700)
	case unix.S_IFLNK:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		return os.Symlink(target, to)
	case unix.S_IFREG:
		return copyRegular(src, to)
	default: // devices, fifos, sockets
		return unix.Mknod(to, st.Mode, int(st.Rdev))
	}
}

func copyRegular(src, to string) error {
	in, err := os.OpenFile(src, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	return errors.Join(err, out.Close())
}

// MountOptions are the OCI options a bind mount or volume is mounted
// with (as inspect shows them).
func MountOptions(m runopts.Mount) []string {
	if m.Type == runopts.MountVolume {
		return bindOptions(m.Options, []string{"nosuid", "nodev"})
	}
	return bindOptions(m.Options, nil)
}

// lockDir holds an exclusive lock on a directory (two containers that
// first use a volume at once copy its content once).
func lockDir(dir string) (func(), error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return func() { f.Close() }, nil
}

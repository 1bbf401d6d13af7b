package runopts

// Storage options of run and create: -v/--volume, --mount and --tmpfs, as
// Podman parses and validates them.

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
)

// Mount types.
const (
	MountBind   = "bind"
	MountVolume = "volume"
	MountTmpfs  = "tmpfs"
)

// Mount is one storage mount of a container. Source is the host path of
// a bind mount or the name of a volume ("" for an anonymous volume until
// the engine names it); a tmpfs has none. Options are validated mount
// options in Podman's spelling (ro, nosuid, rshared, size=64m, nocopy...).
type Mount struct {
	Type        string   `json:"type"`
	Source      string   `json:"source,omitempty"`
	Destination string   `json:"destination"`
	Options     []string `json:"options,omitempty"`
	// Anonymous marks a volume the engine created for this container
	// (-v /path, an image's VOLUME): rm -v and --rm remove it.
	Anonymous bool `json:"anonymous,omitempty"`
}

// ReadOnly reports whether the mount is read-only.
func (m Mount) ReadOnly() bool { return slices.Contains(m.Options, "ro") }

var volumeNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// ValidVolumeName reports whether s is a valid volume name.
func ValidVolumeName(s string) bool { return volumeNameRE.MatchString(s) }

// errVolumeFormat is Podman's error for a malformed -v value.
var errVolumeFormat = errors.New("incorrect volume format, should be [host-dir:]ctr-dir[:option]")

// ParseVolume parses one -v/--volume value: CTR-DIR (an anonymous
// volume), HOST-DIR:CTR-DIR[:OPTIONS] (a bind mount: HOST-DIR starts with
// / or .) or NAME:CTR-DIR[:OPTIONS] (a named volume). A relative HOST-DIR
// is left for the caller to resolve.
func ParseVolume(s string) (Mount, error) {
	m, err := parseVolume(s)
	if err != nil {
		return Mount{}, fmt.Errorf("--volume %q: %w", s, err)
	}
	return m, nil
}

func parseVolume(s string) (Mount, error) {
	parts := strings.Split(s, ":")
	if len(parts) > 3 {
		return Mount{}, errVolumeFormat
	}
	m := Mount{Type: MountVolume}
	dest := parts[0]
	if len(parts) > 1 {
		m.Source, dest = parts[0], parts[1]
		if m.Source == "" {
			return Mount{}, errors.New("host directory cannot be empty")
		}
	}
	if len(parts) > 2 {
		opts, err := validateVolumeOpts(strings.Split(parts[2], ","))
		if err != nil {
			return Mount{}, err
		}
		m.Options = opts
	}
	d, err := containerPath(dest)
	if err != nil {
		return Mount{}, err
	}
	m.Destination = d
	switch {
	case strings.HasPrefix(m.Source, "/") || strings.HasPrefix(m.Source, "."):
		m.Type = MountBind
		if slices.Contains(m.Options, "nocopy") || slices.Contains(m.Options, "copy") {
			return Mount{}, errors.New("the copy and nocopy options apply to volumes, not bind mounts")
		}
	case m.Source == "":
		m.Anonymous = true
	case !ValidVolumeName(m.Source):
		return Mount{}, fmt.Errorf("volume name %q: names must match [a-zA-Z0-9][a-zA-Z0-9_.-]*", m.Source)
	}
	return m, nil
}

// containerPath checks and cleans a destination in the container.
func containerPath(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("invalid container path %q, must be an absolute path", p)
	}
	return path.Clean(p), nil
}

// optionGroups are the -v options of which at most one of each group may
// be given, with Podman's name for the group.
var optionGroups = []struct {
	names []string
	desc  string
}{
	{[]string{"rw", "ro"}, "'rw' or 'ro'"},
	{[]string{"z", "Z"}, "'z' or 'Z'"},
	{[]string{"private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable"}, "'[r]shared', '[r]private', '[r]slave' or '[r]unbindable'"},
	{[]string{"bind", "rbind"}, "'[r]bind'"},
	{[]string{"exec", "noexec"}, "'noexec' or 'exec'"},
	{[]string{"dev", "nodev"}, "'nodev' or 'dev'"},
	{[]string{"suid", "nosuid"}, "'nosuid' or 'suid'"},
	{[]string{"copy", "nocopy"}, "'copy' or 'nocopy'"},
}

// unsupportedOpts are options Podman has and berth refuses.
var unsupportedOpts = map[string]string{
	"U":        "changing the owner of the source (U)",
	"O":        "overlay mounts (O)",
	"idmap":    "ID-mapped mounts (idmap)",
	"upperdir": "overlay mounts (upperdir)",
	"workdir":  "overlay mounts (workdir)",
}

// validateVolumeOpts checks -v options as Podman's ValidateVolumeOpts does.
func validateVolumeOpts(opts []string) ([]string, error) {
	seen := make([]int, len(optionGroups))
	var out []string
	for _, o := range opts {
		name, _, _ := strings.Cut(o, "=")
		if what, ok := unsupportedOpts[name]; ok {
			return nil, fmt.Errorf("volume option %q: berth does not support %s", o, what)
		}
		g := slices.IndexFunc(optionGroups, func(g struct {
			names []string
			desc  string
		}) bool {
			return slices.Contains(g.names, o)
		})
		if g < 0 {
			return nil, fmt.Errorf("invalid option type %q", o)
		}
		if seen[g]++; seen[g] > 1 {
			return nil, fmt.Errorf("invalid options %q, can only specify 1 %s option", strings.Join(opts, ", "), optionGroups[g].desc)
		}
		out = append(out, o)
	}
	return out, nil
}

// ParseTmpfs parses one --tmpfs value, CTR-DIR[:OPTIONS], into a tmpfs
// mount with Podman's default options (rw, noexec, nosuid, nodev) before
// the given ones.
func ParseTmpfs(s string) (Mount, error) {
	dest, opts, _ := strings.Cut(s, ":")
	d, err := containerPath(dest)
	if err != nil {
		return Mount{}, fmt.Errorf("--tmpfs %q: %w", s, err)
	}
	m := Mount{Type: MountTmpfs, Destination: d, Options: []string{"rw", "noexec", "nosuid", "nodev"}}
	if opts == "" {
		return m, nil
	}
	for _, o := range strings.Split(opts, ",") {
		if err := checkTmpfsOpt(o); err != nil {
			return Mount{}, fmt.Errorf("--tmpfs %q: %w", s, err)
		}
		m.Options = append(m.Options, o)
	}
	m.Options = dropOverridden(m.Options)
	return m, nil
}

// tmpfsFlags are the tmpfs options without a value runc understands.
var tmpfsFlags = []string{"rw", "ro", "exec", "noexec", "dev", "nodev", "suid", "nosuid",
	"tmpcopyup", "notmpcopyup", "private", "rprivate", "shared", "rshared", "slave", "rslave",
	"unbindable", "runbindable", "strictatime", "nostrictatime", "atime", "noatime", "relatime", "norelatime"}

var tmpfsValueRE = regexp.MustCompile(`^(size|nr_blocks|nr_inodes)=[0-9]+[kKmMgG%]?$|^mode=[0-7]{3,4}$|^(uid|gid)=[0-9]+$`)

func checkTmpfsOpt(o string) error {
	if slices.Contains(tmpfsFlags, o) || tmpfsValueRE.MatchString(o) {
		return nil
	}
	return fmt.Errorf("unknown mount option %q: invalid mount option (tmpfs takes size=, mode=, uid=, gid=, nr_inodes=, nr_blocks=, ro, rw, [no]exec, [no]dev, [no]suid, [no]tmpcopyup, a propagation or an atime option)", o)
}

// ParseMount parses one --mount value, type=bind|volume|tmpfs,KEY[=VALUE],...
func ParseMount(s string) (Mount, error) {
	m, err := parseMount(s)
	if err != nil {
		return Mount{}, fmt.Errorf("--mount %q: %w", s, err)
	}
	return m, nil
}

func parseMount(s string) (Mount, error) {
	var typ string
	var rest []string
	for _, tok := range strings.Split(s, ",") {
		if v, ok := strings.CutPrefix(tok, "type="); ok {
			if typ != "" {
				return Mount{}, errors.New("type may be given only once")
			}
			typ = v
			continue
		}
		rest = append(rest, tok)
	}
	switch typ {
	case "":
		return Mount{}, errors.New("incorrect mount format: should be --mount type=<bind|tmpfs|volume>,[src=<host-dir|volume-name>,]target=<ctr-dir>[,options]")
	case MountBind, MountVolume, MountTmpfs:
	case "image", "devpts", "glob", "ramfs":
		return Mount{}, fmt.Errorf("berth does not support mounts of type %q (bind, volume and tmpfs are supported)", typ)
	default:
		return Mount{}, fmt.Errorf("invalid filesystem type %q", typ)
	}
	m := Mount{Type: typ}
	if err := mountOptions(&m, rest); err != nil {
		return Mount{}, err
	}
	return finishMount(m)
}

// mountKeys tracks the --mount keys given once at most.
type mountKeys struct{ src, dst, rorw, exec, dev, suid, prop, copy, relabel bool }

func once(set *bool, what string) error {
	if *set {
		return fmt.Errorf("cannot pass %s more than once", what)
	}
	*set = true
	return nil
}

// mountOptions applies the KEY[=VALUE] tokens of a --mount value.
func mountOptions(m *Mount, toks []string) error {
	var k mountKeys
	for _, tok := range toks {
		if err := mountOption(m, &k, tok); err != nil {
			return err
		}
	}
	return nil
}

func mountOption(m *Mount, k *mountKeys, tok string) error {
	name, val, hasVal := strings.Cut(tok, "=")
	needVal := func() error {
		if !hasVal || val == "" {
			return fmt.Errorf("%s: must provide an argument for option", name)
		}
		return nil
	}
	onlyFor := func(types ...string) error {
		if !slices.Contains(types, m.Type) {
			return fmt.Errorf("%q option not supported for %q mount types", name, m.Type)
		}
		return nil
	}
	switch name {
	case "src", "source":
		if err := errors.Join(onlyFor(MountBind, MountVolume), once(&k.src, "'source'"), needVal()); err != nil {
			return err
		}
		m.Source = val
	case "target", "dst", "destination":
		if err := errors.Join(once(&k.dst, "'target'"), needVal()); err != nil {
			return err
		}
		d, err := containerPath(val)
		if err != nil {
			return err
		}
		m.Destination = d
	case "ro", "readonly", "rw":
		return roOption(m, k, name, val, hasVal)
	case "exec", "noexec":
		return flagOption(m, &k.exec, "'noexec' and 'exec'", tok, hasVal)
	case "dev", "nodev":
		return flagOption(m, &k.dev, "'nodev' and 'dev'", tok, hasVal)
	case "suid", "nosuid":
		return flagOption(m, &k.suid, "'nosuid' and 'suid'", tok, hasVal)
	case "shared", "rshared", "private", "rprivate", "slave", "rslave", "unbindable", "runbindable":
		return flagOption(m, &k.prop, "a propagation", tok, hasVal)
	case "bind-propagation":
		if err := errors.Join(onlyFor(MountBind), needVal()); err != nil {
			return err
		}
		if !slices.Contains(optionGroups[2].names, val) {
			return fmt.Errorf("invalid value %q", tok)
		}
		return flagOption(m, &k.prop, "a propagation", val, false)
	case "bind-nonrecursive":
		if err := onlyFor(MountBind); err != nil {
			return err
		}
		m.Options = append(m.Options, "bind")
	case "z", "Z":
		if err := onlyFor(MountBind); err != nil {
			return err
		}
		return flagOption(m, &k.relabel, "'z' or 'Z'", tok, hasVal)
	case "relabel":
		if err := onlyFor(MountBind); err != nil {
			return err
		}
		if val != "private" && val != "shared" {
			return errors.New("relabel mount option must be 'private' or 'shared'")
		}
		return flagOption(m, &k.relabel, "'relabel'", map[string]string{"private": "Z", "shared": "z"}[val], false)
	case "consistency":
		// Docker and Podman accept and ignore it (a macOS option).
	case "nocopy", "volume-nocopy":
		if err := onlyFor(MountVolume); err != nil {
			return err
		}
		return flagOption(m, &k.copy, "'nocopy'", "nocopy", false)
	case "tmpfs-size":
		if err := errors.Join(onlyFor(MountTmpfs), needVal()); err != nil {
			return err
		}
		return tmpfsOption(m, "size="+val)
	case "tmpfs-mode":
		if err := errors.Join(onlyFor(MountTmpfs), needVal()); err != nil {
			return err
		}
		return tmpfsOption(m, "mode="+val)
	case "tmpcopyup", "notmpcopyup":
		if err := onlyFor(MountTmpfs); err != nil {
			return err
		}
		return flagOption(m, &k.copy, "'tmpcopyup' and 'notmpcopyup'", tok, hasVal)
	case "U", "chown", "idmap", "subpath", "volume-subpath", "volume-opt", "volume-label", "volume-driver", "no-dereference", "noswap":
		return fmt.Errorf("berth does not support the mount option %q", name)
	default:
		return fmt.Errorf("%q: invalid mount option", tok)
	}
	return nil
}

// roOption handles ro, readonly and rw with an optional =true|false.
func roOption(m *Mount, k *mountKeys, name, val string, hasVal bool) error {
	if err := once(&k.rorw, "'readonly', 'ro', or 'rw'"); err != nil {
		return err
	}
	ro := name != "rw"
	if hasVal {
		switch strings.ToLower(val) {
		case "true":
		case "false":
			ro = !ro
		default:
			return fmt.Errorf("%s=%s: want true or false", name, val)
		}
	}
	if ro {
		m.Options = append(m.Options, "ro")
	} else {
		m.Options = append(m.Options, "rw")
	}
	return nil
}

func flagOption(m *Mount, set *bool, what, opt string, hasVal bool) error {
	if hasVal {
		return fmt.Errorf("%q: the option takes no value", opt)
	}
	if err := once(set, what+" options"); err != nil {
		return err
	}
	m.Options = append(m.Options, opt)
	return nil
}

func tmpfsOption(m *Mount, o string) error {
	if !tmpfsValueRE.MatchString(o) {
		return fmt.Errorf("invalid tmpfs option %q", o)
	}
	m.Options = append(m.Options, o)
	return nil
}

// finishMount checks what a mount of its type needs.
func finishMount(m Mount) (Mount, error) {
	if m.Destination == "" {
		return Mount{}, errors.New("must set volume destination")
	}
	switch m.Type {
	case MountBind:
		if m.Source == "" {
			return Mount{}, errors.New("must set volume source")
		}
		if !strings.HasPrefix(m.Source, "/") && !strings.HasPrefix(m.Source, ".") {
			return Mount{}, fmt.Errorf("bind source %q: must be a path (absolute or starting with .)", m.Source)
		}
	case MountVolume:
		if m.Source == "" {
			m.Anonymous = true
		} else if !ValidVolumeName(m.Source) {
			return Mount{}, fmt.Errorf("volume name %q: names must match [a-zA-Z0-9][a-zA-Z0-9_.-]*", m.Source)
		}
	case MountTmpfs:
		m.Options = append([]string{"rw", "noexec", "nosuid", "nodev"}, m.Options...)
		m.Options = dropOverridden(m.Options)
	}
	return m, nil
}

// dropOverridden removes default tmpfs options a later option overrides
// (ro over rw, exec over noexec, ...).
func dropOverridden(opts []string) []string {
	opposite := map[string]string{"rw": "ro", "noexec": "exec", "nosuid": "suid", "nodev": "dev"}
	var out []string
	for i, o := range opts {
		if op, ok := opposite[o]; ok && slices.Contains(opts[i+1:], op) {
			continue
		}
		out = append(out, o)
	}
	return out
}

// CheckMounts fails when two mounts share a destination (Podman's
// "duplicate mount destination").
func CheckMounts(ms []Mount) error {
	seen := map[string]bool{}
	for _, m := range ms {
		if seen[m.Destination] {
			return fmt.Errorf("%s: duplicate mount destination", m.Destination)
		}
		seen[m.Destination] = true
	}
	return nil
}

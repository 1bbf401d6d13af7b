// Package cni is berth's CNI front-end: the plugins berth-bridge,
// berth-macvlan, berth-ipam, berth-portmap and berth-dns, speaking CNI spec 1.1 (ADD, DEL, CHECK,
// STATUS, GC and VERSION) through github.com/containernetworking/cni's
// skel and result types, over berth's own core (the berthnet API,
// core, the nftables driver and the bbolt address store).
//
// One multi-call binary serves every plugin; it picks the plugin from the
// name it is run as (Main). berth-bridge runs berth-ipam in process when
// the network's IPAM is berth-ipam, so a berth chain costs one process per
// plugin and no iptables processes at all; any other IPAM plugin is
// delegated to by exec, as the spec describes.
//
// Errors leave as the spec's error object (with cniVersion) and its codes:
// 1 incompatible version, 2 unsupported field, 3 unknown container,
// 4 environment, 5 I/O, 6 decoding, 7 invalid configuration, 11 try again,
// 50 unavailable (STATUS); berth's own codes start at 100 (see the Err*
// constants).
package cni

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/berthnet"
	"github.com/berthnet/berth/internal/buildinfo"
	"github.com/berthnet/berth/internal/firewall"
	"github.com/berthnet/berth/internal/network"
	"github.com/berthnet/berth/internal/shortlived"
)

// Plugin names.
const (
	Bridge  = "berth-bridge"
	IPAM    = "berth-ipam"
	Portmap = "berth-portmap"
	Macvlan = "berth-macvlan"
	DNS     = "berth-dns"
	// Loopback is the reference name: containerd's CRI runs "loopback".
	Loopback = "loopback"
)

// Plugins lists the names the multi-call binary answers to.
var Plugins = []string{Bridge, IPAM, Portmap, Macvlan, DNS, Loopback}

// DefaultStateDir is where the plugins keep their state unless a
// configuration's "stateDir" (IPAM: "dataDir") says otherwise. It is under
// /run: a reboot ends every attachment, and must end their records too.
const DefaultStateDir = "/run/berth/cni"

// berth's own error codes (100+ are plugin specific).
const (
	// ErrPortInUse: a host port is already published to another target.
	ErrPortInUse uint = 100
	// ErrAddressInUse: a requested address belongs to another container, or
	// no address is left.
	ErrAddressInUse uint = 101
	// ErrCheckFailed: CHECK found the attachment broken.
	ErrCheckFailed uint = 102
)

// debugLog receives the core's debug log when BERTH_CNI_DEBUG names a
// file; nil discards.
var debugLog *slog.Logger

// supported are the spec versions the plugins speak.
var supported = version.PluginSupports("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")

// Main runs the plugin named name (or the one os.Args[0] names when name
// is empty) with the process's environment, stdin and stdout, and the
// optional parts in env, and returns the exit code.
func Main(name string, env Env) int {
	mainStart := time.Now()
	// A child started to delete a link DEL retired: it exits here.
	berthnet.RunReaper()
	shortlived.Tune()
	if name == "" {
		name = filepath.Base(os.Args[0])
	}
	funcs, ok := pluginFuncs(name, env)
	if !ok {
		fmt.Fprintf(os.Stderr, "berth-cni: unknown plugin %q (run as one of %s)\n", name, strings.Join(Plugins, ", "))
		return 2
	}
	// The configuration is read once here so that an error can carry its
	// cniVersion (skel's errors do not); skel then reads it from a memfd.
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		return printError("", types.NewError(types.ErrIOFailure, "read stdin: "+err.Error(), ""))
	}
	if e := needFull(name, in, env); e != nil {
		return printError(e.cniVersion, e.err)
	}
	if fd, err := unix.MemfdCreate("cni-config", 0); err == nil {
		f := os.NewFile(uintptr(fd), "stdin")
		if _, err := f.Write(in); err == nil {
			if _, err := f.Seek(0, io.SeekStart); err == nil {
				os.Stdin = f
			}
		}
	} else {
		r, w, perr := os.Pipe()
		if perr != nil {
			return printError("", types.NewError(types.ErrIOFailure, "pipe: "+perr.Error(), ""))
		}
		go func() { _, _ = w.Write(in); w.Close() }()
		os.Stdin = r
	}
	if p := os.Getenv("BERTH_CNI_DEBUG"); p != "" {
		// Step timings of the core, appended to a file: stderr of a
		// successful plugin is not kept by runtimes.
		if f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err == nil {
			defer f.Close()
			debugLog = slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug})).With("plugin", name, "command", os.Getenv("CNI_COMMAND"))
		}
	}
	about := fmt.Sprintf("CNI plugin %s (berth %s)", name, buildinfo.Version)
	if debugLog != nil {
		defer func() { debugLog.Debug("plugin done", "since_main", time.Since(mainStart)) }()
	}
	if e := skel.PluginMainFuncsWithError(funcs, supported, about); e != nil {
		var v struct {
			CNIVersion string `json:"cniVersion"`
		}
		_ = json.Unmarshal(in, &v)
		return printError(v.CNIVersion, e)
	}
	return 0
}

func pluginFuncs(name string, env Env) (skel.CNIFuncs, bool) {
	switch name {
	case Bridge:
		return bridgeVerbs.funcs(env), true
	case IPAM:
		return ipamVerbs.funcs(env), true
	case Macvlan:
		return macvlanVerbs.funcs(env), true
	case DNS:
		return dnsVerbs.funcs(env), true
	case Portmap:
		return portmapVerbs.funcs(env), true
	case Loopback, "berth-loopback":
		return loopbackVerbs.funcs(env), true
	}
	return skel.CNIFuncs{}, false
}

// printError writes the spec's error object to stdout.
func printError(cniVersion string, e *types.Error) int {
	out := struct {
		CNIVersion string `json:"cniVersion,omitempty"`
		Code       uint   `json:"code"`
		Msg        string `json:"msg"`
		Details    string `json:"details,omitempty"`
	}{cniVersion, e.Code, e.Msg, e.Details}
	b, _ := json.Marshal(out)
	os.Stdout.Write(append(b, '\n'))
	return 1
}

// cniError turns an error of berth's core into a CNI error with the code
// that fits; errors that already are CNI errors pass unchanged.
func cniError(err error) error {
	if err == nil {
		return nil
	}
	var e *types.Error
	if errors.As(err, &e) {
		return err
	}
	code := types.ErrInternal
	switch {
	case errors.Is(err, firewall.ErrPortInUse):
		code = ErrPortInUse
	case errors.Is(err, berthnet.ErrInUse):
		code = ErrAddressInUse
	case errors.Is(err, network.ErrInvalid):
		code = types.ErrInvalidNetworkConfig
	case errors.Is(err, os.ErrPermission):
		code = types.ErrIOFailure
	}
	return types.NewError(code, err.Error(), "")
}

// decode unmarshals a plugin configuration; bad JSON is code 6.
func decode(stdin []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(stdin))
	if err := dec.Decode(v); err != nil {
		return types.NewError(types.ErrDecodingFailure, "decode network configuration: "+err.Error(), "")
	}
	return nil
}

// invalid is a code-7 error naming the field.
func invalid(field, format string, args ...any) error {
	return types.NewError(types.ErrInvalidNetworkConfig, field+": "+fmt.Sprintf(format, args...), "")
}

// unsupported is a code-2 error naming the field and its value.
func unsupported(field string, value any) error {
	b, _ := json.Marshal(value)
	return types.NewError(types.ErrUnsupportedField, fmt.Sprintf("unsupported field %s=%s", field, b), "")
}

// validAttachments returns the GC keep-list: the spec's
// cni.dev/valid-attachments, or libcni's earlier spelling.
func validAttachments(stdin []byte) (map[string]bool, error) {
	var c struct {
		Valid  []types.GCAttachment `json:"cni.dev/valid-attachments"`
		Legacy []types.GCAttachment `json:"cni.dev/attachments"`
	}
	if err := decode(stdin, &c); err != nil {
		return nil, err
	}
	keep := map[string]bool{}
	for _, a := range append(c.Valid, c.Legacy...) {
		keep[a.ContainerID+"/"+a.IfName] = true
	}
	return keep, nil
}

// DHCPBinary is the plugin binary with the DHCP proxy's client (gRPC) and
// delegation to foreign IPAM plugins linked in, beside this one.
const DHCPBinary = "berth-cni-dhcp"

// reexecFull replaces this process with berth-cni-dhcp running the same
// plugin on the same environment and configuration. It returns only on
// failure.
func reexecFull(plugin string, stdin []byte) error {
	exe, err := os.Executable()
	if err != nil {
		return types.NewError(types.ErrInternal, "find own executable: "+err.Error(), "")
	}
	bin := filepath.Join(filepath.Dir(exe), DHCPBinary)
	if _, err := os.Stat(bin); err != nil {
		return types.NewError(types.ErrPluginNotAvailable, fmt.Sprintf("%s: DHCP networks and foreign IPAM plugins need %s beside this plugin: %v", plugin, DHCPBinary, err), "")
	}
	fd, err := unix.MemfdCreate("cni-config", 0)
	if err != nil {
		return types.NewError(types.ErrIOFailure, "memfd: "+err.Error(), "")
	}
	if _, err := unix.Write(fd, stdin); err != nil {
		return types.NewError(types.ErrIOFailure, "memfd: "+err.Error(), "")
	}
	if _, err := unix.Seek(fd, 0, 0); err != nil {
		return types.NewError(types.ErrIOFailure, "memfd: "+err.Error(), "")
	}
	if err := unix.Dup2(fd, 0); err != nil {
		return types.NewError(types.ErrIOFailure, "stdin: "+err.Error(), "")
	}
	err = unix.Exec(bin, []string{DHCPBinary, plugin}, os.Environ())
	return types.NewError(types.ErrInternal, fmt.Sprintf("exec %s: %v", bin, err), "")
}

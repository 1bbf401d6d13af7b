package cli

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"

	"github.com/berthnet/berth/internal/compat/slirp4netns"
	"github.com/berthnet/berth/internal/engine"
	"github.com/berthnet/berth/internal/network"
	"github.com/berthnet/berth/internal/rootless"
	"github.com/berthnet/berth/internal/runopts"
	"github.com/berthnet/berth/internal/usernet"
)

// slirp is berth's user-mode network program.
func (w *world) slirp() rootless.Slirp {
	exe := w.env.Executable
	if exe == "" {
		exe, _ = os.Executable()
	}
	return rootless.SlirpBeside(exe)
}

// rootlessNetNS is the user's rootless network namespace (bridge networks
// of a rootless engine live there).
func (w *world) rootlessNetNS() rootless.NetNS {
	return rootless.NetNS{Dir: filepath.Join(w.runRoot, "rootless-netns")}
}

// rootlessBridges reports whether bridge networks live in the rootless
// network namespace (berth runs inside its user namespace).
func (w *world) rootlessBridges() bool {
	return w.env.Rootless && rootless.Inside()
}

// forwardsOf expands published ports into single-port forwards to guest
// (zero: the stack's guest address) at the container port; toHost sends
// each to the same port as on the host instead (the rootless netns, where
// the firewall maps it on).
func forwardsOf(ports []network.PortMapping, guest netip.Addr, toHost bool) ([]slirp4netns.Hostfwd, error) {
	var out []slirp4netns.Hostfwd
	for _, pm := range ports {
		proto := network.NormalizeProtocol(pm.Protocol)
		if proto != "tcp" && proto != "udp" {
			return nil, fmt.Errorf("publishing %s port %d: the user-mode network forwards tcp and udp only", proto, pm.HostPort)
		}
		addr, err := pm.HostAddr()
		if err != nil {
			return nil, err
		}
		for i := 0; i < pm.Ports(); i++ {
			f := slirp4netns.Hostfwd{Proto: proto, HostAddr: addr, HostPort: pm.HostPort + uint16(i), GuestAddr: guest, GuestPort: pm.ContainerPort + uint16(i)}
			if toHost {
				f.GuestPort = f.HostPort
			}
			out = append(out, f)
		}
	}
	return out, nil
}

// bridgeForwards are the uplink forwards of a container on rootless bridge
// networks: TCP straight into the container's namespace (kernel sockets
// bound to the client's address, see usernet's kernel path), UDP to the
// same port on the uplink's address, where the firewall maps it on.
func bridgeForwards(ports []network.PortMapping, nsPath string, res map[string]network.StatusBlock, order []string) ([]slirp4netns.Hostfwd, error) {
	var ctrIP, gw netip.Addr
	for _, name := range order {
		for _, ifc := range res[name].Interfaces {
			for _, sn := range ifc.Subnets {
				if a := sn.IPNet.Addr(); a.Is4() && !ctrIP.IsValid() {
					ctrIP = a
					if sn.Gateway != nil {
						gw = *sn.Gateway
					}
				}
			}
		}
	}
	uplink := netip.MustParseAddr(rootless.UplinkGuest)
	all, err := forwardsOf(ports, uplink, true)
	if err != nil {
		return nil, err
	}
	direct, _ := forwardsOf(ports, ctrIP, false)
	for i := range all {
		if all[i].Proto == "tcp" && ctrIP.IsValid() {
			all[i] = direct[i]
			all[i].NetNS, all[i].Gateway = nsPath, gw
		}
	}
	return all, nil
}

// addForwards adds forwards through the API socket; on error the ones it
// added are removed again.
func addForwards(sock string, fs []slirp4netns.Hostfwd) ([]int, error) {
	var ids []int
	for _, f := range fs {
		id, err := slirp4netns.AddHostfwd(sock, f)
		if err != nil {
			removeForwards(sock, ids)
			host := "*"
			if f.HostAddr.IsValid() {
				host = f.HostAddr.String()
			}
			return nil, fmt.Errorf("publish %s:%d/%s: %w", host, f.HostPort, f.Proto, err)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

func removeForwards(sock string, ids []int) {
	for _, id := range ids {
		_ = slirp4netns.RemoveHostfwd(sock, id)
	}
}

// slirpFiles are the per-container files of a slirp4netns network.
func (w *world) slirpFiles(id string) (dir, sock, pidFile, logFile string) {
	dir = filepath.Join(w.runRoot, "slirp4netns")
	// Short names: a socket path must fit in 108 bytes.
	id = network.ShortID(id)
	return dir, filepath.Join(dir, id+".sock"), filepath.Join(dir, id+".pid"), filepath.Join(dir, id+".log")
}

// attachSlirp gives the container's namespace a user-mode network of its
// own (--network slirp4netns, the rootless default) and forwards its
// published ports to it, keeping the clients' addresses.
func (n *engineNet) attachSlirp(c *engine.Container, nsPath string) (map[string]network.StatusBlock, error) {
	w := n.w
	o, err := runopts.ParseSlirpOptions(c.Config.Net.Target)
	if err != nil {
		return nil, fmt.Errorf("--network slirp4netns: %w", err)
	}
	cfg := usernet.Config{CIDR: o.CIDR, MTU: o.MTU, IPv6: o.EnableIPv6}
	if cfg, err = cfg.WithDefaults(); err != nil {
		return nil, fmt.Errorf("--network slirp4netns: %w", err)
	}
	dir, sock, pidFile, logFile := w.slirpFiles(c.Config.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	args := []string{"--configure", "--mtu=" + strconv.Itoa(cfg.MTU), "--cidr=" + cfg.CIDR.String(), "--api-socket=" + sock}
	if !o.AllowHostLoopback {
		args = append(args, "--disable-host-loopback")
	}
	if o.EnableIPv6 {
		args = append(args, "--enable-ipv6")
	}
	if o.OutboundAddr != "" {
		args = append(args, "--outbound-addr="+o.OutboundAddr)
	}
	if o.OutboundAddr6 != "" {
		args = append(args, "--outbound-addr6="+o.OutboundAddr6)
	}
	fs, err := forwardsOf(c.Config.Ports, cfg.Guest(), false)
	if err != nil {
		return nil, err
	}
	pid, err := rootless.StartSlirp(w.slirp(), "", args, nsPath, logFile)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(pid)), 0o600); err != nil {
		rootless.Stop(pid, sock)
		return nil, err
	}
	if _, err := addForwards(sock, fs); err != nil {
		rootless.Stop(pid, sock)
		os.Remove(pidFile)
		return nil, err
	}
	return nil, nil
}

// detachSlirp stops the container's user-mode network.
func (n *engineNet) detachSlirp(c *engine.Container) error {
	_, sock, pidFile, logFile := n.w.slirpFiles(c.Config.ID)
	rootless.Stop(rootless.ReadPID(pidFile), sock)
	for _, p := range []string{sock, pidFile, logFile} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// readdForwards publishes the ports of every attached container again
// after the rootless netns's uplink was restarted (its forwards died with
// it).
func (w *world) readdForwards() {
	sock := w.rootlessNetNS().API()
	_ = w.ctrs.update(func(all []*container) ([]*container, error) {
		var changed []*container
		for _, c := range all {
			if len(c.Fwd) == 0 {
				continue
			}
			ids, err := addForwards(sock, c.Fwd)
			if err != nil {
				w.log.Warn("publish ports again after the rootless uplink restarted", "container", c.Name, "error", err)
				ids = nil
			}
			c.Forwards = ids
			changed = append(changed, c)
		}
		return changed, nil
	})
}

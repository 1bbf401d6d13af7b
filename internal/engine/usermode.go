package engine

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/berthnet/berth/internal/netns"
	"github.com/berthnet/berth/internal/network"
	"github.com/berthnet/berth/internal/rootless"
	"github.com/berthnet/berth/internal/runopts"
	"github.com/berthnet/berth/internal/usernet"
)

// User-mode networks: a rootless engine's bridge networks live in the
// rootless netns, whose uplink (berth's pasta, or its slirp4netns)
// forwards the host's published ports into it; --network slirp4netns and
// --network pasta (pasta.go) give a container a user-mode network of its
// own.

// forwardsOf expands published ports into single-port forwards to guest
// (zero: the stack's guest address) at the container port; toHost sends
// each to the same port as on the host instead (the rootless netns, where
// the firewall maps it on).
func forwardsOf(ports []network.PortMapping, guest netip.Addr, toHost bool) ([]usernet.Forward, error) {
	var out []usernet.Forward
	for _, pm := range ports {
		proto := network.NormalizeProtocol(pm.Protocol)
		if proto != "tcp" && proto != "udp" {
			return nil, fmt.Errorf("publishing %s port %d: the user-mode network forwards tcp and udp only", proto, pm.HostPort)
		}
		addr, err := pm.HostAddr()
		if err != nil {
			return nil, err
		}
		for _, p := range network.ExpandPorts(pm) {
			f := usernet.Forward{Proto: proto, HostAddr: addr, HostPort: p.HostPort, GuestAddr: guest, GuestPort: p.ContainerPort}
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
// same port on the uplink's own address in the rootless netns (a zero
// guest address: the stack's guest, slirp4netns's 10.0.2.100 or the
// address pasta copied from the host), where the firewall maps it on.
func bridgeForwards(ports []network.PortMapping, nsPath string, res map[string]network.StatusBlock, order []string) ([]usernet.Forward, error) {
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
	all, err := forwardsOf(ports, netip.Addr{}, true)
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

// publishOnUplink forwards a rootless container's published ports from
// the host through the rootless netns's uplink.
func (e *Engine) publishOnUplink(c *Container, nsPath string, res map[string]network.StatusBlock, atts []Attachment) ([]usernet.Forward, []int, error) {
	var order []string
	for _, a := range atts {
		order = append(order, a.Network.Name)
	}
	fwds, err := bridgeForwards(c.Config.Ports, nsPath, res, order)
	if err != nil {
		return nil, nil, err
	}
	ids, err := addForwards(e.cfg.Network.RootlessNetNS.API(), fwds)
	if err != nil {
		return nil, nil, err
	}
	return fwds, ids, nil
}

// addForwards adds forwards through the API socket; on error the ones it
// added are removed again.
func addForwards(sock string, fs []usernet.Forward) ([]int, error) {
	var ids []int
	for _, f := range fs {
		id, err := usernet.AddHostfwd(sock, f)
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
		_ = usernet.RemoveHostfwd(sock, id)
	}
}

// readdForwards publishes the ports of every attached container again
// after the rootless netns's uplink was restarted (its forwards died with
// it).
func (e *Engine) readdForwards() {
	all, err := e.list()
	if err != nil {
		e.log.Warn("publish ports again after the rootless uplink restarted", "error", err)
		return
	}
	sock := e.cfg.Network.RootlessNetNS.API()
	for _, c := range all {
		if len(c.State.Fwd) == 0 {
			continue
		}
		fwds := append([]usernet.Forward{}, c.State.Fwd...)
		for i := range fwds {
			if fwds[i].NetNS == "" {
				// To the uplink's own address, whichever program
				// (pasta or slirp4netns) serves it now.
				fwds[i].GuestAddr = netip.Addr{}
			}
		}
		ids, err := addForwards(sock, fwds)
		if err != nil {
			e.log.Warn("publish ports again after the rootless uplink restarted", "container", c.Config.Name, "error", err)
			ids = nil
		}
		_, _ = e.modify(c.Config.ID, func(r *Container) error { r.State.Forwards = ids; return nil })
	}
}

// slirpFiles are the per-container files of a slirp4netns network.
func (e *Engine) slirpFiles(id string) (dir, sock, pidFile, logFile string) {
	dir = filepath.Join(e.cfg.RunRoot, "slirp4netns")
	// Short names: a socket path must fit in 108 bytes.
	id = network.ShortID(id)
	return dir, filepath.Join(dir, id+".sock"), filepath.Join(dir, id+".pid"), filepath.Join(dir, id+".log")
}

// slirpArgs are the user-mode network program's arguments for o.
func slirpArgs(o runopts.SlirpOptions, cfg usernet.Config, sock string) []string {
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
	return args
}

// attachSlirp gives the container's namespace a user-mode network of its
// own (--network slirp4netns, the rootless default) and forwards its
// published ports to it, keeping the clients' addresses.
func (e *Engine) attachSlirp(c *Container, nsPath string) error {
	o, err := runopts.ParseSlirpOptions(c.Config.Net.Target)
	if err != nil {
		return fmt.Errorf("--network slirp4netns: %w", err)
	}
	cfg := usernet.Config{CIDR: o.CIDR, MTU: o.MTU, IPv6: o.EnableIPv6}
	if cfg, err = cfg.WithDefaults(); err != nil {
		return fmt.Errorf("--network slirp4netns: %w", err)
	}
	dir, sock, pidFile, logFile := e.slirpFiles(c.Config.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	fs, err := forwardsOf(c.Config.Ports, cfg.Guest(), false)
	if err != nil {
		return err
	}
	pid, err := rootless.StartSlirp(e.cfg.Network.UserMode.Slirp, "", slirpArgs(o, cfg, sock), nsPath, logFile)
	if err != nil {
		return err
	}
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(pid)), 0o600); err != nil {
		rootless.Stop(pid, sock)
		return err
	}
	if _, err := addForwards(sock, fs); err != nil {
		rootless.Stop(pid, sock)
		os.Remove(pidFile)
		return err
	}
	return nil
}

// detachSlirp stops the container's user-mode network.
func (e *Engine) detachSlirp(c *Container) error {
	_, sock, pidFile, logFile := e.slirpFiles(c.Config.ID)
	rootless.Stop(rootless.ReadPID(pidFile), sock)
	for _, p := range []string{sock, pidFile, logFile} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// ExecInRootlessNetNS replaces the process with argv (path resolved) in
// the rootless netns, started if needed (`berth unshare
// --rootless-netns`); it returns only on error.
func (e *Engine) ExecInRootlessNetNS(path string, argv, environ []string) error {
	nc := e.cfg.Network
	if nc == nil {
		return ErrNoNetwork
	}
	if _, err := nc.RootlessNetNS.Ensure(nc.UserMode, ""); err != nil {
		return err
	}
	ns, err := netns.Open(nc.RootlessNetNS.Path())
	if err != nil {
		return err
	}
	// exec from a thread inside the namespace: the new program keeps
	// that thread's namespaces.
	return ns.DoDiscard(func() error { return syscall.Exec(path, argv, environ) })
}

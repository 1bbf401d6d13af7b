package engine

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/network"
)

// ParseSignal parses a signal name (KILL, SIGKILL, sigterm) or number.
func ParseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > 64 {
			return 0, fmt.Errorf("invalid signal: %s", s)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("invalid signal: %s", s)
}

func sortStrings(s []string) { sort.Strings(s) }

var (
	adjectives = []string{"admiring", "agitated", "amazing", "awesome", "blissful", "bold", "brave", "busy", "calm", "charming",
		"clever", "cool", "crazy", "dazzling", "determined", "eager", "ecstatic", "elastic", "elegant", "epic",
		"exciting", "fervent", "festive", "focused", "friendly", "gifted", "gracious", "happy", "hopeful", "jolly",
		"keen", "kind", "lucid", "magical", "modest", "nifty", "nostalgic", "optimistic", "peaceful", "quirky",
		"relaxed", "serene", "sharp", "stoic", "sweet", "tender", "trusting", "upbeat", "vibrant", "wizardly", "zealous"}
	nouns = []string{"albattani", "archimedes", "babbage", "bardeen", "bohr", "borg", "cannon", "cerf", "curie", "darwin",
		"dijkstra", "einstein", "euclid", "euler", "fermat", "feynman", "franklin", "gauss", "goldberg", "hamilton",
		"hawking", "hodgkin", "hopper", "hypatia", "johnson", "kepler", "knuth", "lamport", "liskov", "lovelace",
		"maxwell", "meitner", "mirzakhani", "newton", "noether", "pascal", "perlman", "ritchie", "shannon", "sinoussi",
		"tesla", "thompson", "torvalds", "turing", "volta", "wilson", "wozniak", "yalow", "yonath"}
)

// freeName returns a random name that used reports free: a few random tries,
// then one with a number.
func freeName(used func(string) bool) string {
	for i := 0; i < 20; i++ {
		if n := randomName(); !used(n) {
			return n
		}
	}
	for i := 2; ; i++ {
		if n := fmt.Sprintf("%s_%d", randomName(), i); !used(n) {
			return n
		}
	}
}

func randomName() string {
	pick := func(s []string) string {
		n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(s))))
		return s[n.Int64()]
	}
	return pick(adjectives) + "_" + pick(nouns)
}

// listenAddr is the address conmon binds for a published port.
func listenAddr(pm network.PortMapping, port uint16) (string, string) {
	proto := network.NormalizeProtocol(pm.Protocol)
	fam := "4"
	host := pm.HostIP
	if strings.Contains(host, ":") {
		fam = "6"
		host = "[" + host + "]"
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return proto + fam, host + ":" + strconv.Itoa(int(port))
}

// bindPorts binds every published host port (TCP listeners, UDP sockets)
// and returns their files; the monitor keeps them open so no other process
// can take the ports. SCTP ports are not held.
func bindPorts(ports []network.PortMapping) ([]*os.File, error) {
	var out []*os.File
	for _, pm := range network.ExpandPorts(ports...) {
		f, err := bindOne(pm, pm.HostPort)
		if err != nil {
			closeAll(out)
			return nil, err
		}
		if f != nil {
			out = append(out, f)
		}
	}
	return out, nil
}

func bindOne(pm network.PortMapping, port uint16) (*os.File, error) {
	netw, addr := listenAddr(pm, port)
	switch {
	case strings.HasPrefix(netw, "tcp"):
		l, err := net.Listen(netw, addr)
		if err != nil {
			return nil, fmt.Errorf("cannot listen on the TCP port: %w", err)
		}
		defer l.Close()
		return l.(*net.TCPListener).File()
	case strings.HasPrefix(netw, "udp"):
		c, err := net.ListenPacket(netw, addr)
		if err != nil {
			return nil, fmt.Errorf("cannot listen on the UDP port: %w", err)
		}
		defer c.Close()
		return c.(*net.UDPConn).File()
	}
	return nil, nil
}

func closeAll(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

// choosePorts gives every mapping without a host port a free one (a free
// consecutive range for ranges), as Podman does at create.
func choosePorts(ports []network.PortMapping) ([]network.PortMapping, error) {
	out := append([]network.PortMapping{}, ports...)
	for i, pm := range out {
		if pm.HostPort != 0 {
			continue
		}
		if pm.Range <= 1 {
			netw, addr := listenAddr(pm, 0)
			var port int
			switch {
			case strings.HasPrefix(netw, "tcp"):
				l, err := net.Listen(netw, addr)
				if err != nil {
					return nil, fmt.Errorf("choose a host port for %d/%s: %w", pm.ContainerPort, pm.Protocol, err)
				}
				port = l.Addr().(*net.TCPAddr).Port
				l.Close()
			default:
				c, err := net.ListenPacket("udp"+netw[len(netw)-1:], addr)
				if err != nil {
					return nil, fmt.Errorf("choose a host port for %d/%s: %w", pm.ContainerPort, pm.Protocol, err)
				}
				port = c.LocalAddr().(*net.UDPAddr).Port
				c.Close()
			}
			out[i].HostPort = uint16(port)
			continue
		}
		found := false
		for try := 0; try < 50 && !found; try++ {
			n, _ := rand.Int(rand.Reader, big.NewInt(int64(60999-32768-int(pm.Range))))
			base := uint16(32768 + n.Int64())
			cand := pm
			cand.HostPort = base
			if fs, err := bindPorts([]network.PortMapping{cand}); err == nil {
				closeAll(fs)
				out[i].HostPort = base
				found = true
			}
		}
		if !found {
			return nil, errors.New("could not find a free range of host ports")
		}
	}
	return out, nil
}

// waitProcess waits at most d for process pid to end, or for ctx's end,
// and reports whether the process has ended. Without a process to
// watch (no pid, no pidfd) it sleeps up to 20 ms and reports false.
func waitProcess(ctx context.Context, pid int, d time.Duration) bool {
	if pid <= 0 {
		sleepCtx(ctx, min(d, 20*time.Millisecond))
		return false
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return true
	}
	if err != nil {
		sleepCtx(ctx, min(d, 20*time.Millisecond))
		return false
	}
	defer unix.Close(fd)
	deadline := time.Now().Add(d)
	for {
		// Polled in slices so that ctx's end is seen soon.
		left := min(time.Until(deadline), 50*time.Millisecond)
		if left <= 0 || ctx.Err() != nil {
			return false
		}
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, int(left.Milliseconds())+1)
		if err == nil && n > 0 {
			return true
		}
		if err != nil && !errors.Is(err, unix.EINTR) {
			sleepCtx(ctx, min(left, 20*time.Millisecond))
			return false
		}
	}
}

// sleepCtx sleeps d or until ctx's end.
func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

package reliability

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthnet/berth/internal/nettest"
)

// navNet is one bridge network as Podman describes it to netavark.
type navNet struct {
	name, bridge, prefix string // prefix: the /16's first two octets ("198.19")
	id                   string
	dns                  bool
}

func newNavNet(name, bridge, prefix string, dns bool) navNet {
	sum := sha256.Sum256([]byte(name))
	return navNet{name: name, bridge: bridge, prefix: prefix, id: hex.EncodeToString(sum[:]), dns: dns}
}

// navCtr is one container: its namespace, its address and its published
// host port (0: none).
type navCtr struct {
	id, name string
	ns       *nettest.NS
	ip       string
	hostPort int
}

func (c navCtr) short() string { return c.id[:12] }

// newNavCtr makes container number i: its own namespace, the i-th address
// of the network, and host port (0: none).
func (r *rig) newNavCtr(n navNet, i, hostPort int) navCtr {
	return navCtrIn(r.t, n, i, hostPort, r.container(nettest.RandName("relc")))
}

func navCtrIn(t *testing.T, n navNet, i, hostPort int, ns *nettest.NS) navCtr {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s-%d-%s", n.name, i, t.Name())))
	return navCtr{id: hex.EncodeToString(sum[:]), name: fmt.Sprintf("c%d", i),
		ns: ns, ip: fmt.Sprintf("%s.%d.%d", n.prefix, 1+i/250, 2+i%250), hostPort: hostPort}
}

// input is the JSON Podman 4.3 writes to netavark's standard input for
// setup and teardown.
func (n navNet) input(c navCtr) string {
	ports := ""
	if c.hostPort != 0 {
		ports = fmt.Sprintf(`"port_mappings":[{"host_ip":"","container_port":80,"host_port":%d,"range":1,"protocol":"tcp"}],`, c.hostPort)
	}
	return fmt.Sprintf(`{"container_id":%q,"container_name":%q,%s
 "networks":{%q:{"static_ips":[%q],"aliases":[%q],"interface_name":"eth0"}},
 "network_info":{%q:{"dns_enabled":%t,"driver":"bridge","id":%q,"internal":false,"ipv6_enabled":false,
   "name":%q,"network_interface":%q,"created":"2026-11-27T13:45:53.989985833Z",
   "subnets":[{"gateway":"%s.0.1","subnet":"%s.0.0/16"}],"ipam_options":{"driver":"host-local"}}}}`,
		c.id, c.name, ports, n.name, c.ip, c.short(), n.name, n.dns, n.id, n.name, n.bridge, n.prefix, n.prefix)
}

// navWorld is netavark as Podman runs it: one --config directory.
type navWorld struct {
	*rig
	cfg string
}

func (r *rig) netavark() *navWorld {
	w := &navWorld{rig: r, cfg: filepath.Join(r.dir, "netavark")}
	r.t.Cleanup(func() {
		// The DNS server netavark started, by the PID it recorded.
		killPid(pidFile(filepath.Join(w.cfg, "aardvark-dns", "aardvark.pid")))
	})
	return w
}

func (w *navWorld) args(verb string, c navCtr) []string {
	return []string{"--config", w.cfg, "--rootless=false", "--aardvark-binary=" + w.bins.aardvark, verb, c.ns.Path()}
}

// startVerb starts `netavark setup|teardown` for c.
func (w *navWorld) startVerb(verb string, n navNet, c navCtr) (*proc, error) {
	return w.start(n.input(c), nil, w.bins.netavark, w.args(verb, c)...)
}

// call runs `netavark setup|teardown` for c and waits for it.
func (w *navWorld) call(verb string, n navNet, c navCtr) error {
	p, err := w.startVerb(verb, n, c)
	if err != nil {
		return err
	}
	return p.wait(60 * time.Second)
}

// dnsEntries returns the container IDs in the DNS server's file for n.
func (w *navWorld) dnsEntries(n navNet) []string {
	f, err := os.Open(filepath.Join(w.cfg, "aardvark-dns", n.name))
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for first := true; s.Scan(); first = false {
		if fs := strings.Fields(s.Text()); !first && len(fs) > 0 {
			out = append(out, fs[0])
		}
	}
	return out
}

// dnsPid is the DNS server netavark started (0: none runs).
func (w *navWorld) dnsPid() int {
	pid := pidFile(filepath.Join(w.cfg, "aardvark-dns", "aardvark.pid"))
	if !alive(pid) {
		return 0
	}
	return pid
}

// residue lists what berth keeps for containers other than the live ones:
// host veths beyond one per live container, retired links, bridges when
// none is live, map elements, state records and DNS entries of others,
// and a DNS server with nothing to serve.
func (w *navWorld) residue(n navNet, live ...navCtr) []string {
	w.t.Helper()
	ids, shorts := map[string]bool{}, map[string]bool{}
	for _, c := range live {
		ids[c.id], shorts[c.short()] = true, true
	}
	var out []string
	ls := w.settledLinks(len(live))
	if v := len(ls["veth"]); v > len(live) {
		out = append(out, fmt.Sprintf("%d host veths for %d containers (%s)", v, len(live), strings.Join(ls["veth"], " ")))
	}
	for _, k := range []string{"retired", "other"} {
		for _, l := range ls[k] {
			out = append(out, k+" link "+l)
		}
	}
	if len(live) == 0 && len(ls["bridge"]) > 0 {
		out = append(out, "bridges "+strings.Join(ls["bridge"], ","))
	}
	st := w.nft()
	for _, e := range st.elements {
		if !shorts[e] {
			out = append(out, "nft element "+e)
		}
	}
	if len(live) == 0 && st.tables > 0 {
		out = append(out, fmt.Sprintf("nft: %d tables, %d rules", st.tables, st.rules))
	}
	for _, id := range stateIDs(w.t, filepath.Join(w.cfg, "berth", "state.db")) {
		if !ids[id] {
			out = append(out, "state record "+shortOf(id))
		}
	}
	for _, id := range w.dnsEntries(n) {
		if !ids[id] {
			out = append(out, "dns entry "+shortOf(id))
		}
	}
	if len(live) == 0 && n.dns {
		for deadline := time.Now().Add(3 * time.Second); w.dnsPid() != 0 && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
		if pid := w.dnsPid(); pid != 0 {
			out = append(out, fmt.Sprintf("dns server %d", pid))
		}
	}
	return out
}

func shortOf(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// setupReachable checks c's published port from the outside client.
func (w *navWorld) reachable(c navCtr) error {
	var err error
	for i := 0; i < 10; i++ {
		var got string
		got, err = w.fetch(c.hostPort)
		if err == nil && got == c.name {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("port %d answered %q, want %q", c.hostPort, got, c.name)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return err
}

package reliability

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/berthnet/berth/internal/ipam"
	"github.com/berthnet/berth/internal/nettest"
)

// cniWorld runs berth-bridge (with berth-ipam) the way a runtime does:
// CNI_* in the environment, the network configuration on stdin with the
// port mappings libcni puts into runtimeConfig.
type cniWorld struct {
	*rig
	state string
}

func (r *rig) cni() *cniWorld {
	return &cniWorld{rig: r, state: filepath.Join(r.dir, "cni")}
}

// conf is berth-bridge's configuration for one ADD or DEL, publishing
// hostPort to the container's port 80.
func (w *cniWorld) conf(hostPort int) string {
	return fmt.Sprintf(`{"cniVersion":"1.1.0","name":"relcni","type":"berth-bridge","bridge":"brelcni0","stateDir":%q,
 "isGateway":true,"ipMasq":true,"capabilities":{"portMappings":true},
 "ipam":{"type":"berth-ipam","dataDir":%q,"ranges":[[{"subnet":"198.19.0.0/24"}]],"routes":[{"dst":"0.0.0.0/0"}]},
 "runtimeConfig":{"portMappings":[{"hostPort":%d,"containerPort":80,"protocol":"tcp"}]}}`, w.state, w.state, hostPort)
}

func (w *cniWorld) startVerb(verb, id string, ns *nettest.NS, hostPort int) (*proc, error) {
	env := []string{"CNI_COMMAND=" + verb, "CNI_CONTAINERID=" + id, "CNI_NETNS=" + ns.Path(), "CNI_IFNAME=eth0", "CNI_PATH=" + w.bins.cni}
	return w.start(w.conf(hostPort), env, filepath.Join(w.bins.cni, "berth-bridge"))
}

func (w *cniWorld) call(verb, id string, ns *nettest.NS, hostPort int) error {
	p, err := w.startVerb(verb, id, ns, hostPort)
	if err != nil {
		return err
	}
	if err := p.wait(60 * time.Second); err != nil {
		return fmt.Errorf("%s %s: %w", verb, shortOf(id), err)
	}
	return nil
}

func (w *cniWorld) leases() []ipam.Lease {
	p := filepath.Join(w.state, "ipam.db")
	if _, err := os.Stat(p); err != nil {
		return nil
	}
	alloc, err := ipam.New(p)
	if err != nil {
		w.t.Fatal(err)
	}
	ls, err := alloc.Dump()
	if err != nil {
		w.t.Fatalf("leases: %v", err)
	}
	return ls
}

// audit checks the CNI invariants with the containers (id -> namespace)
// that are added: leases only for them, one address each and configured
// in their namespace, no veth, map element or record of any other.
func (w *cniWorld) audit(live map[string]*nettest.NS) audit {
	var a audit
	shorts := map[string]bool{}
	for id := range live {
		shorts[shortOf(id)] = true
	}
	byIP := map[string][]string{}
	perCtr := map[string][]string{}
	for _, l := range w.leases() {
		l.ContainerID, _, _ = strings.Cut(l.ContainerID, "/") // the owner is ID/IFNAME
		byIP[l.IP.String()] = append(byIP[l.IP.String()], shortOf(l.ContainerID))
		perCtr[l.ContainerID] = append(perCtr[l.ContainerID], l.IP.String())
		if live[l.ContainerID] == nil {
			a.leaks = append(a.leaks, fmt.Sprintf("lease %s of %s", l.IP, shortOf(l.ContainerID)))
		}
	}
	for ip, o := range byIP {
		if len(o) > 1 {
			a.dups = append(a.dups, fmt.Sprintf("%s leased to %v", ip, o))
		}
	}
	for id, ns := range live {
		as, _ := addrsIn(ns.Path())
		if len(perCtr[id]) != 1 || len(as) != 1 || as[0].String() != perCtr[id][0] {
			a.half = append(a.half, fmt.Sprintf("%s: leases %v, addresses %v", shortOf(id), perCtr[id], as))
		}
	}
	ls := w.settledLinks(len(live))
	if v := len(ls["veth"]); v > len(live) {
		a.orphans = append(a.orphans, fmt.Sprintf("%d host veths for %d containers (%s)", v, len(live), strings.Join(ls["veth"], " ")))
	}
	for _, k := range []string{"retired", "other"} {
		for _, l := range ls[k] {
			a.orphans = append(a.orphans, k+" link "+l)
		}
	}
	for _, el := range w.nft().elements {
		if !shorts[el] && !matchesAny(el, live) {
			a.orphans = append(a.orphans, "nft element "+el)
		}
	}
	for _, id := range stateIDs(w.t, filepath.Join(w.state, "berth", "state.db")) {
		if id, _, _ = strings.Cut(id, "/"); live[id] == nil && !matchesAny(shortOf(id), live) {
			a.leaks = append(a.leaks, "state record "+shortOf(id))
		}
	}
	return a
}

// matchesAny reports whether an element's comment names a live container
// by any prefix of its ID.
func matchesAny(comment string, live map[string]*nettest.NS) bool {
	for id := range live {
		if comment != "" && strings.HasPrefix(id, comment) {
			return true
		}
	}
	return false
}

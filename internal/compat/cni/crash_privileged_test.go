package cni_test

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berthnet/berth/internal/nettest"
)

// killedAdd runs berth-bridge's ADD for c in the host namespace, as a
// runtime does, and kills it with SIGKILL after d; it reports whether the
// plugin was still running.
func (r *rig) killedAdd(t *testing.T, c *container, d time.Duration) bool {
	t.Helper()
	conf := `{"cniVersion": "1.1.0", "name": "bcnet", "type": "berth-bridge", "bridge": "bc-br0", "stateDir": "STATE", "isGateway": true, "ipMasq": true,
	  "runtimeConfig": {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]},
	  "ipam": {"type": "berth-ipam", "dataDir": "STATE", "ranges": [[{"subnet": "198.18.10.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}}`
	dir := plugins(t)
	cmd := exec.Command("nsenter", "--net="+r.host.Path(), "--", filepath.Join(dir, "berth-bridge")) // nsenter execs the plugin
	cmd.Env = append(os.Environ(), "CNI_COMMAND=ADD", "CNI_CONTAINERID="+c.id, "CNI_NETNS="+c.path, "CNI_IFNAME=eth0", "CNI_PATH="+dir)
	cmd.Stdin = strings.NewReader(strings.ReplaceAll(conf, "STATE", r.state))
	killed, err := nettest.KillAfter(cmd, d)
	if err != nil {
		t.Fatal(err)
	}
	return killed
}

// residue lists what an attachment left: links in the host (but the
// bridge and the rig's uplink) and the container, addresses, the
// published port.
func (r *rig) residue(c *container) []string {
	var out []string
	for _, l := range nettest.Links(r.t, r.host) {
		if l != "lo" && l != "bc-br0" && l != "bc-ho" && !strings.HasPrefix(l, "brtgone") {
			out = append(out, "host link "+l)
		}
	}
	for _, l := range nettest.Links(r.t, c.nettestNS()) {
		if l != "lo" && !strings.HasPrefix(l, "brtgone") {
			out = append(out, "container link "+l)
		}
	}
	for _, l := range r.leases() {
		out = append(out, "address "+l.IP.String())
	}
	if rules, _ := nettest.Run(r.host, 5*time.Second, "nft", "list", "ruleset"); strings.Contains(rules, "8080") {
		out = append(out, "port 8080 in the firewall")
	}
	return out
}

// TestPrivilegedKilledAddThenDel: the runtime's DEL after an ADD killed at
// a random instant leaves no link, address or published port, and ADD
// works again. BERTH_CRASH_TRIALS sets the trials (default 30).
func TestPrivilegedKilledAddThenDel(t *testing.T) {
	r := newRig(t)
	list := r.conflist(berthBridgeOnly)
	trials := 30
	if n, err := strconv.Atoi(os.Getenv("BERTH_CRASH_TRIALS")); err == nil && n > 0 {
		trials = n
	}
	c := r.container("bc-crash")
	rt := r.rt(c, port8080)
	start := time.Now()
	if _, err := r.add(list, rt); err != nil {
		t.Fatal(err)
	}
	window := time.Since(start) * 2
	if err := r.del(list, rt); err != nil {
		t.Fatal(err)
	}
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 17))
	killed, dirty := 0, 0
	for i := 0; i < trials; i++ {
		if r.killedAdd(t, c, time.Duration(rnd.Int64N(int64(window)))) {
			killed++
		}
		if err := r.del(list, rt); err != nil {
			t.Errorf("trial %d: DEL after a killed ADD: %v", i, err)
		}
		if left := r.residue(c); len(left) > 0 {
			dirty++
			t.Logf("trial %d: DEL after a killed ADD left %v", i, left)
		}
		if _, err := r.add(list, rt); err != nil {
			t.Fatalf("trial %d: ADD after the DEL: %v", i, err)
		}
		if err := r.del(list, rt); err != nil {
			t.Fatalf("trial %d: DEL: %v", i, err)
		}
	}
	t.Logf("kill -9 during CNI ADD, then DEL: %d trials (%d killed mid-command): %d left residue", trials, killed, dirty)
	if dirty > 0 {
		t.Errorf("%d of %d DELs after a killed ADD left residue", dirty, trials)
	}
}

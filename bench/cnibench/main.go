// Command cnibench times CNI ADD and DEL of plugin chains side by side,
// interleaved, through libcni as a runtime (containerd, CRI-O) calls them:
// berth's chain (berth-bridge with berth-ipam in process, publishing the
// ports itself through the portMappings capability), berth-bridge followed
// by berth-portmap (label "berth-portmap"; how berth's plugins chain with others), and the
// reference chain (bridge with host-local, portmap, firewall). berth's DEL
// leaves the kernel's deletion of the veth to a background child (package
// reaper); the time until the link is really gone is reported too, and the
// next call waits for it, so no background work overlaps a measurement. It runs in
// the namespace it is started in, which must be a throwaway one
// (bench/cni-compare.sh makes it); container namespaces are created under
// -state and removed at the end.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/containernetworking/cni/libcni"

	"github.com/berthnet/berth/internal/netns"
)

type chain struct {
	label string
	list  *libcni.NetworkConfigList
	ctr   string
	port  int
	add   []float64
	del   []float64
	gone  []float64
	cni   *libcni.CNIConfig
	rt    *libcni.RuntimeConf
}

func main() {
	berthDir := flag.String("berth", "bin", "directory with berth's CNI plugins")
	refDir := flag.String("ref", "/usr/lib/cni", "directory with the reference plugins")
	n := flag.Int("n", 20, "timed ADD+DEL cycles per chain")
	state := flag.String("state", "", "state directory (required)")
	version := flag.String("cni-version", "1.0.0", "cniVersion of both conflists (Debian's plugins 1.1.1 speak up to 1.0.0)")
	only := flag.String("only", "", "run only the chain with this label (berth, reference, berth-portmap); for counting processes")
	flag.Parse()
	onlyChain = *only
	if *state == "" {
		fmt.Fprintln(os.Stderr, "cnibench: -state is required")
		os.Exit(2)
	}
	if err := run(*berthDir, *refDir, *state, *version, *n); err != nil {
		fmt.Fprintln(os.Stderr, "cnibench:", err)
		os.Exit(1)
	}
}

func run(berthDir, refDir, state, version string, n int) error {
	berthDir, _ = filepath.Abs(berthDir)
	berth := fmt.Sprintf(`{"cniVersion":%q,"name":"bcb-berth","plugins":[
	  {"type":"berth-bridge","bridge":"bcb-br0","stateDir":"%s/berth","isGateway":true,"ipMasq":true,
	   "ipam":{"type":"berth-ipam","dataDir":"%s/berth","ranges":[[{"subnet":"198.18.60.0/24"}]],"routes":[{"dst":"0.0.0.0/0"}]}},
	  {"type":"berth-portmap","stateDir":"%s/berth","capabilities":{"portMappings":true},"snat":true}]}`, version, state, state, state)
	berthOne := fmt.Sprintf(`{"cniVersion":%q,"name":"bcb-berth1","plugins":[
	  {"type":"berth-bridge","bridge":"bcb-br2","stateDir":"%s/berth1","isGateway":true,"ipMasq":true,"capabilities":{"portMappings":true},
	   "ipam":{"type":"berth-ipam","dataDir":"%s/berth1","ranges":[[{"subnet":"198.18.62.0/24"}]],"routes":[{"dst":"0.0.0.0/0"}]}}]}`, version, state, state)
	ref := fmt.Sprintf(`{"cniVersion":%q,"name":"bcb-ref","plugins":[
	  {"type":"bridge","bridge":"bcb-br1","isGateway":true,"ipMasq":true,"hairpinMode":true,
	   "ipam":{"type":"host-local","dataDir":"%s/ref","ranges":[[{"subnet":"198.18.61.0/24"}]],"routes":[{"dst":"0.0.0.0/0"}]}},
	  {"type":"portmap","capabilities":{"portMappings":true},"snat":true},
	  {"type":"firewall","backend":"iptables"}]}`, version, state)
	var chains []*chain
	for i, c := range []struct{ label, conf, dir string }{{"berth", berthOne, berthDir}, {"reference", ref, refDir}, {"berth-portmap", berth, berthDir}} {
		l, err := libcni.ConfListFromBytes([]byte(c.conf))
		if err != nil {
			return err
		}
		p := filepath.Join(state, "bcb-ctr-"+c.label)
		ns, err := netns.NewPinned(p)
		if err != nil {
			return err
		}
		ns.Close()
		defer netns.Unpin(p)
		if onlyChain != "" && c.label != onlyChain {
			continue
		}
		ch := &chain{label: c.label, list: l, ctr: p, port: 18080 + i,
			cni: libcni.NewCNIConfigWithCacheDir([]string{c.dir}, filepath.Join(state, "cache-"+c.label), nil)}
		ch.rt = &libcni.RuntimeConf{ContainerID: "bcb-" + c.label, NetNS: p, IfName: "eth0",
			CapabilityArgs: map[string]any{"portMappings": []map[string]any{{"hostPort": ch.port, "containerPort": 80, "protocol": "tcp"}}}}
		chains = append(chains, ch)
	}
	ctx := context.Background()
	// Warm-up (creates bridges, chains, tables) and a functional check:
	// the published port answers through 127.0.0.1.
	for _, c := range chains {
		if _, err := c.cni.AddNetworkList(ctx, c.list, c.rt); err != nil {
			return fmt.Errorf("%s: warm-up ADD: %w", c.label, err)
		}
		if err := portCheck(c); err != nil {
			return fmt.Errorf("%s: functional check: %w", c.label, err)
		}
		if err := c.cni.DelNetworkList(ctx, c.list, c.rt); err != nil {
			return fmt.Errorf("%s: warm-up DEL: %w", c.label, err)
		}
		fmt.Fprintf(os.Stderr, "%s: published port works\n", c.label)
	}
	for i := 0; i < n; i++ {
		order := append(chains[i%len(chains):len(chains):len(chains)], chains[:i%len(chains)]...)
		for _, c := range order {
			t0 := time.Now()
			if _, err := c.cni.AddNetworkList(ctx, c.list, c.rt); err != nil {
				return fmt.Errorf("%s: ADD %d: %w", c.label, i, err)
			}
			t1 := time.Now()
			if err := c.cni.DelNetworkList(ctx, c.list, c.rt); err != nil {
				return fmt.Errorf("%s: DEL %d: %w", c.label, i, err)
			}
			t2 := time.Now()
			c.add = append(c.add, ms(t1.Sub(t0)))
			c.del = append(c.del, ms(t2.Sub(t1)))
			if strings.HasPrefix(c.label, "berth") {
				if err := waitRetired(); err != nil {
					return fmt.Errorf("%s: DEL %d: %w", c.label, i, err)
				}
				c.gone = append(c.gone, ms(time.Since(t1)))
			}
		}
	}
	out := map[string]any{"n": n, "cniVersion": version}
	for _, c := range chains {
		o := map[string]any{"add_ms": summary(c.add), "del_ms": summary(c.del)}
		if len(c.gone) > 0 {
			o["del_until_link_gone_ms"] = summary(c.gone)
		}
		out[c.label] = o
	}
	if len(chains) < 2 {
		return nil // a counting run (-only): no table
	}
	b, a := chains[0], chains[1]
	out["ratio_add"] = round(median(b.add) / median(a.add))
	out["ratio_del"] = round(median(b.del) / median(a.del))
	fmt.Printf("| chain | ADD median ms | ADD min | ADD p90 | DEL median ms | DEL min | DEL p90 | DEL until the veth is gone, median ms |\n|---|---|---|---|---|---|---|---|\n")
	for _, c := range chains {
		g := "= DEL"
		if len(c.gone) > 0 {
			g = fmt.Sprintf("%.1f", median(c.gone))
		}
		fmt.Printf("| %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %s |\n", c.label, median(c.add), minOf(c.add), pct(c.add, 0.9), median(c.del), minOf(c.del), pct(c.del, 0.9), g)
	}
	fmt.Printf("\nberth/reference: ADD %.3f, DEL %.3f (n=%d each, interleaved)\n", out["ratio_add"], out["ratio_del"], n)
	if len(chains) > 2 {
		p := chains[2]
		fmt.Printf("%s/reference: ADD %.3f, DEL %.3f\n", p.label, round(median(p.add)/median(a.add)), round(median(p.del)/median(a.del)))
	}
	j, _ := json.Marshal(out)
	fmt.Fprintln(os.Stderr, string(j))
	return nil
}

// waitRetired waits until no retired link ("brtgone…", package reaper)
// is left in this namespace.
func waitRetired() error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		ifs, err := net.Interfaces()
		if err != nil {
			return err
		}
		left := ""
		for _, i := range ifs {
			if strings.HasPrefix(i.Name, "brtgone") {
				left = i.Name
			}
		}
		if left == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("retired link %s still there after 5 s", left)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// portCheck serves on port 80 in the container and connects to the
// published port through 127.0.0.1.
func portCheck(c *chain) error {
	ns, err := netns.Open(c.ctr)
	if err != nil {
		return err
	}
	defer ns.Close()
	var l net.Listener
	if err := ns.Do(func() (err error) { l, err = net.Listen("tcp", ":80"); return err }); err != nil {
		return err
	}
	defer l.Close()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			conn.Write([]byte("ok"))
			conn.Close()
		}
	}()
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", c.port), 3*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 2)
	if _, err := conn.Read(buf); err != nil || string(buf) != "ok" {
		return fmt.Errorf("read %q: %v", buf, err)
	}
	return nil
}

// onlyChain restricts a run to one chain (-only).
var onlyChain string

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func round(x float64) float64 { return float64(int(x*1000+0.5)) / 1000 }

func sorted(v []float64) []float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s
}

func pct(v []float64, q float64) float64 {
	s := sorted(v)
	if len(s) == 0 {
		return 0
	}
	pos := q * float64(len(s)-1)
	lo := int(pos)
	if lo+1 >= len(s) {
		return s[lo]
	}
	return s[lo] + (s[lo+1]-s[lo])*(pos-float64(lo))
}

func median(v []float64) float64 { return pct(v, 0.5) }

func minOf(v []float64) float64 { return pct(v, 0) }

func summary(v []float64) map[string]any {
	raw := make([]string, len(v))
	for i, x := range v {
		raw[i] = fmt.Sprintf("%.1f", x)
	}
	return map[string]any{"median": round(median(v)), "min": round(minOf(v)), "p90": round(pct(v, 0.9)), "raw": strings.Join(raw, " ")}
}

package engine

import (
	"errors"
	"strings"
	"testing"

	"github.com/berthnet/berth/internal/network"
)

func TestParseProcStat(t *testing.T) {
	line := "4242 (my (odd) cmd) S 4000 4242 4242 34818 4242 4194560 100 0 0 0 150 50 0 0 20 5 1 0 12345 8192000 200 18446744073709551615"
	st, err := parseProcStat(line)
	if err != nil {
		t.Fatal(err)
	}
	if st.comm != "my (odd) cmd" || st.state != "S" || st.ppid != 4000 || st.ttyNr != 34818 || st.utime != 150 || st.stime != 50 || st.nice != 5 || st.starts != 12345 || st.vsize != 8192000 {
		t.Errorf("parsed %+v", st)
	}
	for _, bad := range []string{"", "1 (x", "1 (x) S 1 2", "1 (x) S a 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1"} {
		if _, err := parseProcStat(bad); err == nil {
			t.Errorf("parseProcStat(%q) accepted", bad)
		}
	}
}

func FuzzParseProcStat(f *testing.F) {
	f.Add("1 (sh) S 0 1 1 0 -1 4194560 1 0 0 0 1 1 0 0 20 0 1 0 100 1000 10 1")
	f.Add("1 ()) ) S")
	f.Fuzz(func(t *testing.T, s string) {
		st, err := parseProcStat(s)
		if err == nil && strings.Contains(st.state, " ") {
			t.Fatalf("state %q", st.state)
		}
	})
}

func TestParseProcStatus(t *testing.T) {
	st := parseProcStatus("Name:\tsh\nUid:\t1000\t33\t33\t33\nGid:\t100\t34\t34\t34\nNSpid:\t4242\t17\t1\n")
	if st.ruid != 1000 || st.euid != 33 || st.rgid != 100 || st.egid != 34 || len(st.nspid) != 3 || st.nspid[2] != 1 {
		t.Errorf("parsed %+v", st)
	}
}

func FuzzParseProcStatus(f *testing.F) {
	f.Add("Uid:\t0 0 0 0\nNSpid:\t1\n")
	f.Fuzz(func(t *testing.T, s string) { _ = parseProcStatus(s) })
}

func TestCgroupPaths(t *testing.T) {
	v1 := parseProcCgroup("12:pids:/berth/abc\n4:memory:/berth/abc\n3:cpu,cpuacct:/berth/abc\n1:name=systemd:/x\n0::/\n")
	mounts := parseCgroupMounts(strings.Join([]string{
		"30 25 0:26 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory",
		"31 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:10 - cgroup cgroup rw,cpu,cpuacct",
		"32 25 0:28 /nested /sys/fs/cgroup/pids rw,relatime shared:11 - cgroup cgroup rw,pids",
		"33 25 0:29 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate",
		"34 25 0:30 / /mnt/with\\040space rw - cgroup cgroup rw,freezer",
		"35 25 8:1 / / rw - ext4 /dev/sda1 rw",
	}, "\n"))
	cg := cgroupDirs(v1, mounts)
	if cg.V2 || cg.Dir("memory") != "/sys/fs/cgroup/memory/berth/abc" || cg.Dir("cpuacct") != "/sys/fs/cgroup/cpu,cpuacct/berth/abc" {
		t.Errorf("v1: %+v", cg)
	}
	if _, ok := cg.Dirs["pids"]; ok {
		t.Errorf("a path outside the mount's root was joined: %+v", cg.Dirs)
	}
	if mounts["freezer"].point != "/mnt/with space" {
		t.Errorf("escaped mount point: %q", mounts["freezer"].point)
	}
	v2 := cgroupDirs(parseProcCgroup("0::/berth/abc\n"), parseCgroupMounts("40 1 0:40 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw"))
	if !v2.V2 || v2.Dir("memory") != "/sys/fs/cgroup/berth/abc" {
		t.Errorf("v2: %+v", v2)
	}
}

func FuzzCgroupParsers(f *testing.F) {
	f.Add("4:memory:/berth/abc\n0::/x", "30 25 0:26 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory")
	f.Fuzz(func(t *testing.T, pc, mi string) {
		cg := cgroupDirs(parseProcCgroup(pc), parseCgroupMounts(mi))
		for ctl, d := range cg.Dirs {
			m := parseCgroupMounts(mi)[ctl]
			if !strings.HasPrefix(d, strings.TrimSuffix(m.point, "/")) && d != m.point {
				t.Fatalf("%s dir %q outside its mount %q", ctl, d, m.point)
			}
		}
	})
}

func TestStatsParsers(t *testing.T) {
	netdev := `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0
  eth0:     570       5    0    0    0     0          0         0      308       4    0    0    0     0       0          0
  eth1:      30       1    0    0    0     0          0         0       12       1    0    0    0     0       0          0
`
	if rx, tx := parseNetDev(netdev); rx != 600 || tx != 320 {
		t.Errorf("net/dev: %d %d", rx, tx)
	}
	if r, w := parseBlkioV1("8:0 Read 4096\n8:0 Write 512\n8:0 Sync 4608\n8:16 Read 100\nTotal 4708\n"); r != 4196 || w != 512 {
		t.Errorf("blkio: %d %d", r, w)
	}
	if r, w := parseIOStatV2("8:0 rbytes=4096 wbytes=512 rios=1 wios=1\n8:16 rbytes=4 wbytes=bad\n"); r != 4100 || w != 512 {
		t.Errorf("io.stat: %d %d", r, w)
	}
	if m := parseKeyed("inactive_file 4096\nbad line here\nx y\n"); m["inactive_file"] != 4096 || len(m) != 1 {
		t.Errorf("keyed: %v", m)
	}
}

func FuzzStatsParsers(f *testing.F) {
	f.Add("eth0: 1 2 3 4 5 6 7 8 9 10")
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = parseNetDev(s)
		_, _ = parseBlkioV1(s)
		_, _ = parseIOStatV2(s)
		_ = parseKeyed(s)
	})
}

func TestCheckUnprivilegedPorts(t *testing.T) {
	ports := []network.PortMapping{{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}, {HostPort: 80, ContainerPort: 80, Protocol: "tcp"}}
	err := checkUnprivilegedPorts(ports, 1024)
	want := "rootlessport cannot expose privileged port 80, you can add 'net.ipv4.ip_unprivileged_port_start=80' to /etc/sysctl.conf (currently 1024), or choose a larger port number (>= 1024)"
	if err == nil || !strings.HasPrefix(err.Error(), want) || !errors.Is(err, ErrPrivilegedPort) {
		t.Errorf("got %v", err)
	}
	if err := checkUnprivilegedPorts(ports, 80); err != nil {
		t.Errorf("start 80: %v", err)
	}
	if err := checkUnprivilegedPorts([]network.PortMapping{{HostPort: 0, ContainerPort: 80}}, 1024); err != nil {
		t.Errorf("random host port: %v", err)
	}
}

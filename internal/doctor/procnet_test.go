package doctor

import (
	"net/netip"
	"strings"
	"testing"
)

const tcp4 = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0100007F:0035 0200007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 4243 1 0000000000000000 20 4 30 10 -1
`

const udp6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  10: 00000000000000000000000001000000:0035 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 777 2 0000000000000000 0
  11: 0000000000000000FFFF0000011313C6:1F95 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 778 2 0000000000000000 0
`

func TestParseProcNet(t *testing.T) {
	got, err := ParseProcNet(strings.NewReader(tcp4), "tcp")
	if err != nil {
		t.Fatal(err)
	}
	want := []Socket{
		{Proto: "tcp", Local: netip.MustParseAddrPort("0.0.0.0:8080"), Listening: true, Inode: 4242},
		{Proto: "tcp", Local: netip.MustParseAddrPort("127.0.0.1:53"), Listening: false, Inode: 4243},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i].Proto != want[i].Proto || got[i].Local != want[i].Local || got[i].Listening != want[i].Listening || got[i].Inode != want[i].Inode {
			t.Errorf("socket %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	got, err = ParseProcNet(strings.NewReader(udp6), "udp")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Local != netip.MustParseAddrPort("[::1]:53") || !got[0].Listening ||
		got[1].Local != netip.MustParseAddrPort("198.19.19.1:8085") {
		t.Errorf("udp6: %+v", got)
	}
}

func TestParseProcNetErrors(t *testing.T) {
	for _, in := range []string{
		"header\n 0: 0100007F:0035\n",
		"header\n 0: 0100007F 00000000:0000 0A 0 0 0 0 0 1\n",
		"header\n 0: 0100007:0035 00000000:0000 0A 0 0 0 0 0 1\n",
		"header\n 0: 0100007F:0035 00000000:0000 ZZ 0 0 0 0 0 1\n",
		"header\n 0: 0100007F:0035 00000000:0000 0A 0 0 0 0 0 x\n",
		"header\n 0: 0100007F:10035 00000000:0000 0A 0 0 0 0 0 1\n",
	} {
		if _, err := ParseProcNet(strings.NewReader(in), "tcp"); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

func FuzzParseProcNet(f *testing.F) {
	f.Add(tcp4)
	f.Add(udp6)
	f.Fuzz(func(t *testing.T, in string) {
		socks, err := ParseProcNet(strings.NewReader(in), "udp")
		if err != nil {
			return
		}
		for _, s := range socks {
			if !s.Local.IsValid() {
				t.Fatalf("invalid address parsed from %q", in)
			}
		}
	})
}

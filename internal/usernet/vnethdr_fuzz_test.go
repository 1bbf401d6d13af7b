package usernet

import (
	"bytes"
	"testing"
)

func FuzzDecodeVnetHdr(f *testing.F) {
	f.Add([]byte{1, 4, 86, 0, 0xa0, 0x05, 54, 0, 16, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, ok := decodeVnetHdr(b)
		if ok != (len(b) >= vnetHdrSize) {
			t.Fatalf("ok %v for %d bytes", ok, len(b))
		}
		if !ok {
			return
		}
		var out [vnetHdrSize]byte
		h.encode(out[:])
		if !bytes.Equal(out[:], b[:vnetHdrSize]) {
			t.Fatalf("round trip % x -> % x", b[:vnetHdrSize], out)
		}
		_ = h.acceptable()
	})
}

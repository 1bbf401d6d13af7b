package link

import (
	"errors"
	"testing"

	"github.com/vishvananda/netlink"
)

func TestRedump(t *testing.T) {
	for _, tc := range []struct {
		name        string
		interrupted int // dumps answered as interrupted before a whole one
		wantCalls   int
		wantErr     error
	}{
		{"whole at once", 0, 1, nil},
		{"interrupted twice", 2, 3, nil},
		{"always interrupted", 100, dumpTries, netlink.ErrDumpInterrupted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			out, err := redump(func() ([]int, error) {
				calls++
				if calls <= tc.interrupted {
					return []int{calls}, netlink.ErrDumpInterrupted
				}
				return []int{1, 2, 3}, nil
			})
			if calls != tc.wantCalls || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("calls %d err %v, want %d and %v", calls, err, tc.wantCalls, tc.wantErr)
			}
			if err == nil && len(out) != 3 {
				t.Fatalf("answer %v, want the whole dump", out)
			}
			if err != nil && len(out) != 1 {
				t.Fatalf("answer %v, want the last partial dump", out)
			}
		})
	}
	other := errors.New("permission denied")
	calls := 0
	if _, err := redump(func() ([]int, error) { calls++; return nil, other }); !errors.Is(err, other) || calls != 1 {
		t.Fatalf("another error is not repeated: calls %d err %v", calls, err)
	}
}

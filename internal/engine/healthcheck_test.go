package engine

import (
	"testing"
	"time"
)

func TestNextHealth(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration, code int) HealthLog {
		return HealthLog{Start: start.Add(d), End: start.Add(d + time.Millisecond), ExitCode: code}
	}
	// failures in the 10 s start period do not count; then 2 in a row
	// make it unhealthy; a success makes it healthy again
	var h *Health
	steps := []struct {
		l      HealthLog
		status string
		streak int
	}{
		{at(time.Second, 1), HealthStarting, 0},
		{at(5*time.Second, 1), HealthStarting, 0},
		{at(11*time.Second, 1), HealthStarting, 1},
		{at(12*time.Second, 1), HealthUnhealthy, 2},
		{at(13*time.Second, 0), HealthHealthy, 0},
		{at(14*time.Second, 1), HealthHealthy, 1},
		{at(15*time.Second, 7), HealthUnhealthy, 2},
	}
	for i, s := range steps {
		h = nextHealth(h, s.l, start, 10*time.Second, 2)
		if h.Status != s.status || h.FailingStreak != s.streak {
			t.Fatalf("step %d: %s streak %d, want %s streak %d", i, h.Status, h.FailingStreak, s.status, s.streak)
		}
	}
	if len(h.Log) != healthLogs || h.Log[len(h.Log)-1].ExitCode != 7 || !h.Log[0].Start.Equal(start.Add(11*time.Second)) {
		t.Errorf("log keeps the last %d: %+v", healthLogs, h.Log)
	}
	// a success in the start period makes it healthy at once
	if h := nextHealth(nil, at(time.Second, 0), start, time.Minute, 3); h.Status != HealthHealthy {
		t.Errorf("success in the start period: %s", h.Status)
	}
	var b limitedBuffer
	for range 100 {
		_, _ = b.Write([]byte("0123456789"))
	}
	if b.Len() != healthOutputMax {
		t.Errorf("output kept: %d bytes", b.Len())
	}
}

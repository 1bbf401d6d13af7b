package sdactivation

import (
	"os"
	"strconv"
	"testing"
)

func TestNotActivated(t *testing.T) {
	for _, env := range []map[string]string{
		{},
		{"LISTEN_PID": "1", "LISTEN_FDS": "1"},
		{"LISTEN_PID": strconv.Itoa(os.Getpid()), "LISTEN_FDS": "0"},
	} {
		ln, err := Listener(func(k string) string { return env[k] })
		if ln != nil || err != nil {
			t.Fatalf("%v: got %v, %v; want no listener", env, ln, err)
		}
	}
}

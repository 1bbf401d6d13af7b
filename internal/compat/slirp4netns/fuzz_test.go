package slirp4netns

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/berthnet/berth/internal/usernet"
)

// checkingForwarder fails the fuzz run when the API hands the stack a
// forward that is not well formed.
type checkingForwarder struct {
	fakeForwarder
	t *testing.T
}

func (c *checkingForwarder) AddForward(f usernet.Forward) (usernet.Forward, error) {
	if f.Proto != "tcp" && f.Proto != "udp" {
		c.t.Fatalf("forward with protocol %q", f.Proto)
	}
	if f.HostPort == 0 || f.GuestPort == 0 || !f.HostAddr.IsValid() || f.HostAddr.Zone() != "" {
		c.t.Fatalf("forward %+v with a bad host side or port", f)
	}
	if f.GuestAddr.IsValid() && !f.GuestAddr.Is4() && f.NetNS == "" {
		c.t.Fatalf("forward %+v to a non-IPv4 guest without a namespace", f)
	}
	return c.fakeForwarder.AddForward(f)
}

// FuzzAPI: no request to the API socket makes it panic; every answer is
// one JSON object, slirp4netns's {"return":...}, {"entries":...} or
// {"error":{"desc":"bad request: ..."}}; only well-formed forwards reach
// the stack.
func FuzzAPI(f *testing.F) {
	for req := range apiErrorCases {
		f.Add(req)
	}
	// What Podman and rootlesskit send.
	f.Add(`{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_addr":"0.0.0.0","host_port":8080,"guest_addr":"","guest_port":80}}`)
	f.Add(`{"execute": "add_hostfwd", "arguments": {"proto": "udp", "host_addr": "127.0.0.1", "host_port": 5353, "guest_addr": "10.0.2.100", "guest_port": 53}}`)
	f.Add(`{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_addr":"::","host_port":8443,"guest_addr":"10.89.0.2","guest_port":443,"berth_netns":"/run/user/1000/netns/rootless-netns","berth_gateway":"10.89.0.1"}}`)
	f.Add(`{"execute":"list_hostfwd"}`)
	f.Add(`{"execute":"remove_hostfwd","arguments":{"id":1}}`)
	f.Add(`{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_port":65535.9,"guest_port":1e3}}`)
	log := slog.New(slog.DiscardHandler)
	f.Fuzz(func(t *testing.T, req string) {
		fw := &checkingForwarder{t: t}
		for _, r := range []string{req, req, `{"execute":"list_hostfwd"}`} {
			resp := handle(fw, []byte(r), log)
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(resp, &obj); err != nil || len(obj) != 1 {
				t.Fatalf("answer %q to %q is not one JSON object: %v", resp, r, err)
			}
			if e, ok := obj["error"]; ok {
				var desc struct{ Desc string }
				if json.Unmarshal(e, &desc) != nil || !strings.HasPrefix(desc.Desc, "bad request: ") {
					t.Fatalf("error answer %q", resp)
				}
			} else if obj["return"] == nil && obj["entries"] == nil {
				t.Fatalf("answer %q to %q", resp, r)
			}
		}
	})
}

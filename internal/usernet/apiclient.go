// The client of the slirp4netns API socket (add_hostfwd, remove_hostfwd),
// which berth's engine uses to publish ports through a user-mode network.

package usernet

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// AddHostfwd asks the slirp4netns (or berth) process serving the API
// socket sock to forward a host port; it returns the forward's ID.
func AddHostfwd(sock string, f Forward) (int, error) {
	args := map[string]any{"proto": f.Proto, "host_port": f.HostPort, "guest_port": f.GuestPort}
	if f.HostAddr.IsValid() {
		args["host_addr"] = f.HostAddr.String()
	}
	if f.GuestAddr.IsValid() {
		args["guest_addr"] = f.GuestAddr.String()
	}
	if f.NetNS != "" {
		args["berth_netns"] = f.NetNS
	}
	if f.Gateway.IsValid() {
		args["berth_gateway"] = f.Gateway.String()
	}
	var out struct {
		Return struct {
			ID *int `json:"id"`
		} `json:"return"`
	}
	if err := apiCall(sock, "add_hostfwd", args, &out); err != nil {
		return 0, fmt.Errorf("forward %s port %d to %d: %w", f.Proto, f.HostPort, f.GuestPort, err)
	}
	if out.Return.ID == nil {
		return 0, errors.New("add_hostfwd: no id in the reply")
	}
	return *out.Return.ID, nil
}

// RemoveHostfwd removes the forward with the given ID.
func RemoveHostfwd(sock string, id int) error {
	return apiCall(sock, "remove_hostfwd", map[string]any{"id": id}, nil)
}

// apiCall sends one request and decodes the reply into out; an {"error":...}
// reply becomes an error.
func apiCall(sock, execute string, args map[string]any, out any) error {
	c, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		return fmt.Errorf("api socket: %w", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	req, _ := json.Marshal(map[string]any{"execute": execute, "arguments": args})
	if _, err := c.Write(req); err != nil {
		return fmt.Errorf("api socket: %w", err)
	}
	if uc, ok := c.(*net.UnixConn); ok {
		_ = uc.CloseWrite()
	}
	b, err := io.ReadAll(io.LimitReader(c, 1<<20))
	if err != nil {
		return fmt.Errorf("api socket: %w", err)
	}
	var e struct {
		Error *struct {
			Desc string `json:"desc"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &e); err != nil {
		return fmt.Errorf("api reply %q: %w", b, err)
	}
	if e.Error != nil {
		return fmt.Errorf("%s", e.Error.Desc)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

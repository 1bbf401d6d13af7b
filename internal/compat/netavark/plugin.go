package netavark

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/berthnet/berth/internal/network"
)

// netavark's plugin drivers: a network whose driver is none of berth's
// (bridge, macvlan, ipvlan) is handed to the executable of that name in a
// --plugin-directory, as netavark does: `PLUGIN create` with the network
// definition as JSON on stdin (the completed definition on stdout),
// `PLUGIN setup NETNS` and `PLUGIN teardown NETNS` with pluginInput on
// stdin (setup prints the network's status block). A plugin that fails
// exits non-zero with {"error": ...} on stdout; its stderr is ours.

// pluginInput is what setup and teardown give a plugin on stdin.
type pluginInput struct {
	ContainerID    string                    `json:"container_id"`
	ContainerName  string                    `json:"container_name"`
	PortMappings   []network.PortMapping     `json:"port_mappings"`
	Network        network.Network           `json:"network"`
	NetworkOptions network.PerNetworkOptions `json:"network_options"`
}

// pluginNet is one network of a setup or teardown that a plugin drives.
type pluginNet struct {
	path  string
	input pluginInput
}

// builtinDriver reports whether berth drives networks of driver d itself.
func builtinDriver(d string) bool {
	return d == network.DriverBridge || d == network.DriverMacvlan || d == network.DriverIPvlan
}

// findPlugin returns the executable regular file named driver in the
// first of dirs that has one, or "".
func findPlugin(dirs []string, driver string) string {
	if driver == "" || builtinDriver(driver) || filepath.Base(driver) != driver {
		return ""
	}
	for _, d := range dirs {
		p := filepath.Join(d, driver)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// splitPlugins takes the networks that a plugin in dirs drives out of o
// and returns them, in order; o keeps berth's own (and those of drivers
// nobody knows, which validation then refuses).
func splitPlugins(o *network.Options, dirs []string) []pluginNet {
	if len(dirs) == 0 {
		return nil
	}
	var plugins []pluginNet
	kept := o.Networks[:0]
	for _, a := range o.Networks {
		n, ok := o.NetworkInfo[a.Name]
		p := ""
		if ok {
			p = findPlugin(dirs, n.Driver)
		}
		if p == "" {
			kept = append(kept, a)
			continue
		}
		plugins = append(plugins, pluginNet{path: p, input: pluginInput{
			ContainerID: o.ContainerID, ContainerName: o.ContainerName,
			PortMappings: o.PortMappings, Network: n, NetworkOptions: a.PerNetworkOptions,
		}})
	}
	o.Networks = kept
	return plugins
}

// PluginError: a plugin exited with an error. Msg is its {"error"}
// message, or why its output could not be read.
type PluginError struct {
	Plugin string
	Code   int
	Msg    string
}

func (e *PluginError) Error() string {
	return fmt.Sprintf("plugin %q failed: exit code %d, message: %s", e.Plugin, e.Code, e.Msg)
}

// runPlugin runs the plugin at path with args and in as JSON on stdin,
// its stderr on stderr, and returns its stdout.
func runPlugin(ctx context.Context, path string, args []string, in any, stderr io.Writer) ([]byte, error) {
	b, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(b), &out, stderr
	err = cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() > 0 {
		var e struct {
			Error string `json:"error"`
		}
		msg := ""
		if jerr := json.Unmarshal(out.Bytes(), &e); jerr != nil {
			msg = "parse error: " + jerr.Error()
		} else {
			msg = e.Error
		}
		return nil, &PluginError{Plugin: filepath.Base(path), Code: exit.ExitCode(), Msg: msg}
	}
	if err != nil {
		return nil, fmt.Errorf("plugin %q failed: %w", filepath.Base(path), err)
	}
	return out.Bytes(), nil
}

// setupPlugins sets up each plugin network in order and adds its status
// to res; on a failure it tears down those it set up and returns the
// error.
func setupPlugins(ctx context.Context, plugins []pluginNet, nsPath string, res map[string]network.StatusBlock, env Env, log *slog.Logger) error {
	for i, p := range plugins {
		out, err := runPlugin(ctx, p.path, []string{"setup", nsPath}, p.input, env.Stderr)
		if err == nil {
			var st network.StatusBlock
			if err = json.Unmarshal(out, &st); err == nil {
				res[p.input.Network.Name] = st
				continue
			}
			err = fmt.Errorf("plugin %q: status: %w", filepath.Base(p.path), err)
		}
		if terr := teardownPlugins(ctx, plugins[:i], nsPath, env); terr != nil {
			log.Error(fmt.Sprintf("failed to cleanup plugin networks after setup failed: %v", terr))
		}
		return err
	}
	return nil
}

// teardownPlugins tears down every plugin network and returns the
// errors joined.
func teardownPlugins(ctx context.Context, plugins []pluginNet, nsPath string, env Env) error {
	var errs []error
	for _, p := range plugins {
		if _, err := runPlugin(ctx, p.path, []string{"teardown", nsPath}, p.input, env.Stderr); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// createWithPlugin completes the definition of a network whose driver is
// the plugin at path (`PLUGIN create`); the plugin must not change the
// name, ID or driver.
func createWithPlugin(ctx context.Context, path string, n network.Network, stderr io.Writer) (network.Network, error) {
	out, err := runPlugin(ctx, path, []string{"create"}, n, stderr)
	if err != nil {
		return n, err
	}
	var got network.Network
	if err := json.Unmarshal(out, &got); err != nil {
		return n, fmt.Errorf("plugin %q: network: %w", filepath.Base(path), err)
	}
	for _, c := range []struct{ what, was, is string }{{"name", n.Name, got.Name}, {"ID", n.ID, got.ID}, {"driver", n.Driver, got.Driver}} {
		if c.was != c.is {
			return n, fmt.Errorf("%s plugin invalid result: changed network %s", n.Driver, c.what)
		}
	}
	return got, nil
}

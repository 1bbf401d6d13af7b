package slirp4netns

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
)

// Podman 4.3 decides which flags to pass by looking for them in --help.
func TestHelpHasWhatPodmanLooksFor(t *testing.T) {
	var out bytes.Buffer
	if code := Run(context.Background(), []string{"--help"}, Env{Stdout: &out, Stderr: io.Discard}); code != 0 {
		t.Fatalf("--help exit %d", code)
	}
	for _, f := range []string{"--disable-host-loopback", "--mtu", "--enable-sandbox", "--enable-seccomp", "--cidr", "--outbound-addr", "--enable-ipv6", "--disable-dns", "--api-socket", "--netns-type", "--userns-path"} {
		if !strings.Contains(out.String(), f) {
			t.Errorf("--help lacks %s", f)
		}
	}
	out.Reset()
	if code := Run(context.Background(), []string{"--version"}, Env{Stdout: &out, Stderr: io.Discard}); code != 0 || !strings.HasPrefix(out.String(), "slirp4netns version 1.2.0") {
		t.Errorf("--version: %d %q", code, out.String())
	}
}

func TestParsePodmanCommandLine(t *testing.T) {
	// Podman 4.3.1's command line, as it logs it with --log-level=debug.
	o, err := parse(strings.Fields("--disable-host-loopback --mtu=65520 --enable-sandbox --enable-seccomp --enable-ipv6 -c -e 3 -r 4 --api-socket /run/user/1000/libpod/tmp/abc.net --netns-type=path /run/user/1000/netns/netns-1234 tap0"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !o.noHostLoopback || o.mtu != 65520 || !o.sandbox || !o.seccomp || !o.ipv6 || !o.configure ||
		o.exitFD != 3 || o.readyFD != 4 || o.apiSocket != "/run/user/1000/libpod/tmp/abc.net" ||
		o.netnsPath() != "/run/user/1000/netns/netns-1234" || o.tap != "tap0" {
		t.Fatalf("parsed %+v", o)
	}
	cfg, _, err := o.config(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MTU != 65520 || !cfg.IPv6 || !cfg.DisableHostLoopback || cfg.Guest().String() != "10.0.2.100" {
		t.Fatalf("config %+v", cfg)
	}
	// The older PID form, with --cidr and a default TAP name.
	o, err = parse([]string{"--cidr=10.99.0.0/24", "-c", "4242"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.netnsPath() != "/proc/4242/ns/net" || o.tap != "tap0" {
		t.Fatalf("parsed %+v", o)
	}
	cfg, _, err = o.config(nil)
	if err != nil || cfg.Guest().String() != "10.99.0.100" || cfg.Gateway().String() != "10.99.0.2" {
		t.Fatalf("config %+v, %v", cfg, err)
	}
}

func TestParseRejects(t *testing.T) {
	for _, args := range []string{
		"",                          // no target
		"a b c",                     // too many
		"notapid tap0",              // pid type needs a number
		"--netns-type=file /x tap0", // bad type
		"--mtu=0 1 tap0",
		"--mtu=65522 1 tap0",
		"--macaddress=02:00:00:00:00:01 1 tap0", // needs -c
		"--target-type=bess 1 tap0",
		"--bogus 1 tap0",
	} {
		if _, err := parse(strings.Fields(args), io.Discard); err == nil {
			t.Errorf("parse(%q) succeeded", args)
		}
	}
	for _, args := range []string{
		"--cidr=10.0.2.0/26 1 tap0",
		"--cidr=fd00::/64 1 tap0",
		"--outbound-addr=fd00::1 1 tap0",
		"--outbound-addr=nosuchif0 1 tap0",
		"-c --macaddress=zz 1 tap0",
	} {
		o, err := parse(strings.Fields(args), io.Discard)
		if err != nil {
			t.Fatalf("parse(%q): %v", args, err)
		}
		if _, _, err := o.config(nil); err == nil {
			t.Errorf("config for %q succeeded", args)
		}
	}
}

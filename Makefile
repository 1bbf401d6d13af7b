# `make` leaves every executable in bin/, which is also the directory to give
# Podman as helper_binaries_dir.
# Go from PATH, else the toolchain's usual place (sudo drops /usr/local/go/bin).
GO       ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.1.0-dev)
COMMIT   ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS  := -s -w -X github.com/berthnet/berth/internal/buildinfo.Version=$(VERSION) \
            -X github.com/berthnet/berth/internal/buildinfo.Commit=$(COMMIT) \
            -X github.com/berthnet/berth/internal/buildinfo.BuildTime=$(shell date -u +%Y-%m-%dT%H:%M:%SZ)

# berth's CNI plugins: one binary, bin/berth-cni, linked under each name.
CNI_PLUGINS := berth-bridge berth-ipam berth-portmap berth-macvlan berth-dns loopback

.PHONY: all build check deps test test-unit lint clean demo

all: build

build:
	@mkdir -p bin
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/berth ./cmd/berth
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/netavark ./cmd/netavark
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/aardvark-dns ./cmd/aardvark-dns
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/slirp4netns ./cmd/slirp4netns
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/pasta ./cmd/pasta
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/berth-overlay ./cmd/berth-overlay
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/berth-cni ./cmd/berth-cni
	for p in $(CNI_PLUGINS); do ln -f bin/berth-cni bin/$$p; done
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/berth-cni-dhcp ./cmd/berth-cni-dhcp

# The test command: on a fresh Debian 12 machine with only Go, as root,
# `make check` installs what the tests need, builds and runs every suite.
check: deps build
	GO=$(GO) scripts/test.sh

deps:
	PATH="$$PATH:$(dir $(GO))" scripts/deps.sh

test: build
	GO=$(GO) scripts/test.sh

test-unit:
	$(GO) test ./...

demo: build
	scripts/demo.sh

clean:
	rm -rf bin

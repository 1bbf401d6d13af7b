// Package dockerapi serves the Docker Engine API over HTTP so that
// unmodified Docker clients (the docker CLI, docker-compose, Docker's Go
// client) drive berth. It only translates: requests in Docker's JSON
// shapes (github.com/moby/moby/api/types) become calls on a Backend in
// berth's own model types, and berth's results and errors are written
// back in Docker's shapes and status codes.
//
// Files: server.go (routing, API version negotiation, errors),
// backend.go (what the server needs from berth), filters.go (Docker's
// `filters` query parameter), system.go (_ping, version, info),
// networks.go (the /networks endpoints), netconv.go (pure conversion
// between Docker's network requests and berth's network model),
// images.go and pull.go (the /images endpoints and pull progress),
// volumes.go (the /volumes endpoints), containers.go (the /containers
// endpoints), ctrconv.go (a create request as berth's create options,
// every unsupported field refused by name), ctrview.go (berth's
// containers in Docker's list and inspect shapes), attach.go (hijacked
// attach, also before the start), exec.go (exec sessions) and
// ctrmisc.go (archive for docker cp, top, stats).
package dockerapi

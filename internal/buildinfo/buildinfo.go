// Package buildinfo holds berth's version, set at link time.
package buildinfo

// Version is berth's version; `make` sets it with -ldflags -X.
var Version = "0.1.0-dev"

// Commit is the git commit berth was built from, if known.
var Commit = ""

// BuildTime is when the binary was built (RFC 3339), if known.
var BuildTime = ""

// NetavarkVersion is the netavark interface version berth's front-end speaks.
const NetavarkVersion = "2.1.0"

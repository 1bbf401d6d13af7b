// Package reliability is berth's reliability suite: kernel tests that drive
// the built programs (netavark, berth, the CNI plugins) as Podman, a user
// and a container runtime do, at scale and under abuse, and count what goes
// wrong. Each scenario prints one line of figures starting with
// "reliability: " and fails when a figure is not what berth promises.
//
// The suite runs in short mode unless -long is given after -args or
// BERTH_RELIABILITY=long is set; see docs/tests.md.
package reliability

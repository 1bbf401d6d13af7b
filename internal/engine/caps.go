package engine

import (
	"slices"
	"strings"

	"github.com/berthnet/berth/internal/runspec"
)

// Capabilities returns the capabilities the container's process runs
// with, sorted, as inspect's EffectiveCaps and BoundingCaps show them:
// the bounding set from --privileged, --cap-add and --cap-drop, and as
// effective set the bounding set for root, the added capabilities for
// another user.
func Capabilities(cfg Config) (effective, bounding []string) {
	sec, err := processSecurity(cfg.Runtime)
	bounding = sec.Capabilities
	if err != nil || bounding == nil {
		bounding = runspec.DefaultCapabilities
	}
	bounding = slices.Sorted(slices.Values(bounding))
	effective = bounding
	if !rootUser(cfg.User) {
		effective = slices.Sorted(slices.Values(sec.UserCaps))
	}
	if effective == nil {
		effective = []string{}
	}
	return effective, bounding
}

// rootUser reports whether a --user (USER[:GROUP]) is root.
func rootUser(user string) bool {
	u, _, _ := strings.Cut(user, ":")
	return u == "" || u == "0" || u == "root"
}

// Package archtest holds tests that enforce berth's code layout: package
// docs, pure packages free of kernel dependencies, and namespace switching
// confined to internal/netns.
package archtest

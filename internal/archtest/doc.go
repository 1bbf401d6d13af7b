// Package archtest holds the rules berth's code keeps and the tests that
// enforce them: the dependency direction cmd -> front-ends -> core ->
// kernel adapters -> model (with a table that gives every package its
// layer, and only the kernel adapters importing the kernel libraries), a
// README Layout section that lists every package, package docs, pure
// packages free of kernel dependencies, and namespace switching confined
// to internal/netns.
package archtest

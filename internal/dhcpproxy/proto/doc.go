// Package proxypb is the generated Go code of the DHCP proxy's gRPC API
// (proxy.proto: netavark's netavark_proxy service with berth's extensions).
// The generated files are committed, so building needs no protoc; after
// editing proxy.proto run `go generate ./internal/dhcpproxy/proto/` with
// protoc, protoc-gen-go and protoc-gen-go-grpc on PATH.
package proxypb

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative proxy.proto

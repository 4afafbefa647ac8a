// Package buildkitd embeds BuildKit (github.com/moby/buildkit as a library)
// for cmd/lodge-buildkitd: a controller with the Dockerfile frontend, one
// runc worker in rootless mode, a "moby" exporter that hands images to
// lodged, and the HTTP server that speaks Docker's /grpc and /session.
//
// It lives in its own process, not in lodged, because BuildKit's worker,
// solver and gRPC stack cost tens of MiB that a daemon which never builds
// with BuildKit should not carry; lodged starts the helper on the first
// BuildKit request. The process runs in lodged's user, mount and network
// namespaces, where uid 0 is the user, so BuildKit's rootless executor
// (runc --rootless, no cgroups) is the right one.
//
// It does not own images: every exported image is loaded into lodged's
// store through lodged's own API (Loader). It never imports daemon or api.
package buildkitd

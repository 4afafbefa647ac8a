// Package api serves the Docker Engine API on lodged's socket: routing
// (with /v1.NN/ prefixes), the owner-only listener, hijacked streams, and
// the one place where errors become HTTP statuses. Handlers decode requests
// into moby's API types and call small backends declared here; they hold no
// state of their own and never import the image service or the runtime
// (internal/depcheck fails if they do). The registry-auth header and
// Docker's JSON progress stream, which the image service reports on
// through its ProgressSink, are decoded and written here. The one
// capability package api takes is build: a classic build's options and
// its failed-RUN error are the request and the answer.
package api

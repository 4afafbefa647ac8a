// Package build turns a Dockerfile and its context into an image, the way
// Docker's classic builder does: one image per step, "Step n/m" output,
// a local step cache.
//
// It owns reading the context safely (context.go, ignore.go), parsing and
// planning stages (plan.go, schedule.go), running the steps (stage.go,
// instructions.go, run.go, copy.go, archive.go, download.go, owner.go),
// writing layers of new files only (layer.go), and the step cache
// (cache.go, cachefrom.go). It does not own images, layers or
// containers: every image it makes goes through Backend, which lodged
// implements over its store and runtime; removing pruned images is the
// daemon's job too. It never imports daemon or api.
//
// Parsing uses buildkit's Dockerfile parser and instruction types so that
// what Docker accepts, lodge accepts, with the same errors; the execution
// is lodge's own.
package build

package build

import (
	"context"
	"sync"

	"github.com/distribution/reference"
	"github.com/lodge-containers/lodge/errdefs"
	"golang.org/x/sync/errgroup"
)

// buildRun is one Build call's shared state.
type buildRun struct {
	b    *Builder
	opts Options
	plan *plan
	bc   *buildContext
	// ctxReady waits until bc holds the whole context, checked, with its
	// ignore file applied; nothing reads bc before it returns nil.
	ctxReady func(context.Context) error
	work     string // the build's scratch dir, removed at the end
	p        *printer
	results  map[*stagePlan]*stageFuture // written before the stages start, then only read

	cacheFromOnce sync.Once
	cacheFrom     []Image
}

// stageFuture is a stage's result, ready when done is closed.
type stageFuture struct {
	done chan struct{}
	st   *state
	err  error
}

// runStages runs the stages the target needs, each as soon as the stages
// it uses are done, and returns the target's final state.
func (r *buildRun) runStages(ctx context.Context) (*state, error) {
	g, gctx := errgroup.WithContext(ctx)
	for _, sp := range r.plan.stages {
		if sp.needed {
			r.results[sp] = &stageFuture{done: make(chan struct{})}
		}
	}
	for _, sp := range r.plan.stages {
		if !sp.needed {
			continue
		}
		f := r.results[sp]
		g.Go(func() error {
			defer close(f.done)
			for dep := range sp.deps {
				select {
				case <-r.results[dep].done:
					if err := r.results[dep].err; err != nil {
						f.err = err
						return nil // the dependency's own goroutine reports it
					}
				case <-gctx.Done():
					f.err = gctx.Err()
					return f.err
				}
			}
			f.st, f.err = r.runStage(gctx, sp)
			return f.err
		})
	}
	if err := g.Wait(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	tf := r.results[r.plan.target]
	return tf.st, tf.err
}

// normalizeTags turns tags into Docker's familiar form with a tag: "app"
// is "app:latest".
func normalizeTags(tags []string) ([]string, error) {
	out := make([]string, 0, len(tags))
	for _, t := range tags {
		named, err := reference.ParseNormalizedNamed(t)
		if err != nil {
			return nil, errdefs.InvalidArgumentf("invalid tag %q: %v", t, err)
		}
		if _, ok := named.(reference.Digested); ok {
			return nil, errdefs.InvalidArgumentf("invalid tag %q: a build cannot be tagged with a digest", t)
		}
		out = append(out, reference.FamiliarString(reference.TagNameOnly(named)))
	}
	return out, nil
}

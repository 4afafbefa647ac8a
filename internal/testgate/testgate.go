// Package testgate is the one rule for a test that cannot run here: it
// skips, saying why, on a developer's machine, and fails where
// LODGE_TEST_STRICT is set (.ci/run and `make test` under CI set it), so a
// kernel or end-to-end test can never pass in CI by not running.
package testgate

import (
	"os"
	"testing"
)

// Env is the variable that makes every missing prerequisite a failure.
const Env = "LODGE_TEST_STRICT"

// Strict reports whether tests must not skip.
func Strict() bool { return os.Getenv(Env) != "" }

// SkipOrFail skips t with the reason, or fails it when Strict.
func SkipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if Strict() {
		t.Fatalf("cannot run, and "+Env+" is set: "+format, args...)
	}
	t.Skipf(format, args...)
}

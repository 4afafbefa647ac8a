// Package tests holds lodge's end-to-end tests: they build lodged and
// lodge, start the daemon as an unprivileged user with its own runtime dir
// and data root, and drive it with the real docker CLI and lodge, asserting
// on what a user sees. Run as root (CI), the tests run every daemon and
// client as LODGE_TEST_USER; run as a user, they use that user.
package tests

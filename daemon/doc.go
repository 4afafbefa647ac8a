// Package daemon is lodge's object model: the services (system, and later
// containers, images, volumes, networks, events) that the API calls, each
// owning its state under the data root. It composes the capability packages
// through small interfaces and never imports api.
package daemon

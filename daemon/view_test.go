package daemon

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
)

// blockingRootfs is a RootfsStore whose Mount waits until released: a
// start that is slow while it holds the container's lock (a port driver
// or a network attach that does not answer is the same to List).
type blockingRootfs struct {
	nopRootfs
	entered, release chan struct{}
}

func (b blockingRootfs) Mount(string) (string, error) {
	close(b.entered)
	<-b.release
	return "", errors.New("released")
}

// TestListDoesNotWaitForStart: `docker ps` answers while a start holds
// the container's lock, and shows the container as it last was.
func TestListDoesNotWaitForStart(t *testing.T) {
	root := t.TempDir()
	rfs := blockingRootfs{entered: make(chan struct{}), release: make(chan struct{})}
	s := assemble(context.Background(), ContainersConfig{Root: root, Rootfs: rfs, Log: slog.New(slog.DiscardHandler)})
	c := &Container{ID: "ffffffffffffffff", Name: "slow", Created: time.Now(), Config: &container.Config{}, HostConfig: &container.HostConfig{},
		State: ContainerState{Status: container.StateCreated}, exitCh: make(chan struct{}), removedCh: make(chan struct{})}
	os.MkdirAll(filepath.Join(root, c.ID), 0o700)
	s.recs.add(c)
	if err := s.recs.save(c); err != nil {
		t.Fatal(err)
	}

	started := make(chan error, 1)
	go func() { started <- s.lifecycle.Start(context.Background(), "slow") }()
	<-rfs.entered
	defer func() {
		close(rfs.release)
		if err := <-started; err == nil {
			t.Error("the start whose mount failed succeeded")
		}
	}()

	listed := make(chan []container.Summary, 1)
	go func() {
		l, err := s.List(ListOptions{All: true})
		if err != nil {
			t.Error(err)
		}
		listed <- l
	}()
	select {
	case l := <-listed:
		if len(l) != 1 || l[0].Names[0] != "/slow" || l[0].State != container.StateCreated {
			t.Errorf("ps during a start: %+v", l)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ps waited for a start that holds the container's lock")
	}
}

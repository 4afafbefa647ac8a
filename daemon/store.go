package daemon

import (
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/moby/moby/api/types/container"

	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/internal/atomicfile"
)

// store keeps the container records: by ID and by name, their files
// (container.json and the log in <root>/<id>, the monitor's sockets in
// <runDir>/c/<id[:12]>), and the view `docker ps` reads. Its lock guards
// only the two maps; a container's lock may be held while taking it, and
// it is never held while calling out of the store.
type store struct {
	root, runDir string
	log          *slog.Logger

	mu    sync.RWMutex
	byID  map[string]*Container
	names map[string]string // name -> id
	// view is what List reads: copies of the records, kept by save.
	view view
}

func newStore(root, runDir string, log *slog.Logger) *store {
	if log == nil {
		log = slog.Default()
	}
	return &store{root: root, runDir: runDir, log: log, byID: map[string]*Container{}, names: map[string]string{}}
}

// get finds a container by full ID, unique ID prefix or name.
func (st *store) get(ref string) (*Container, error) {
	ref = strings.TrimPrefix(ref, "/")
	st.mu.RLock()
	defer st.mu.RUnlock()
	if c, ok := st.byID[ref]; ok {
		return c, nil
	}
	if id, ok := st.names[ref]; ok {
		if c, ok := st.byID[id]; ok {
			return c, nil
		}
	}
	var found *Container
	if ref != "" {
		for id, c := range st.byID {
			if strings.HasPrefix(id, ref) {
				if found != nil {
					return nil, errdefs.InvalidArgumentf("multiple IDs found with provided prefix: %s", ref)
				}
				found = c
			}
		}
	}
	if found == nil {
		return nil, errdefs.NotFoundf("No such container: %s", ref)
	}
	return found, nil
}

// all returns every container, newest first.
func (st *store) all() []*Container {
	st.mu.RLock()
	out := make([]*Container, 0, len(st.byID))
	for _, c := range st.byID {
		out = append(out, c)
	}
	st.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out
}

// add records a loaded or newly made container under its ID and name.
func (st *store) add(c *Container) {
	st.mu.Lock()
	st.byID[c.ID] = c
	st.names[c.Name] = c.ID
	st.mu.Unlock()
}

// errNameInUse is Docker's conflict for a name that is taken.
func errNameInUse(name, by string) error {
	return errdefs.Conflictf("Conflict. The container name \"/%s\" is already in use by container \"%s\". You have to remove (or rename) that container to be able to reuse that name.", name, by)
}

// reserve takes name for id while the container is made, or a random
// name when name is "": the name it took, or a conflict.
func (st *store) reserve(name, id string) (string, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if name == "" {
		name = st.randomName()
	}
	if other, ok := st.names[name]; ok {
		return "", errNameInUse(name, other)
	}
	st.names[name] = id
	return name, nil
}

// release gives back a name reserve took for a create that failed.
func (st *store) release(name string) {
	st.mu.Lock()
	delete(st.names, name)
	st.mu.Unlock()
}

// delete forgets a removed container: record, name and view copy.
func (st *store) delete(c *Container) {
	st.mu.Lock()
	delete(st.byID, c.ID)
	st.view.drop(c.ID)
	if st.names[c.Name] == c.ID {
		delete(st.names, c.Name)
	}
	st.mu.Unlock()
}

// rename gives c newName and saves it; renamed runs under c's lock once
// the record has its new name (the network service learns it there), and
// is told the old one.
func (st *store) rename(c *Container, newName string, renamed func(c *Container, oldName string)) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if other, ok := st.names[newName]; ok {
		if other == c.ID {
			return errdefs.InvalidArgumentf("Renaming a container with the same name as its current name")
		}
		return errNameInUse(newName, other)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	oldName := c.Name
	delete(st.names, c.Name)
	st.names[newName] = c.ID
	c.Name = newName
	err := st.save(c)
	renamed(c, oldName)
	return err
}

// Random names, Docker-style adjective_noun, from lists of our own.
var (
	nameLeft  = []string{"amber", "brave", "calm", "dapper", "eager", "fuzzy", "gentle", "hardy", "jolly", "keen", "lucid", "mellow", "nimble", "plucky", "quiet", "rustic", "sturdy", "tidy", "upbeat", "vivid", "witty", "zesty"}
	nameRight = []string{"alder", "badger", "cabin", "delta", "ember", "fjord", "glacier", "heron", "inlet", "juniper", "kestrel", "larch", "moraine", "otter", "pine", "quarry", "ridge", "spruce", "tarn", "umber", "valley", "willow"}
)

// randomName picks an unused name. Callers hold st.mu.
func (st *store) randomName() string {
	for i := 0; ; i++ {
		n := nameLeft[rand.IntN(len(nameLeft))] + "_" + nameRight[rand.IntN(len(nameRight))]
		if i > 10 {
			n += strconv.Itoa(rand.IntN(1000))
		}
		if _, taken := st.names[n]; !taken {
			return n
		}
	}
}

// dir is where the container's files live.
func (st *store) dir(id string) string { return filepath.Join(st.root, id) }

// logPath is container id's json-file log.
func (st *store) logPath(id string) string { return filepath.Join(st.dir(id), id+"-json.log") }

// sockDir is where its monitor's sockets live: short, because a unix
// socket path is limited to 108 bytes.
func (st *store) sockDir(id string) string { return filepath.Join(st.runDir, "c", id[:12]) }

// save persists the record atomically, and shows it to List. Callers
// hold c.mu.
func (st *store) save(c *Container) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	st.view.put(c, b)
	return atomicfile.Write(filepath.Join(st.dir(c.ID), "container.json"), b, 0o600)
}

// keep saves c where a failure cannot fail the caller (an exit, a
// health result, a restart's bookkeeping): the error is logged, since
// re-adoption after a kill -9 reads this record. Callers hold c.mu.
func (st *store) keep(c *Container) {
	if err := st.save(c); err != nil {
		st.log.Error("saving a container's record", "id", c.ID, "err", err)
	}
}

// removeDir removes the directory of a container whose create failed.
func (st *store) removeDir(id string) {
	if err := os.RemoveAll(st.dir(id)); err != nil {
		st.log.Warn("removing the directory of a container whose create failed", "id", id, "err", err)
	}
}

// imageUsers finds the containers made from an image ("sha256:..." or
// hex): the first one's ID and how many.
func (st *store) imageUsers(imageID string) (first string, n int) {
	if !strings.HasPrefix(imageID, "sha256:") {
		imageID = "sha256:" + imageID
	}
	for _, c := range st.all() {
		c.mu.Lock()
		if c.ImageID == imageID {
			if n == 0 {
				first = c.ID
			}
			n++
		}
		c.mu.Unlock()
	}
	return first, n
}

// imageUser names a container that uses the image, or "".
func (st *store) imageUser(imageID string) string {
	first, _ := st.imageUsers(imageID)
	return first
}

// imageUserCount counts the containers using the image.
func (st *store) imageUserCount(imageID string) int {
	_, n := st.imageUsers(imageID)
	return n
}

// counts are the figures /info shows.
func (st *store) counts() (total, running, paused, stopped int) {
	for _, c := range st.all() {
		c.mu.Lock()
		switch {
		case c.State.Status == container.StatePaused:
			paused++
		case c.running():
			running++
		default:
			stopped++
		}
		c.mu.Unlock()
		total++
	}
	return
}

// logFileFor is where a container's log driver keeps its log: Docker's
// local driver under local-logs/, k8s-file at its path option (else in
// the container's directory, as Podman's), json-file beside the record.
func (st *store) logFileFor(id string, lc container.LogConfig) string {
	switch lc.Type {
	case logDriverLocal:
		return filepath.Join(st.dir(id), "local-logs", "container.log")
	case logDriverK8s:
		if p := lc.Config[logOptPath]; p != "" {
			return p
		}
		return filepath.Join(st.dir(id), "ctr.log")
	}
	return st.logPath(id)
}

// inspectLogPath is the LogPath inspect shows: json-file's and
// k8s-file's files (their formats are documented interfaces), and "" for
// the other drivers, as Docker keeps the local driver's files out of its
// API (their format is not a stable interface). Callers hold c.mu.
func (st *store) inspectLogPath(c *Container) string {
	switch t := c.HostConfig.LogConfig.Type; t {
	case "", logDriver, logDriverK8s:
		return st.logFileFor(c.ID, c.HostConfig.LogConfig)
	}
	return ""
}

// checkNamespaceTargets refuses, as Docker's create does, a pid, ipc or
// uts mode "container:X" whose X does not exist (a 400); that X runs is
// checked when the container starts.
func (st *store) checkNamespaceTargets(hc *container.HostConfig) error {
	for _, mode := range []string{string(hc.PidMode), string(hc.IpcMode), string(hc.UTSMode)} {
		if !isContainerMode(mode) {
			continue
		}
		if _, err := st.get(strings.TrimPrefix(mode, "container:")); err != nil {
			if errors.Is(err, errdefs.ErrNotFound) {
				return errdefs.InvalidArgumentf("%v", err)
			}
			return err
		}
	}
	return nil
}

// utsNames is the hostname and domain name a container created with UTS
// mode "container:X" takes: X's, as Podman records them, since the kernel
// gives it X's and inspect, HOSTNAME and /etc/hostname should say so. X
// exists (checkNamespaceTargets). ok is false for any other mode.
func (st *store) utsNames(hc *container.HostConfig) (host, domain string, ok bool, err error) {
	mode := string(hc.UTSMode)
	if !isContainerMode(mode) {
		return "", "", false, nil
	}
	other, err := st.get(strings.TrimPrefix(mode, "container:"))
	if err != nil {
		return "", "", false, err
	}
	other.mu.Lock()
	defer other.mu.Unlock()
	return other.Config.Hostname, other.Config.Domainname, true, nil
}

package volume

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"
	apivolume "github.com/moby/moby/api/types/volume"
	"golang.org/x/sys/unix"

	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/internal/atomicfile"
)

// LocalDriver is the only volume driver lodge has: directories under the
// data root, or a bind or tmpfs named by driver options.
const LocalDriver = "local"

// anonymousLabel marks volumes made for a container's unnamed mount, as
// Docker marks them; prune without all=true removes only these.
const anonymousLabel = "com.docker.volume.anonymous"

// volumeRecord is what is kept of a volume, in <root>/<name>/volume.json.
type volumeRecord struct {
	Name      string
	Driver    string
	Labels    map[string]string `json:",omitempty"`
	Options   map[string]string `json:",omitempty"`
	CreatedAt time.Time
}

func (v *volumeRecord) anonymous() bool {
	_, ok := v.Labels[anonymousLabel]
	return ok
}

// Store owns the named volumes under <data-root>/volumes and knows which
// containers use each. It is safe for concurrent use; its lock is its own
// and it calls nothing outside the package while holding it but the
// Publisher, which must not call back.
//
// A volume's state is its directory: <name>/volume.json written atomically
// after <name>/_data exists, so a crash mid-create leaves a directory
// without a record, which the next start removes; removal renames the
// directory away first, so a crash mid-removal never leaves half a volume
// that still lists.
type Store struct {
	root string
	log  *slog.Logger

	mu   sync.Mutex
	vols map[string]*volumeRecord
	// users are the containers (IDs) that reference a volume, running or
	// not: Docker refuses to remove a volume any container names.
	users map[string]map[string]bool

	events Publisher
}

// Publisher receives volume create and destroy events (the engine's
// events service fits).
type Publisher interface {
	Publish(typ events.Type, action events.Action, id string, attrs map[string]string)
}

// New opens (creating) the volume store under root; pub gets its events
// (nil drops them).
func New(root string, log *slog.Logger, pub Publisher) (*Store, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, err
	}
	v := &Store{root: root, log: log, events: pub, vols: map[string]*volumeRecord{}, users: map[string]map[string]bool{}}
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		dir := filepath.Join(root, e.Name())
		if strings.HasPrefix(e.Name(), ".") { // a removal or create a crash cut short
			removeLogged(log, dir)
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, "volume.json"))
		if errors.Is(err, fs.ErrNotExist) {
			log.Warn("removing a volume whose creation did not finish", "name", e.Name())
			removeLogged(log, dir)
			continue
		}
		var rec volumeRecord
		if err == nil {
			err = json.Unmarshal(b, &rec)
		}
		if err != nil || rec.Name != e.Name() {
			log.Warn("skipping unreadable volume record", "name", e.Name(), "err", err)
			continue
		}
		v.vols[rec.Name] = &rec
	}
	return v, nil
}

// Options is what a new volume is made from.
type Options struct {
	Name       string // "" makes an anonymous volume with a random name
	Driver     string
	DriverOpts map[string]string
	Labels     map[string]string
}

// Create makes a volume, or returns the one of that name that exists, as
// Docker does.
func (v *Store) Create(ctx context.Context, req Options) (apivolume.Volume, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	rec, err := v.createLocked(req)
	if err != nil {
		return apivolume.Volume{}, err
	}
	return v.view(rec, false), nil
}

func (v *Store) createLocked(req Options) (*volumeRecord, error) {
	if req.Driver == "" {
		req.Driver = LocalDriver
	}
	if req.Driver != LocalDriver {
		return nil, NoPlugin(req.Name, req.Driver)
	}
	if err := checkLocalOptions(req.DriverOpts); err != nil {
		return nil, err
	}
	if req.Name == "" {
		req.Name = randomHex()
		labels := map[string]string{anonymousLabel: ""} // not the caller's map
		for k, v := range req.Labels {
			labels[k] = v
		}
		req.Labels = labels
	} else if !nameRE.MatchString(req.Name) {
		return nil, errdefs.InvalidArgumentf("%q includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path", req.Name)
	}
	if rec, ok := v.vols[req.Name]; ok {
		return rec, nil
	}
	rec := &volumeRecord{Name: req.Name, Driver: req.Driver, Labels: req.Labels, Options: req.DriverOpts, CreatedAt: time.Now().UTC()}
	// Made under a hidden name and renamed into place: a crash leaves a
	// dot-directory the next start removes.
	tmp := filepath.Join(v.root, ".new-"+rec.Name)
	if err := os.RemoveAll(tmp); err != nil {
		return nil, err
	}
	if err := v.makeDir(tmp, rec); err != nil {
		removeLogged(v.log, tmp)
		return nil, err
	}
	v.vols[rec.Name] = rec
	v.publish(events.ActionCreate, rec)
	return rec, nil
}

// makeDir fills a new volume's directory: _data, and the record.
func (v *Store) makeDir(dir string, rec *volumeRecord) error {
	if err := os.MkdirAll(filepath.Join(dir, "_data"), 0o755); err != nil {
		return err
	}
	// The container's users reach _data through it.
	if err := os.Chmod(dir, 0o701); err != nil {
		return err
	}
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(dir, "volume.json"), b, 0o600); err != nil {
		return err
	}
	return os.Rename(dir, v.dir(rec.Name))
}

// removeLogged removes what a crash or a failed create left, saying so
// when it cannot.
func removeLogged(log *slog.Logger, dir string) {
	if err := os.RemoveAll(dir); err != nil {
		log.Warn("removing a volume's leftovers", "path", dir, "err", err)
	}
}

func (v *Store) publish(action events.Action, rec *volumeRecord) {
	if v.events != nil {
		v.events.Publish(events.VolumeEventType, action, rec.Name, map[string]string{"driver": rec.Driver})
	}
}

// nameRE is what a volume's name may be, as Docker's local driver has it.
var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

func randomHex() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24)
	return hex.EncodeToString(b[:])
}

func (v *Store) dir(name string) string { return filepath.Join(v.root, name) }

// Mountpoint is where the volume's own directory is (its _data), as
// inspect shows it, whether or not the volume exists.
func (v *Store) Mountpoint(name string) string { return filepath.Join(v.dir(name), "_data") }

// view is a volume in Docker's shape. Callers hold v.mu.
func (v *Store) view(rec *volumeRecord, usage bool) apivolume.Volume {
	out := apivolume.Volume{
		Name: rec.Name, Driver: rec.Driver, Labels: rec.Labels, Options: rec.Options, Scope: "local",
		Mountpoint: filepath.Join(v.dir(rec.Name), "_data"), CreatedAt: rec.CreatedAt.Format(time.RFC3339),
	}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	if out.Options == nil {
		out.Options = map[string]string{}
	}
	if usage {
		out.UsageData = &apivolume.UsageData{RefCount: int64(len(v.users[rec.Name])), Size: dirSize(out.Mountpoint)}
	}
	return out
}

// dirSize adds up the sizes of the files under dir (hard links counted
// once per name, as du --apparent-size would not; near enough for df).
func dirSize(dir string) int64 {
	var total int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				total += fi.Size()
			}
		}
		return nil
	})
	return total
}

// Inspect returns one volume.
func (v *Store) Inspect(ctx context.Context, name string) (apivolume.Volume, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	rec, ok := v.vols[name]
	if !ok {
		return apivolume.Volume{}, errdefs.NotFoundf("get %s: no such volume", name)
	}
	return v.view(rec, false), nil
}

// List returns the volumes the filters (dangling, name, label, driver)
// let through, sorted by name.
func (v *Store) List(ctx context.Context, filters map[string][]string) ([]apivolume.Volume, error) {
	if err := checkVolumeFilters(filters, "dangling", "name", "label", "driver"); err != nil {
		return nil, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	out := []apivolume.Volume{}
	for _, rec := range v.vols {
		if v.matches(rec, filters) {
			out = append(out, v.view(rec, false))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func checkVolumeFilters(f map[string][]string, allowed ...string) error {
	for k := range f {
		ok := false
		for _, a := range allowed {
			ok = ok || k == a
		}
		if !ok {
			return errdefs.InvalidArgumentf("invalid filter '%s'", k)
		}
	}
	for _, d := range f["dangling"] {
		switch d {
		case "true", "1", "false", "0":
		default:
			return errdefs.InvalidArgumentf("invalid filter 'dangling=%s'", d)
		}
	}
	return nil
}

// matches applies Docker's volume filters. Callers hold v.mu.
func (v *Store) matches(rec *volumeRecord, f map[string][]string) bool {
	for _, d := range f["dangling"] {
		if (d == "true" || d == "1") != (len(v.users[rec.Name]) == 0) {
			return false
		}
	}
	if names := f["name"]; len(names) > 0 {
		ok := false
		for _, n := range names {
			ok = ok || strings.Contains(rec.Name, n)
		}
		if !ok {
			return false
		}
	}
	if ds := f["driver"]; len(ds) > 0 {
		ok := false
		for _, d := range ds {
			ok = ok || d == rec.Driver
		}
		if !ok {
			return false
		}
	}
	return labelsMatch(rec.Labels, f["label"]) && (len(f["label!"]) == 0 || !anyLabel(rec.Labels, f["label!"]))
}

// labelsMatch is true when every "key" or "key=value" is among labels.
func labelsMatch(labels map[string]string, want []string) bool {
	for _, l := range want {
		k, val, hasV := strings.Cut(l, "=")
		got, ok := labels[k]
		if !ok || hasV && got != val {
			return false
		}
	}
	return true
}

func anyLabel(labels map[string]string, list []string) bool {
	for _, l := range list {
		if labelsMatch(labels, []string{l}) {
			return true
		}
	}
	return false
}

// Remove deletes a volume and its data. A volume a container uses is a
// conflict; force only makes a missing volume no error.
func (v *Store) Remove(ctx context.Context, name string, force bool) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.removeLocked(name, force)
}

func (v *Store) removeLocked(name string, force bool) error {
	rec, ok := v.vols[name]
	if !ok {
		if force {
			return nil
		}
		return errdefs.NotFoundf("get %s: no such volume", name)
	}
	if users := v.users[name]; len(users) > 0 {
		var ids []string
		for id := range users {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		return errdefs.Conflictf("remove %s: volume is in use - [%s]", name, strings.Join(ids, ", "))
	}
	dir := v.dir(rec.Name)
	if rec.Options["type"] == "tmpfs" {
		if err := unix.Unmount(filepath.Join(dir, "_data"), unix.MNT_DETACH); err != nil && err != unix.EINVAL {
			// EINVAL: never mounted (the volume was never used).
			v.log.Warn("unmounting a tmpfs volume", "name", name, "err", err)
		}
	}
	trash := filepath.Join(v.root, ".rm-"+rec.Name+"-"+randomHex()[:8])
	if err := os.Rename(dir, trash); err != nil {
		return fmt.Errorf("removing volume %s: %w", name, err)
	}
	delete(v.vols, name)
	delete(v.users, name)
	v.publish(events.ActionDestroy, rec)
	if err := os.RemoveAll(trash); err != nil {
		v.log.Warn("volume data left behind", "path", trash, "err", err)
	}
	return nil
}

// Prune removes the volumes no container uses: anonymous ones only, unless
// the filter all=true asks for named ones too (Docker 23's rule). Label
// filters narrow it.
func (v *Store) Prune(ctx context.Context, filters map[string][]string) (apivolume.PruneReport, error) {
	if err := checkVolumeFilters(filters, "label", "label!", "all"); err != nil {
		return apivolume.PruneReport{}, err
	}
	all := false
	for _, a := range filters["all"] {
		all = a == "true" || a == "1"
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	rep := apivolume.PruneReport{VolumesDeleted: []string{}}
	for name, rec := range v.vols {
		if len(v.users[name]) > 0 || !all && !rec.anonymous() {
			continue
		}
		if !labelsMatch(rec.Labels, filters["label"]) || len(filters["label!"]) > 0 && anyLabel(rec.Labels, filters["label!"]) {
			continue
		}
		size := dirSize(filepath.Join(v.dir(name), "_data"))
		if err := v.removeLocked(name, false); err != nil {
			v.log.Warn("prune: volume not removed", "name", name, "err", err)
			continue
		}
		rep.VolumesDeleted = append(rep.VolumesDeleted, name)
		rep.SpaceReclaimed += uint64(size)
	}
	sort.Strings(rep.VolumesDeleted)
	return rep, nil
}

// Usage lists every volume with its size and reference count, for
// /system/df.
func (v *Store) Usage(ctx context.Context) []apivolume.Volume {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := []apivolume.Volume{}
	for _, rec := range v.vols {
		out = append(out, v.view(rec, true))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// NoPlugin is Docker's answer for a volume driver no plugin
// provides (404): lodge has only the local driver and no plugins.
func NoPlugin(name, driver string) error {
	msg := fmt.Sprintf("error looking up volume plugin %s: plugin %q not found", driver, driver)
	if name != "" {
		msg = "create " + name + ": " + msg
	}
	return errdefs.NotFoundf("%s", msg)
}

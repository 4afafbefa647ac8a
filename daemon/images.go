package daemon

import (
	"context"
	"io"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/events"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/registry"

	"github.com/lodge-containers/lodge/image"
)

// Images is the image service as the API sees it: the image store, told
// which images containers use, the registry side over it (pull, push,
// login, the local registry), the archives (save, load, import) and the
// images made locally (commit, a build's steps). It embeds each so that
// the API's image routes are served by more than one type, and adds the
// events.
type Images struct {
	*image.Service
	*image.Registry
	*image.Archives
	*image.Maker
	Containers *Containers
}

// List is `docker images`, with each image's container count.
// Containers and SharedSize are -1, not counted, as in Docker's list.
func (i *Images) List(all bool, filters map[string][]string) ([]imagetypes.Summary, error) {
	return i.Service.List(image.ListOptions{All: all, Filters: filters})
}

// ListSharedSize is List with each image's SharedSize (shared-size=1).
func (i *Images) ListSharedSize(all bool, filters map[string][]string) ([]imagetypes.Summary, error) {
	return i.Service.List(image.ListOptions{All: all, Filters: filters, SharedSize: true})
}

// Remove is `docker rmi`; an image a container uses is a conflict. Each
// name taken and image deleted is announced, as Docker does.
func (i *Images) Remove(ref string, force, noPrune bool) ([]imagetypes.DeleteResponse, error) {
	id := ""
	if in, err := i.Service.Inspect(ref); err == nil {
		id = in.ID
	}
	out, err := i.Service.Remove(ref, image.RemoveOptions{Force: force, NoPrune: noPrune, UsedBy: i.Containers.recs.imageUser})
	i.announceDeletes(id, out)
	return out, err
}

// Prune is `docker image prune` with Docker's filters.
func (i *Images) Prune(filters map[string][]string) ([]imagetypes.DeleteResponse, uint64, error) {
	f, err := image.ParsePruneFilter(filters)
	if err != nil {
		return nil, 0, err
	}
	out, n, err := i.Service.PruneFiltered(f, i.Containers.recs.imageUser)
	i.announceDeletes("", out)
	return out, n, err
}

// Pull is the service's, announced with a pull event named by the
// reference.
func (i *Images) Pull(ctx context.Context, ref, platform string, auth *registry.AuthConfig, p image.ProgressSink) (string, error) {
	out, err := i.Registry.Pull(ctx, ref, image.PullOptions{Platform: platform, Auth: auth}, p)
	if err == nil {
		name := familiarName(ref)
		i.events().Publish(events.ImageEventType, events.ActionPull, name, map[string]string{"name": name})
	}
	return out, err
}

// PullAllTags is docker pull --all-tags: every tag the registry lists for
// the repository ref names, announced with one pull event for it, as
// Docker does.
func (i *Images) PullAllTags(ctx context.Context, ref, platform string, auth *registry.AuthConfig, p image.ProgressSink) error {
	_, err := i.Registry.Pull(ctx, ref, image.PullOptions{Platform: platform, Auth: auth, AllTags: true}, p)
	if err == nil {
		name := familiarName(ref)
		i.events().Publish(events.ImageEventType, events.ActionPull, name, map[string]string{"name": name})
	}
	return err
}

// OpenImportURL downloads the rootfs docker import URL names.
func (i *Images) OpenImportURL(ctx context.Context, src string, p image.ProgressSink) (io.ReadCloser, error) {
	return image.OpenImportURL(ctx, src, p)
}

// Tag is the service's, announced with a tag event on the image's ID.
func (i *Images) Tag(src, dst string) error {
	if err := i.Service.Tag(src, dst); err != nil {
		return err
	}
	id := dst
	if in, err := i.Service.Inspect(dst); err == nil {
		id = in.ID
	}
	i.events().Publish(events.ImageEventType, events.ActionTag, id, map[string]string{"name": familiarName(dst)})
	return nil
}

// announceDeletes publishes untag and delete events for what a removal
// reported; id is the image a named removal was about ("" for a prune,
// whose untagged names then go under the name itself).
func (i *Images) announceDeletes(id string, out []imagetypes.DeleteResponse) {
	for _, d := range out {
		switch {
		case d.Untagged != "" && id != "":
			i.events().Publish(events.ImageEventType, events.ActionUnTag, id, map[string]string{"name": d.Untagged})
		case d.Untagged != "":
			i.events().Publish(events.ImageEventType, events.ActionUnTag, d.Untagged, map[string]string{"name": d.Untagged})
		case d.Deleted != "":
			i.events().Publish(events.ImageEventType, events.ActionDelete, d.Deleted, map[string]string{"name": d.Deleted})
		}
	}
}

// familiarName is a reference as Docker's events name it: "mine:1", not
// "docker.io/library/mine:1" as the docker CLI sends it.
func familiarName(ref string) string {
	if n, err := image.ParseName(ref); err == nil {
		return reference.FamiliarString(n)
	}
	return ref
}

func (i *Images) events() *Events {
	if i.Containers == nil {
		return nil
	}
	return i.Containers.Events
}

// Import is `docker import`.
func (i *Images) Import(ctx context.Context, r io.Reader, ref string, changes []string, message, platform string, p image.ProgressSink) (string, error) {
	return i.Archives.Import(ctx, r, image.ImportOptions{Ref: ref, Changes: changes, Message: message, Platform: platform}, p)
}

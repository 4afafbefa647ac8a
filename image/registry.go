package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/moby/moby/api/types/registry"
	digest "github.com/opencontainers/go-digest"
	cstorage "go.podman.io/storage"

	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/version"
)

// Registry moves images between the store and registries: pull, push and
// login, and the local registry that BuildKit pulls stored images from.
// It reaches the store's records through registryStore (never a
// *Service) and holds what only it uses: the registries' configuration
// and their connections.
type Registry struct {
	images registryStore
	store  cstorage.Store // the same store, for reads that take no lock
	cfg    Config
	// transport is every registry request's: connections are reused
	// within a pull or push and across the next few, and closed when
	// idle for registryIdle instead of go-containerregistry's 90 s, so
	// a daemon at rest holds no registry's sockets and goroutines.
	transport *http.Transport
}

// registryStore is what the registry side asks of the image store
// (*Service): find an image, read and store layers, record an image and
// the digest a registry knows it by, each under the store's lock.
type registryStore interface {
	lookup(ref string) (*cstorage.Image, error)
	layerChain(img *cstorage.Image) ([]*cstorage.Layer, error)
	diff(id string) (io.ReadCloser, error)
	ensureLayer(parent, chain, diffID digest.Digest, open func() (io.ReadCloser, error)) (existed bool, err error)
	createImage(rawConfig []byte, topLayer string, names []string, manifest []byte, repoDigest string, created time.Time) (string, error)
	noteRepoDigest(img *cstorage.Image, rd string) error
	layerStager
}

// registryIdle is how long an idle registry connection is kept.
const registryIdle = 10 * time.Second

// NewRegistry returns the registry side of images, configured as the
// image service was (its Config).
func NewRegistry(images *Service) *Registry {
	tr := remote.DefaultTransport.(*http.Transport).Clone()
	tr.IdleConnTimeout = registryIdle
	return &Registry{images: images, store: images.store, cfg: images.cfg, transport: tr}
}

// Auth is the credentials a client sent (X-Registry-Auth); nil or empty
// means the user's ~/.docker/config.json and credential helpers.
type Auth = registry.AuthConfig

func authenticator(a *Auth) remote.Option {
	if a == nil || (a.Username == "" && a.Password == "" && a.Auth == "" && a.IdentityToken == "" && a.RegistryToken == "") {
		return remote.WithAuthFromKeychain(authn.DefaultKeychain)
	}
	return remote.WithAuth(authn.FromConfig(authn.AuthConfig{
		Username: a.Username, Password: a.Password, Auth: a.Auth,
		IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken,
	}))
}

// remoteRef turns a normalised name into go-containerregistry's, speaking
// plain HTTP to loopback registries (go-containerregistry's rule, as
// Docker's) and to the configured insecure ones.
func (r *Registry) remoteRef(n reference.Named, registryHost string) (name.Reference, error) {
	str := n.String()
	if registryHost != "" {
		str = registryHost + "/" + reference.Path(n)
		if t, ok := n.(reference.Tagged); ok {
			str += ":" + t.Tag()
		}
		if d, ok := n.(reference.Digested); ok {
			str += "@" + d.Digest().String()
		}
	}
	host := registryHost
	if host == "" {
		host = reference.Domain(n)
	}
	var opts []name.Option
	if r.insecure(host) {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.ParseReference(str, opts...)
	if err != nil {
		return nil, errdefs.InvalidArgumentf("invalid reference %q: %v", str, err)
	}
	return ref, nil
}

func (r *Registry) insecure(host string) bool {
	for _, h := range r.cfg.InsecureRegistries {
		if strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(h, "http://"), "https://"), "/") == host {
			return true
		}
	}
	return false
}

// fromSources runs try on each registry to ask for n (sources) until one
// succeeds, warning of each mirror that failed; the last error is the
// answer when none does.
func (r *Registry) fromSources(n reference.Named, try func(src string) error) error {
	var err error
	for _, src := range r.sources(n) {
		if err = try(src); err == nil {
			return nil
		}
		if src != "" {
			r.cfg.Log.Warn("mirror failed; trying the next source", "mirror", src, "ref", n.String(), "err", err)
		}
	}
	return err
}

// sources are the registries to try for n: the mirrors first for
// docker.io, then the registry itself.
func (r *Registry) sources(n reference.Named) []string {
	if reference.Domain(n) != "docker.io" {
		return []string{""}
	}
	var out []string
	for _, m := range r.cfg.Mirrors {
		m = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(m, "https://"), "http://"), "/")
		out = append(out, m)
	}
	return append(out, "")
}

// remoteOptions are go-containerregistry's options for one pull, push or
// look. Its jobs bound the blobs one of them has open at once, a body
// held until it is read to its end: as many as the pull downloads.
func (r *Registry) remoteOptions(ctx context.Context, a *Auth) []remote.Option {
	opts := []remote.Option{remote.WithContext(ctx), authenticator(a), remote.WithUserAgent("lodge/" + version.Version), remote.WithJobs(maxDownloads)}
	if r.transport != nil {
		opts = append(opts, remote.WithTransport(r.transport))
	}
	return opts
}

// registryError gives a registry's refusal its class. Refused credentials
// are not a 401: to the docker CLI that means "prompt for a password",
// which hangs a script; Docker answers not found for pulls too.
func registryError(op, ref string, err error) error {
	var terr *transport.Error
	if errors.As(err, &terr) {
		switch terr.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			switch op {
			case "push":
				return errdefs.PermissionDeniedf("push access denied for %s (may require 'docker login'): %v", ref, err)
			case "inspect":
				// The API reference's answer for a refused look.
				return errdefs.Unauthorizedf("access to %s denied, or it does not exist (may require 'docker login'): %v", ref, err)
			}
			return errdefs.NotFoundf("pull access denied for %s, repository does not exist or may require 'docker login': %v", ref, err)
		case http.StatusNotFound:
			return errdefs.NotFoundf("manifest for %s not found: %v", ref, err)
		}
	}
	return err
}

// Login checks credentials against a registry, for `docker login`.
func (r *Registry) Login(ctx context.Context, a Auth) (string, error) {
	host := a.ServerAddress
	host = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(host, "https://"), "http://"), "/")
	host = strings.TrimSuffix(host, "/v1")
	if host == "" || host == "index.docker.io" || host == "registry-1.docker.io" {
		host = "docker.io"
	}
	var opts []name.Option
	if r.insecure(host) {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(host, opts...)
	if err != nil {
		return "", errdefs.InvalidArgumentf("invalid registry %q: %v", a.ServerAddress, err)
	}
	auth := authn.FromConfig(authn.AuthConfig{Username: a.Username, Password: a.Password, IdentityToken: a.IdentityToken})
	tr, err := transport.NewWithContext(ctx, reg, auth, http.DefaultTransport, []string{reg.Scope(transport.PullScope)})
	if err != nil {
		return "", errdefs.Unauthorizedf("login to %s failed: %v", host, err)
	}
	url := fmt.Sprintf("%s://%s/v2/", reg.Scheme(), reg.RegistryStr())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return "", errdefs.Unauthorizedf("login to %s failed: %v", host, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", errdefs.Unauthorizedf("login attempt to %s failed with status: %s", url, resp.Status)
	}
	return "Login Succeeded", nil
}

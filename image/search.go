package image

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/moby/moby/api/types/registry"

	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/version"
)

// Docker Hub's search index, and the limits Docker puts on a search.
const (
	hubIndex           = "https://index.docker.io/v1/"
	defaultSearchLimit = 25
	maxSearchLimit     = 100
)

// Search is `docker search`: the v1 search API of Docker Hub's index, or
// of the registry the term names first ("host:port/term"), filtered by
// is-official and stars as Docker filters. is-automated is deprecated:
// true finds nothing, as in Docker.
func (r *Registry) Search(ctx context.Context, term string, limit int, filters map[string][]string, a *Auth) ([]registry.SearchResult, error) {
	official, automated, stars, err := parseSearchFilters(filters)
	if err != nil {
		return nil, err
	}
	if automated != nil && *automated {
		return []registry.SearchResult{}, nil
	}
	if limit == 0 {
		limit = defaultSearchLimit
	}
	if limit < 1 || limit > maxSearchLimit {
		return nil, errdefs.InvalidArgumentf("limit %d is outside the range of [1, %d]", limit, maxSearchLimit)
	}
	if strings.Contains(term, "://") {
		return nil, errdefs.InvalidArgumentf("invalid repository name: repository name (%s) should not have a scheme", term)
	}
	host, remote := splitSearchTerm(term)
	endpoint := hubIndex
	if host == "docker.io" {
		remote = strings.TrimPrefix(remote, "library/")
	} else if endpoint, err = r.searchEndpoint(ctx, host); err != nil {
		return nil, err
	}
	u := endpoint + "search?q=" + url.QueryEscape(remote) + "&n=" + strconv.Itoa(limit)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, http.NoBody)
	if err != nil {
		return nil, errdefs.InvalidArgumentf("searching %s: %v", host, err)
	}
	req.Header.Set("User-Agent", "lodge/"+version.Version)
	req.Header.Set("X-Docker-Token", "true")
	r.searchCredentials(req, host, a)
	resp, err := r.searchClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("searching %s: %w", host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("searching %s: unexpected status code %d", host, resp.StatusCode)
	}
	var found registry.SearchResults
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&found); err != nil {
		return nil, fmt.Errorf("searching %s: decoding the registry's answer: %w", host, err)
	}
	out := []registry.SearchResult{}
	for _, res := range found.Results {
		if official != nil && res.IsOfficial != *official {
			continue
		}
		if res.StarCount < stars {
			continue
		}
		res.IsAutomated = false //nolint:staticcheck // deprecated, always false, as Docker answers
		out = append(out, res)
	}
	return out, nil
}

// parseSearchFilters reads Docker's search filters: is-official and
// is-automated (booleans), stars (the highest of the values given).
func parseSearchFilters(filters map[string][]string) (official, automated *bool, stars int, err error) {
	boolOf := func(key string, vs []string) (*bool, error) {
		var isTrue, isFalse bool
		for _, v := range vs {
			isTrue = isTrue || v == "1" || v == "true"
			isFalse = isFalse || v == "0" || v == "false"
		}
		if isTrue == isFalse {
			return nil, errdefs.InvalidArgumentf("invalid filter '%s=%s'", key, strings.Join(vs, ","))
		}
		return &isTrue, nil
	}
	for key, vs := range filters {
		switch key {
		case "is-official":
			official, err = boolOf(key, vs)
		case "is-automated":
			automated, err = boolOf(key, vs)
		case "stars":
			for _, v := range vs {
				n, perr := strconv.Atoi(v)
				if perr != nil {
					return nil, nil, 0, errdefs.InvalidArgumentf("invalid filter 'stars=%s'", v)
				}
				stars = max(stars, n)
			}
		default:
			return nil, nil, 0, errdefs.InvalidArgumentf("invalid filter '%s'", key)
		}
		if err != nil {
			return nil, nil, 0, err
		}
	}
	return official, automated, stars, nil
}

// splitSearchTerm parts a search term into the registry to ask and what to
// ask it: the first part names a registry only if it looks like a host
// (a dot, a port, or localhost), as in Docker.
func splitSearchTerm(term string) (host, remote string) {
	first, rest, ok := strings.Cut(term, "/")
	if !ok || (!strings.ContainsAny(first, ".:") && first != "localhost") {
		return "docker.io", term
	}
	if first == "index.docker.io" || first == "registry-1.docker.io" {
		return "docker.io", rest
	}
	return first, rest
}

// searchEndpoint finds how host serves the v1 API: over HTTPS, or over
// plain HTTP where the registry may be reached insecurely (loopback and
// private addresses, as for pulls, and the configured insecure ones).
// Any answer to /v1/_ping counts, as in Docker.
func (r *Registry) searchEndpoint(ctx context.Context, host string) (string, error) {
	ping := func(scheme string) error {
		ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+host+"/v1/_ping", http.NoBody)
		if err != nil {
			return errdefs.InvalidArgumentf("invalid registry %q: %v", host, err)
		}
		resp, err := r.searchClient().Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	errHTTPS := ping("https")
	if errHTTPS == nil {
		return "https://" + host + "/v1/", nil
	}
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	if !r.plainHTTPAllowed(host) {
		return "", errdefs.InvalidArgumentf("invalid registry endpoint https://%s/v1/: %v. If this private registry supports only HTTP, add it to lodge's insecure registries", host, errHTTPS)
	}
	if err := ping("http"); err != nil {
		return "", errdefs.InvalidArgumentf("invalid registry endpoint %q. HTTPS attempt: %v. HTTP attempt: %v", host, errHTTPS, err)
	}
	return "http://" + host + "/v1/", nil
}

// plainHTTPAllowed tells whether host may be asked over plain HTTP:
// go-containerregistry's rule for pulls (loopback, localhost and private
// addresses) or the configuration's insecure registries.
func (r *Registry) plainHTTPAllowed(host string) bool {
	if r.insecure(host) {
		return true
	}
	reg, err := name.NewRegistry(host)
	return err == nil && reg.Scheme() == "http"
}

// searchCredentials sets the Authorization the user has for host: those
// the client sent, else the stored ones (docker login). They go only over
// HTTPS, or to a registry on this machine's loopback.
func (r *Registry) searchCredentials(req *http.Request, host string, a *Auth) {
	if req.URL.Scheme != "https" && !isLoopbackHost(host) {
		return
	}
	var cfg *authn.AuthConfig
	if a != nil && (a.Username != "" || a.Auth != "" || a.IdentityToken != "" || a.RegistryToken != "") {
		cfg = &authn.AuthConfig{Username: a.Username, Password: a.Password, Auth: a.Auth, IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken}
	} else if reg, err := name.NewRegistry(host); err == nil {
		if auth, err := authn.DefaultKeychain.Resolve(reg); err == nil {
			cfg, _ = auth.Authorization()
		}
	}
	if cfg == nil {
		return
	}
	switch {
	case cfg.RegistryToken != "":
		req.Header.Set("Authorization", "Bearer "+cfg.RegistryToken)
	case cfg.Username != "" || cfg.Password != "":
		req.SetBasicAuth(cfg.Username, cfg.Password)
	case cfg.Auth != "":
		req.Header.Set("Authorization", "Basic "+cfg.Auth)
	}
}

func isLoopbackHost(host string) bool {
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = strings.Trim(host, "[]")
	}
	if ip := net.ParseIP(h); ip != nil {
		return ip.IsLoopback()
	}
	return h == "localhost"
}

// searchClient is the registry transport's client. Go's client does not
// send the user's Authorization on to a redirect to another host.
func (r *Registry) searchClient() *http.Client {
	if r.transport != nil {
		return &http.Client{Transport: r.transport}
	}
	return http.DefaultClient
}

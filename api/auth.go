package api

import (
	"encoding/base64"
	"encoding/json"
	"strings"

	"github.com/moby/moby/api/types/registry"

	"github.com/lodge-containers/lodge/errdefs"
)

// decodeAuth reads the X-Registry-Auth header: base64url JSON. No header
// is nil: the daemon then uses the user's own credentials.
func decodeAuth(header string) (*registry.AuthConfig, error) {
	if header == "" {
		return nil, nil
	}
	// Clients use the URL-safe alphabet, padded or not; some the standard one.
	s := strings.NewReplacer("+", "-", "/", "_").Replace(strings.TrimRight(header, "="))
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, errdefs.InvalidArgumentf("invalid X-Registry-Auth header: %v", err)
	}
	var a registry.AuthConfig
	if err := json.NewDecoder(strings.NewReader(string(b))).Decode(&a); err != nil {
		return nil, errdefs.InvalidArgumentf("invalid X-Registry-Auth header: %v", err)
	}
	return &a, nil
}

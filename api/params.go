package api

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/lodge-containers/lodge/errdefs"
)

// boolValue reads a query flag the way Docker does: "", "0", "no",
// "false" and "none" are false.
func boolValue(r *http.Request, k string) bool {
	switch strings.ToLower(strings.TrimSpace(r.URL.Query().Get(k))) {
	case "", "0", "no", "false", "none":
		return false
	}
	return true
}

func intValue(r *http.Request, k string) (*int, error) {
	v := r.URL.Query().Get(k)
	if v == "" {
		return nil, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return nil, errdefs.InvalidArgumentf("invalid value for %s: %q", k, v)
	}
	return &n, nil
}

// filters reads Docker's filters parameter, in both its forms:
// {"status":{"exited":true}} and the old {"status":["exited"]}.
func filters(r *http.Request) (map[string][]string, error) {
	raw := r.URL.Query().Get("filters")
	out := map[string][]string{}
	if raw == "" {
		return out, nil
	}
	var modern map[string]map[string]bool
	if err := json.Unmarshal([]byte(raw), &modern); err == nil {
		for k, vs := range modern {
			for v, on := range vs {
				if on {
					out[k] = append(out[k], v)
				}
			}
		}
		return out, nil
	}
	var old map[string][]string
	if err := json.Unmarshal([]byte(raw), &old); err != nil {
		return nil, errdefs.InvalidArgumentf("invalid filter: %v", err)
	}
	return old, nil
}

// Limits on JSON request bodies (create, exec, update...): far above what
// a client sends, far below what would hurt lodged.
const (
	maxJSONBody     = 16 << 20
	jsonBodyTimeout = time.Minute
)

// decodeJSON reads a JSON request body into v as Docker's API does: no
// body (and no Content-Type) leaves v as it is; a body must say
// application/json, hold one JSON value and nothing after it. Each
// refusal is a 400 with Docker's words.
//
// A body over maxJSONBody is refused before it is read, and one that stalls
// is given up after jsonBodyTimeout (through the stallBody every request
// body is; it lifts the deadline once the body is read, since some of these
// requests go on as hijacked streams: exec start).
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	ct := r.Header.Get("Content-Type")
	empty := r.Body == nil || r.ContentLength == 0
	// As Docker: no Content-Type is fine only without a body, and any
	// Content-Type given must be JSON's, even on an empty body.
	if ct != "" || !empty {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil {
			return errdefs.InvalidArgumentf("malformed Content-Type header (%s): %v", ct, err)
		}
		if mt != "application/json" {
			return errdefs.InvalidArgumentf("unsupported Content-Type header (%s): must be 'application/json'", ct)
		}
	}
	if empty {
		return nil
	}
	if r.ContentLength > maxJSONBody {
		return errdefs.InvalidArgumentf("request body of %d bytes is larger than the %d lodge reads", r.ContentLength, maxJSONBody)
	}
	bodyDeadline(r, time.Now().Add(jsonBodyTimeout))
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJSONBody))
	if err := dec.Decode(v); err != nil {
		if err == io.EOF {
			return errdefs.InvalidArgumentf("invalid JSON: got EOF while reading request body")
		}
		return errdefs.InvalidArgumentf("invalid JSON: %v", err)
	}
	if dec.More() {
		return errdefs.InvalidArgumentf("unexpected content after JSON")
	}
	return nil
}

// unixTime reads Docker's "seconds.nanoseconds" timestamps (and RFC 3339).
func unixTime(s string) (time.Time, error) {
	if s == "" || s == "0" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	sec, frac, _ := strings.Cut(s, ".")
	n, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return time.Time{}, errdefs.InvalidArgumentf("invalid timestamp %q", s)
	}
	var ns int64
	if frac != "" {
		frac = (frac + "000000000")[:9]
		ns, _ = strconv.ParseInt(frac, 10, 64)
	}
	return time.Unix(n, ns), nil
}

// resizeParams reads a resize's h and w, both required, in uint32 range,
// refused with Docker's words.
func resizeParams(r *http.Request) (h, w uint, err error) {
	hv, err := uint32Param(r, "h")
	if err != nil {
		return 0, 0, errdefs.InvalidArgumentf("invalid resize height %q: %v", r.URL.Query().Get("h"), err)
	}
	wv, err := uint32Param(r, "w")
	if err != nil {
		return 0, 0, errdefs.InvalidArgumentf("invalid resize width %q: %v", r.URL.Query().Get("w"), err)
	}
	return uint(hv), uint(wv), nil
}

// uint32Param reads a parameter as Docker's resize does: a missing,
// signed or non-numeric value is a syntax error, a negative or too large
// one out of range.
func uint32Param(r *http.Request, name string) (uint32, error) {
	v, neg := strings.CutPrefix(r.URL.Query().Get(name), "-")
	if v == "" || v[0] == '+' {
		return 0, strconv.ErrSyntax
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return 0, errors.Unwrap(err)
	}
	if neg {
		return 0, strconv.ErrRange
	}
	return uint32(n), nil
}

// streamType is the content type of an attach, exec or logs stream:
// Docker's frames without a tty, the bytes as they are with one.
func streamType(tty bool) string {
	if tty {
		return "application/vnd.docker.raw-stream"
	}
	return "application/vnd.docker.multiplexed-stream"
}

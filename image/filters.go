package image

import (
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/reference"

	"github.com/lodge-containers/lodge/errdefs"
)

// Docker's filters of the image list and of image prune.

// imageFilter is a list's filters, read and checked once.
type imageFilter struct {
	dangling      *bool
	refs          []string // nil: no reference filter
	labels        []string
	before, since time.Time // zero: no bound
}

// listFilter reads Docker's image filters; an unknown key, a dangling
// value that is not a boolean, an unknown image for before/since or a bad
// time for until is an error, as in Docker.
func (s *Service) listFilter(filters map[string][]string) (imageFilter, error) {
	var f imageFilter
	for k, vs := range filters {
		switch k {
		case "dangling":
			for _, v := range vs {
				b, err := parseDangling(v)
				if err != nil {
					return f, err
				}
				f.dangling = &b
			}
		case "reference":
			f.refs = append([]string{}, vs...)
			for _, pat := range vs {
				if _, err := path.Match(pat, ""); err != nil {
					return f, errdefs.InvalidArgumentf("%s", err)
				}
			}
		case "label":
			f.labels = vs
		case "before", "since":
			for _, ref := range vs {
				img, err := s.lookup(ref)
				if err != nil {
					return f, err
				}
				t := img.Created
				if c, err := s.configOf(img); err == nil && c.Created != nil {
					t = *c.Created
				}
				// Several values AND together: the tightest bound wins.
				if k == "before" && (f.before.IsZero() || t.Before(f.before)) {
					f.before = t
				}
				if k == "since" && t.After(f.since) {
					f.since = t
				}
			}
		case "until":
			for _, v := range vs {
				t, err := FilterTime(v, time.Now())
				if err != nil {
					return f, err
				}
				if f.before.IsZero() || t.Before(f.before) {
					f.before = t
				}
			}
		default:
			return f, errdefs.InvalidArgumentf("invalid filter '%s'", k)
		}
	}
	return f, nil
}

// matchImage applies the filters that do not depend on names.
func (f imageFilter) matchImage(created time.Time, labels map[string]string) bool {
	if !f.before.IsZero() && !created.Before(f.before) || !f.since.IsZero() && !created.After(f.since) {
		return false
	}
	for _, l := range f.labels {
		k, v, hasV := strings.Cut(l, "=")
		got, ok := labels[k]
		if !ok || (hasV && got != v) {
			return false
		}
	}
	return true
}

// matchRefs keeps the names that match one of the reference patterns.
func (f imageFilter) matchRefs(names []string) []string {
	var out []string
	for _, n := range names {
		r := mustParse(n)
		if r == nil {
			continue
		}
		for _, pat := range f.refs {
			if m, _ := reference.FamiliarMatch(pat, r); m {
				out = append(out, n)
				break
			}
		}
	}
	return out
}

var (
	unixSeconds  = regexp.MustCompile(`^-?[0-9]+$`)
	unixFraction = regexp.MustCompile(`^[0-9]{1,9}$`)
)

// FilterTime reads a time as Docker's filters take it (until, since): a
// duration before now ("10m"), Unix seconds with optional fraction, or an
// RFC 3339 date and time (with or without zone, or a date alone).
func FilterTime(v string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil && v != "0" {
		return now.Add(-d), nil
	}
	if sec, frac, ok := strings.Cut(v, "."); unixSeconds.MatchString(sec) && (!ok || unixFraction.MatchString(frac)) {
		s, _ := strconv.ParseInt(sec, 10, 64)
		var ns int64
		if ok {
			ns, _ = strconv.ParseInt((frac + "000000000")[:9], 10, 64)
		}
		return time.Unix(s, ns), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04", "2006-01-02T15", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, v, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errdefs.InvalidArgumentf("failed to parse value as time or duration: %q", v)
}

// PruneFilter is what `docker image prune` removes: dangling images, or
// with All every unused one; of those, only the ones created before
// Until (when set) and whose labels match Labels ("k" or "k=v", each
// required) and none of NotLabels.
type PruneFilter struct {
	All               bool
	Until             time.Time
	Labels, NotLabels []string
}

// ParsePruneFilter reads Docker's image prune filters: dangling, until,
// label and label!; any other is an error, as in Docker.
func ParsePruneFilter(filters map[string][]string) (PruneFilter, error) {
	var f PruneFilter
	for k, vs := range filters {
		switch k {
		case "dangling":
			for _, v := range vs {
				b, err := parseDangling(v)
				if err != nil {
					return f, err
				}
				f.All = !b
			}
		case "until":
			for _, v := range vs {
				t, err := FilterTime(v, time.Now())
				if err != nil {
					return f, err
				}
				if f.Until.IsZero() || t.Before(f.Until) {
					f.Until = t
				}
			}
		case "label":
			f.Labels = append(f.Labels, vs...)
		case "label!":
			f.NotLabels = append(f.NotLabels, vs...)
		default:
			return f, errdefs.InvalidArgumentf("invalid filter '%s'", k)
		}
	}
	return f, nil
}

// Matches applies the until and label parts of the filter.
func (f PruneFilter) Matches(created time.Time, labels map[string]string) bool {
	if !f.Until.IsZero() && !created.Before(f.Until) {
		return false
	}
	has := func(l string) bool {
		k, v, hasV := strings.Cut(l, "=")
		got, ok := labels[k]
		return ok && (!hasV || got == v)
	}
	for _, l := range f.Labels {
		if !has(l) {
			return false
		}
	}
	for _, l := range f.NotLabels {
		if has(l) {
			return false
		}
	}
	return true
}

// ParseObjectPruneFilter reads the filters Docker takes for a prune of
// containers or networks: until, label and label!.
func ParseObjectPruneFilter(filters map[string][]string) (PruneFilter, error) {
	for k := range filters {
		switch k {
		case "until", "label", "label!":
		default:
			return PruneFilter{}, errdefs.InvalidArgumentf("invalid filter '%s'", k)
		}
	}
	return ParsePruneFilter(filters)
}

// parseDangling reads a dangling filter's value as Docker does.
func parseDangling(v string) (bool, error) {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, errdefs.InvalidArgumentf("invalid filter 'dangling=%s'", v)
	}
	return b, nil
}

package image

import (
	"testing"
	"time"
)

func TestFilterTime(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"10m":                  now.Add(-10 * time.Minute),
		"0":                    time.Unix(0, 0),
		"1700000000":           time.Unix(1700000000, 0),
		"1700000000.5":         time.Unix(1700000000, 500000000),
		"2026-11-30T10:00:00Z": time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC),
	} {
		got, err := FilterTime(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("FilterTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "yesterday", "1.2.3", "10x"} {
		if _, err := FilterTime(bad, now); err == nil {
			t.Errorf("FilterTime(%q) accepted", bad)
		}
	}
}

func TestPruneFilter(t *testing.T) {
	f, err := ParsePruneFilter(map[string][]string{"dangling": {"false"}, "until": {"2026-01-01T00:00:00Z"}, "label": {"a=1"}, "label!": {"b"}})
	if err != nil || !f.All {
		t.Fatalf("%+v %v", f, err)
	}
	old := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		created time.Time
		labels  map[string]string
		want    bool
	}{
		{old, map[string]string{"a": "1"}, true},
		{time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), map[string]string{"a": "1"}, false}, // too new
		{old, map[string]string{"a": "2"}, false},
		{old, map[string]string{"a": "1", "b": "x"}, false}, // label! b
	} {
		if got := f.Matches(tc.created, tc.labels); got != tc.want {
			t.Errorf("%v %v: %v", tc.created, tc.labels, got)
		}
	}
	for _, bad := range []map[string][]string{{"colour": {"red"}}, {"dangling": {"maybe"}}, {"until": {"soon"}}} {
		if _, err := ParsePruneFilter(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

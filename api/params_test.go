package api

import (
	"net/http/httptest"
	"testing"
)

func TestResizeParamsLikeDocker(t *testing.T) {
	for _, tc := range []struct {
		query, err string
		h, w       uint
	}{
		{"h=24&w=80", "", 24, 80},
		{"h=0&w=0", "", 0, 0},
		{"h=4294967295&w=1", "", 4294967295, 1},
		{"h=4294967296&w=80", `invalid resize height "4294967296": value out of range`, 0, 0},
		{"h=-1&w=80", `invalid resize height "-1": value out of range`, 0, 0},
		{"h=24&w=abc", `invalid resize width "abc": invalid syntax`, 0, 0},
		{"h=24", `invalid resize width "": invalid syntax`, 0, 0},
		{"h=%2B5&w=80", `invalid resize height "+5": invalid syntax`, 0, 0},
	} {
		r := httptest.NewRequest("POST", "/containers/x/resize?"+tc.query, nil)
		h, w, err := resizeParams(r)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err || statusOf(err) != 400 {
				t.Errorf("%s: %v, want %q (400)", tc.query, err, tc.err)
			}
			continue
		}
		if err != nil || h != tc.h || w != tc.w {
			t.Errorf("%s: %d %d %v", tc.query, h, w, err)
		}
	}
}

package userns

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/lodge-containers/lodge/errdefs"
)

func TestParseSubIDs(t *testing.T) {
	const file = `# site ranges
alice:100000:65536

1000:300000:1000
bob:165536:65536
alice:200000:10   # trailing comments are not allowed by shadow, but whole-line ones are
`
	tests := []struct {
		name    string
		in      string
		uid     int
		user    string
		want    []Range
		wantErr bool
	}{
		{"by name and by uid, in file order", strings.Replace(file, "   # trailing comments are not allowed by shadow, but whole-line ones are", "", 1), 1000, "alice",
			[]Range{{100000, 65536}, {300000, 1000}, {200000, 10}}, false},
		{"other user", "alice:100000:65536\nbob:165536:65536\n", 1001, "bob", []Range{{165536, 65536}}, false},
		{"numeric only", "1000:5:6\n", 1000, "", []Range{{5, 6}}, false},
		{"none", "bob:1:2\n", 1000, "alice", nil, false},
		{"empty", "", 1000, "alice", nil, false},
		{"two fields", "alice:100000\n", 1000, "alice", nil, true},
		{"four fields", "alice:1:2:3\n", 1000, "alice", nil, true},
		{"non-numeric", "alice:x:65536\n", 1000, "alice", nil, true},
		{"negative", "alice:-1:65536\n", 1000, "alice", nil, true},
		{"zero count", "alice:1:0\n", 1000, "alice", nil, true},
		{"overflow", "alice:4294967290:100\n", 1000, "alice", nil, true},
		{"malformed line of another user still fails", "bob::\nalice:1:2\n", 1000, "alice", nil, true},
		{"trailing comment", file, 1000, "alice", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSubIDs(strings.NewReader(tt.in), tt.uid, tt.user)
			if tt.wantErr {
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("err = %v, want ErrInvalidArgument", err)
				}
				if !strings.Contains(err.Error(), "line ") {
					t.Errorf("error %q does not name the line", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseGetsubids(t *testing.T) {
	got, err := parseGetsubids([]byte("0: alice 100000 65536\n1: alice 300000 10\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Range{{100000, 65536}, {300000, 10}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := parseGetsubids([]byte("garbage\n")); err == nil {
		t.Error("garbage accepted")
	}
}

func TestBuildMap(t *testing.T) {
	tests := []struct {
		name   string
		own    int
		ranges []Range
		want   string
	}{
		{"single id", 1000, nil, "0:1000:1"},
		{"one range", 1000, []Range{{100000, 65536}}, "0:1000:1,1:100000:65536"},
		{"two ranges packed", 1000, []Range{{100000, 10}, {300000, 5}}, "0:1000:1,1:100000:10,11:300000:5"},
		{"own id inside a range is split out", 1005, []Range{{1000, 10}}, "0:1005:1,1:1000:5,6:1006:4"},
		{"own id first of range", 1000, []Range{{1000, 10}}, "0:1000:1,1:1001:9"},
		{"own id last of range", 1009, []Range{{1000, 10}}, "0:1009:1,1:1000:9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := BuildMap(tt.own, tt.ranges)
			if got := FormatMap(m); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
	if n := MapSize(BuildMap(1000, []Range{{100000, 65536}})); n != 65537 {
		t.Errorf("MapSize = %d", n)
	}
}

func TestParseProcMap(t *testing.T) {
	m, err := ParseProcMap("         0       1000          1\n         1     100000      65536\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := FormatMap(m); got != "0:1000:1,1:100000:65536" {
		t.Errorf("got %s", got)
	}
	if _, err := ParseProcMap("0 1\n"); err == nil {
		t.Error("short line accepted")
	}
}

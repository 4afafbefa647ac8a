package daemon

import (
	"strings"
	"testing"
)

func TestParseLink(t *testing.T) {
	for in, want := range map[string][2]string{
		"db:data":           {"db", "data"},
		"db":                {"db", "db"},
		"/db:/web/data":     {"db", "data"},
		"/my-db:/web/my-db": {"my-db", "my-db"},
	} {
		if n, a := parseLink(in); n != want[0] || a != want[1] {
			t.Errorf("%q: %q %q, want %q", in, n, a, want)
		}
	}
}

// TestLinkEnv: Docker's legacy link variables, tcp ports first, a range
// of consecutive ports marked once the next port breaks it (after that
// port's own, in Docker's order), HOME and PATH left out.
func TestLinkEnv(t *testing.T) {
	got := linkEnv("/web/my-db", "10.0.0.2", []string{"5433/tcp", "53/udp", "5432/tcp"}, []string{"PATH=/bin", "HOME=/root", "PGUSER=me", "EMPTY="})
	want := []string{
		"MY_DB_PORT=tcp://10.0.0.2:5432",
		"MY_DB_PORT_5432_TCP=tcp://10.0.0.2:5432",
		"MY_DB_PORT_5432_TCP_ADDR=10.0.0.2",
		"MY_DB_PORT_5432_TCP_PORT=5432",
		"MY_DB_PORT_5432_TCP_PROTO=tcp",
		"MY_DB_PORT_5433_TCP=tcp://10.0.0.2:5433",
		"MY_DB_PORT_5433_TCP_ADDR=10.0.0.2",
		"MY_DB_PORT_5433_TCP_PORT=5433",
		"MY_DB_PORT_5433_TCP_PROTO=tcp",
		"MY_DB_PORT_53_UDP=udp://10.0.0.2:53",
		"MY_DB_PORT_53_UDP_ADDR=10.0.0.2",
		"MY_DB_PORT_53_UDP_PORT=53",
		"MY_DB_PORT_53_UDP_PROTO=udp",
		"MY_DB_PORT_5432_TCP_START=tcp://10.0.0.2:5432",
		"MY_DB_PORT_5432_TCP_PORT_START=5432",
		"MY_DB_PORT_5432_TCP_END=tcp://10.0.0.2:5433",
		"MY_DB_PORT_5432_TCP_PORT_END=5433",
		"MY_DB_NAME=/web/my-db",
		"MY_DB_ENV_PGUSER=me",
		"MY_DB_ENV_EMPTY=",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

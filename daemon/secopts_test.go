package daemon

import "testing"

func TestParseSecurityOpts(t *testing.T) {
	for _, tc := range []struct {
		opts    []string
		def     bool
		want    securityOpts
		wantErr bool
	}{
		{nil, true, securityOpts{noNewPrivileges: true}, false},
		{nil, false, securityOpts{}, false},
		{[]string{"no-new-privileges"}, false, securityOpts{noNewPrivileges: true}, false},
		{[]string{"no-new-privileges=false"}, true, securityOpts{}, false},
		{[]string{"no-new-privileges:false"}, true, securityOpts{}, false},
		{[]string{"no-new-privileges=1"}, false, securityOpts{noNewPrivileges: true}, false},
		{[]string{"no-new-privileges=maybe"}, true, securityOpts{}, true},
		{[]string{"seccomp=unconfined", "label=disable", "apparmor=unconfined"}, true, securityOpts{noNewPrivileges: true, seccomp: "unconfined"}, false},
		{[]string{"seccomp:{}"}, false, securityOpts{seccomp: "{}"}, false},
		{[]string{"systempaths=unconfined"}, false, securityOpts{systemPaths: true}, false},
		{[]string{"systempaths=confined"}, false, securityOpts{}, true},
		{[]string{"bogus=1"}, false, securityOpts{}, true},
		{[]string{"bogus"}, false, securityOpts{}, true},
	} {
		got, err := parseSecurityOpts(tc.opts, tc.def)
		if (err != nil) != tc.wantErr || (err == nil && got != tc.want) {
			t.Errorf("parseSecurityOpts(%q, %v) = %+v, %v; want %+v (error: %v)", tc.opts, tc.def, got, err, tc.want, tc.wantErr)
		}
	}
}

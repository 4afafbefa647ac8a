package userns

import (
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestKeepIDMap(t *testing.T) {
	// lodged's namespace: 0 is host uid 1001, 1..65536 the subordinate range.
	own := []IDMap{{ContainerID: 0, HostID: 1001, Size: 1}, {ContainerID: 1, HostID: 100000, Size: 65536}}
	got, err := KeepIDMap(own)
	if err != nil {
		t.Fatal(err)
	}
	want := []specs.LinuxIDMapping{
		{ContainerID: 1001, HostID: 0, Size: 1},        // the user is the user
		{ContainerID: 0, HostID: 1, Size: 1001},        // root and the ids below the user: subordinate ids
		{ContainerID: 1002, HostID: 1002, Size: 64535}, // the rest of the range
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("keepIDMap = %+v, want %+v", got, want)
	}
	var total uint32
	for _, m := range got {
		total += m.Size
	}
	if total != 65537 {
		t.Errorf("the map covers %d ids, lodged's namespace has 65537", total)
	}
	if _, err := KeepIDMap([]IDMap{{ContainerID: 0, HostID: 1001, Size: 1}}); err == nil {
		t.Error("keep-id without subordinate ids should fail")
	}
	if _, err := KeepIDMap([]IDMap{{ContainerID: 0, HostID: 70000, Size: 1}, {ContainerID: 1, HostID: 100000, Size: 65536}}); err == nil {
		t.Error("keep-id with a uid beyond the range should fail")
	}
}

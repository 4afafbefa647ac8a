package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"
)

func TestProgressErrorBothShapes(t *testing.T) {
	var b bytes.Buffer
	newJSONProgress(&b).Error(errors.New("pull access denied"))
	var m map[string]any
	if err := json.Unmarshal(b.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	if m["error"] != "pull access denied" {
		t.Errorf("no top-level error: %s", b.String())
	}
	if d, ok := m["errorDetail"].(map[string]any); !ok || d["message"] != "pull access denied" {
		t.Errorf("no errorDetail: %s", b.String())
	}
}

// The messages are the ones the docker CLI draws: a status line per item,
// a bar from progressDetail, free text and aux.
func TestProgressMessages(t *testing.T) {
	var b bytes.Buffer
	p := newJSONProgress(&b)
	p.Status("a1b2", "Pulling fs layer")
	p.Bytes("a1b2", "Downloading", 5, 10)
	p.Stream("Loaded image: x:1\n")
	p.Aux(map[string]any{"Digest": "sha256:00"})
	dec := json.NewDecoder(&b)
	var got []map[string]any
	for dec.More() {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatal(err)
		}
		got = append(got, m)
	}
	if len(got) != 4 {
		t.Fatalf("%d messages: %v", len(got), got)
	}
	if got[0]["id"] != "a1b2" || got[0]["status"] != "Pulling fs layer" {
		t.Errorf("status: %v", got[0])
	}
	if d, ok := got[1]["progressDetail"].(map[string]any); !ok || d["current"] != 5.0 || d["total"] != 10.0 {
		t.Errorf("bytes: %v", got[1])
	}
	if got[2]["stream"] != "Loaded image: x:1\n" {
		t.Errorf("stream: %v", got[2])
	}
	if a, ok := got[3]["aux"].(map[string]any); !ok || a["Digest"] != "sha256:00" {
		t.Errorf("aux: %v", got[3])
	}
}

func TestDecodeAuth(t *testing.T) {
	h := base64.URLEncoding.EncodeToString([]byte(`{"username":"alice","password":"p+/?","serveraddress":"r"}`))
	a, err := decodeAuth(h)
	if err != nil || a.Username != "alice" || a.Password != "p+/?" {
		t.Fatalf("%+v %v", a, err)
	}
	std := base64.StdEncoding.EncodeToString([]byte(`{"username":"bob","password":"p+/?"}`))
	if a, err := decodeAuth(std); err != nil || a.Username != "bob" {
		t.Errorf("standard alphabet: %+v %v", a, err)
	}
	if a, err := decodeAuth(""); a != nil || err != nil {
		t.Errorf("empty header: %+v %v", a, err)
	}
	if _, err := decodeAuth("!!!"); err == nil {
		t.Error("garbage accepted")
	}
}

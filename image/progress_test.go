package image

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

func TestProgressErrorBothShapes(t *testing.T) {
	var b bytes.Buffer
	NewProgress(&b).Error(errors.New("pull access denied"))
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

package api

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"k8s.io/apimachinery/pkg/runtime"

	"kedge.dev/kedge/server/registry"
)

// The one-parse path for clean bodies decides exactly as the general one:
// same object, warnings and error for clean bodies, mismatched or
// case-variant apiVersion/kind, duplicates, unknown fields, wrong types.
func TestDecodeCleanMatchesGeneral(t *testing.T) {
	var res *resource
	for _, r := range registry.CoreWithClock(time.Now) {
		if r.Group == "" && r.Resource == "events" {
			var err error
			if res, err = newResource(r); err != nil {
				t.Fatal(err)
			}
		}
	}
	if res == nil {
		t.Fatal("no core/v1 events in the registry")
	}
	bodies := []string{
		`{"apiVersion":"v1","kind":"Event","metadata":{"name":"e"},"message":"m"}`,
		`{"metadata":{"name":"e"},"message":"m"}`,
		`{"kind":"Event","metadata":{"name":"e"}}`,
		`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"e"}}`,
		`{"apiVersion":"apps/v1","kind":"Event"}`,
		`{"apiVersion":"v1","Kind":"Pod","metadata":{"name":"e"}}`,
		`{"apiVersion":"v1","kind":"Event","KIND":"Event"}`,
		`{"apiVersion":"v1","kind":"Event","\u212aind":"Pod"}`,
		`{"apiVersion":"v1","kind":"Event","kind":"Pod"}`,
		`{"apiVersion":"v1","kind":"Pod","kind":"Event"}`,
		`{"apiVersion":"v1","kind":null,"message":"m"}`,
		`{"apiVersion":"v1","kind":5}`,
		`{"apiVersion":"v1","kind":"Event","metadata":{"name":"e","bogus":1}}`,
		`{"apiVersion":"v1","kind":"Event","count":"x"}`,
		`{"apiVersion":"v1","kind":"Event",}`,
		`[]`,
	}
	for _, body := range bodies {
		for _, fv := range []fieldValidation{validationStrict, validationWarn, validationIgnore} {
			got := fmt.Sprint(decodeOutcome(decodeInto(res, []byte(body), nil, fv)))
			want := fmt.Sprint(decodeOutcome(decodeGeneral(res, []byte(body), nil, fv)))
			if got != want {
				t.Errorf("%s, %s:\n got %s\nwant %s", body, fv, got, want)
			}
		}
	}
}

func decodeOutcome(obj runtime.Object, warnings []string, err error) []any {
	var js []byte
	if obj != nil {
		js, _ = json.Marshal(obj)
	}
	return []any{string(js), warnings, err}
}

func TestReadAllSized(t *testing.T) {
	body := strings.Repeat("0123456789", 300)
	for _, announced := range []int64{-1, 0, 10, int64(len(body)), int64(len(body)) + 7, 1 << 40} {
		for name, rd := range map[string]io.Reader{"whole": strings.NewReader(body), "one byte at a time": iotest.OneByteReader(strings.NewReader(body))} {
			got, err := readAllSized(rd, announced, 1<<20)
			if err != nil || string(got) != body {
				t.Errorf("announced %d, %s: %d bytes, %v", announced, name, len(got), err)
			}
		}
	}
	if _, err := readAllSized(iotest.ErrReader(io.ErrUnexpectedEOF), 10, 100); err != io.ErrUnexpectedEOF {
		t.Errorf("read error not returned: %v", err)
	}
}

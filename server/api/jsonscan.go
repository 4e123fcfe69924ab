package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// This file reads the top level of JSON that encoding/json produced, without
// decoding it, so the write path can compare and re-serve the bytes it
// already has instead of decoding and encoding the object again. Every
// helper reports failure on input it does not expect; callers then take the
// general (decode and encode) path, so a surprise costs time, never
// correctness.

var errJSONScan = errors.New("unexpected JSON")

// skipSpace returns the index of the first non-whitespace byte at or after i.
func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index after the JSON string starting at data[i]
// (which must be '"'). A quote ends the string unless an odd number of
// backslashes precedes it; searching for quotes alone is much faster than
// walking every byte of a long value.
func skipString(data []byte, i int) (int, error) {
	if i >= len(data) || data[i] != '"' {
		return 0, errJSONScan
	}
	start := i + 1
	for j := start; j < len(data); {
		q := bytes.IndexByte(data[j:], '"')
		if q < 0 {
			return 0, errJSONScan
		}
		q += j
		backslashes := 0
		for k := q - 1; k >= start && data[k] == '\\'; k-- {
			backslashes++
		}
		if backslashes%2 == 0 {
			return q + 1, nil
		}
		j = q + 1
	}
	return 0, errJSONScan
}

// skipValue returns the index after the JSON value starting at data[i].
// It checks the nesting of objects and arrays and the ends of strings, not
// the grammar in between: its input comes from encoding/json.
func skipValue(data []byte, i int) (int, error) {
	if i >= len(data) {
		return 0, errJSONScan
	}
	switch data[i] {
	case '"':
		return skipString(data, i)
	case '{', '[':
		depth := 0
		for i < len(data) {
			switch data[i] {
			case '"':
				end, err := skipString(data, i)
				if err != nil {
					return 0, err
				}
				i = end
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, nil
				}
			}
			i++
		}
		return 0, errJSONScan
	default: // number, true, false, null
		start := i
		for i < len(data) {
			switch data[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				if i == start {
					return 0, errJSONScan
				}
				return i, nil
			}
			i++
		}
		if i == start {
			return 0, errJSONScan
		}
		return i, nil
	}
}

// member is one name/value pair of a JSON object: data[keyStart:valueEnd]
// is `"name":value`.
type member struct {
	name                           []byte // unquoted
	keyStart, valueStart, valueEnd int
}

// objectMembers lists the members of the JSON object starting at data[i]
// and returns the index of its closing brace.
func objectMembers(data []byte, i int, out []member) ([]member, int, error) {
	i = skipSpace(data, i)
	if i >= len(data) || data[i] != '{' {
		return nil, 0, errJSONScan
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return out, i, nil
	}
	for i < len(data) {
		keyStart := i
		keyEnd, err := skipString(data, i)
		if err != nil {
			return nil, 0, err
		}
		name, err := memberName(data[keyStart:keyEnd])
		if err != nil {
			return nil, 0, err
		}
		i = skipSpace(data, keyEnd)
		if i >= len(data) || data[i] != ':' {
			return nil, 0, errJSONScan
		}
		valueStart := skipSpace(data, i+1)
		valueEnd, err := skipValue(data, valueStart)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, member{name: name, keyStart: keyStart, valueStart: valueStart, valueEnd: valueEnd})
		i = skipSpace(data, valueEnd)
		if i >= len(data) {
			break
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case '}':
			return out, i, nil
		default:
			return nil, 0, errJSONScan
		}
	}
	return nil, 0, errJSONScan
}

// topMembers lists the members of the JSON object that is all of data.
func topMembers(data []byte, out []member) ([]member, error) {
	out, closing, err := objectMembers(data, 0, out)
	if err != nil {
		return nil, err
	}
	if skipSpace(data, closing+1) != len(data) {
		return nil, errJSONScan
	}
	return out, nil
}

// memberName unquotes a member name, without copying unless it has
// escapes or invalid UTF-8 (rare; never in encoding/json's output of API
// types), which are unquoted as encoding/json does.
func memberName(quoted []byte) ([]byte, error) {
	inner := quoted[1 : len(quoted)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return inner, nil
	}
	var s string
	if err := json.Unmarshal(quoted, &s); err != nil {
		return nil, errJSONScan
	}
	return []byte(s), nil
}

// specIgnored are the top-level members specChanged leaves out.
func specIgnored(name []byte) bool {
	switch string(name) {
	case "metadata", "status", "apiVersion", "kind":
		return true
	}
	return false
}

// specMembersDiffer compares two objects' JSON as specChanged defines it:
// the sets of top-level members other than metadata, status, apiVersion and
// kind, each value compared byte for byte. ok is false when the input is not
// JSON it can read, or has a member name twice (decoding into a map would
// keep the last one; such input never comes from encoding/json).
func specMembersDiffer(a, b []byte) (changed, ok bool) {
	var bufA, bufB [24]member
	ma, errA := topMembers(a, bufA[:0])
	mb, errB := topMembers(b, bufB[:0])
	if errA != nil || errB != nil || hasDuplicate(ma) || hasDuplicate(mb) {
		return false, false
	}
	// Objects have a few dozen members at most: a quadratic search is
	// cheaper than building maps.
	na, nb := 0, 0
	for _, m := range mb {
		if !specIgnored(m.name) {
			nb++
		}
	}
	for _, m := range ma {
		if specIgnored(m.name) {
			continue
		}
		na++
		found := false
		for _, o := range mb {
			if bytes.Equal(o.name, m.name) {
				found = bytes.Equal(a[m.valueStart:m.valueEnd], b[o.valueStart:o.valueEnd])
				break
			}
		}
		if !found {
			return true, true
		}
	}
	return na != nb, true
}

// hasDuplicate reports whether a member name occurs twice.
func hasDuplicate(ms []member) bool {
	for i := range ms {
		for j := i + 1; j < len(ms); j++ {
			if bytes.Equal(ms[i].name, ms[j].name) {
				return true
			}
		}
	}
	return false
}

// beforeResourceVersion are the ObjectMeta members encoding/json writes
// before resourceVersion (its field order), read from the type so a new
// apimachinery cannot silently move it.
var beforeResourceVersion = func() map[string]bool {
	names := map[string]bool{}
	t := reflect.TypeFor[metav1.ObjectMeta]()
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name == "resourceVersion" {
			return names
		}
		names[name] = true
	}
	panic("api: metav1.ObjectMeta has no resourceVersion field")
}()

// withResourceVersion returns the JSON of an object encoded without
// resourceVersion (the stored form, see resource.encode) as encoding/json
// would write it with metadata.resourceVersion set to rv: the member is
// inserted where ObjectMeta's field order puts it. ok is false when data is
// not an object with a metadata object, or already has a resourceVersion.
func withResourceVersion(data []byte, rv int64) (out []byte, ok bool) {
	var top, meta [16]member
	members, err := topMembers(data, top[:0])
	if err != nil {
		return nil, false
	}
	var md *member
	for i := range members {
		if string(members[i].name) == "metadata" {
			md = &members[i]
			break
		}
	}
	if md == nil {
		return nil, false
	}
	metaMembers, closing, err := objectMembers(data, md.valueStart, meta[:0])
	if err != nil {
		return nil, false
	}
	at, suffix, prefix := closing, "", ","
	if len(metaMembers) == 0 {
		prefix = ""
	}
	for _, m := range metaMembers {
		if string(m.name) == "resourceVersion" {
			return nil, false
		}
		if !beforeResourceVersion[string(m.name)] {
			at, suffix, prefix = m.keyStart, ",", ""
			break
		}
	}
	out = make([]byte, 0, len(data)+len(`,"resourceVersion":""`)+20)
	out = append(out, data[:at]...)
	out = append(out, prefix...)
	out = append(out, `"resourceVersion":"`...)
	out = strconv.AppendInt(out, rv, 10)
	out = append(out, '"')
	out = append(out, suffix...)
	out = append(out, data[at:]...)
	return out, true
}

package api

import (
	"bytes"
	"fmt"
	"testing"

	"kedge.dev/kedge/raftstore"
)

// A GET answered from the stored bytes of a value this server wrote is byte
// for byte the answer of decoding and encoding it, in every form a client
// may ask for, for objects with quantities, timestamps, escapes and
// non-ASCII text, after creates, updates, status writes and deletion marks.
func TestGetOfValuesWrittenHereMatchesDecoding(t *testing.T) {
	env := newTestEnv(t)
	env.createNamespace("ns")
	env.mustDo(201, "POST", "/api/v1/namespaces/ns/pods", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","labels":{"app":"x"},`+
		`"annotations":{"a":"<b>&","b":"üß \u2028  "}},"spec":{"nodeName":"n1","terminationGracePeriodSeconds":3,`+
		`"containers":[{"name":"c","image":"busybox","command":["sh","-c","echo \"}\""],`+
		`"resources":{"limits":{"cpu":"1.5","memory":"1Gi"},"requests":{"cpu":"100m"}},"env":[{"name":"X","value":"é"}]}]}}`)
	env.mustDo(200, "PUT", "/api/v1/namespaces/ns/pods/p/status",
		`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"status":{"phase":"Running","startTime":"2026-11-25T12:00:00Z","conditions":[{"type":"Ready","status":"True","lastTransitionTime":"2026-11-25T12:00:01Z"}]}}`)
	env.mustDo(201, "POST", "/api/v1/namespaces/ns/events",
		`{"apiVersion":"v1","kind":"Event","metadata":{"name":"e"},"involvedObject":{"kind":"Pod","namespace":"ns","name":"p"},"reason":"R","message":"m\tn","count":2,`+
			`"eventTime":"2026-11-25T12:00:00.123456Z","reportingComponent":"c","reportingInstance":"i","action":"A","firstTimestamp":"2026-11-25T12:00:00Z"}`)
	env.mustDo(200, "PUT", "/api/v1/namespaces/ns/events/e",
		`{"apiVersion":"v1","kind":"Event","metadata":{"name":"e"},"involvedObject":{"kind":"Pod","namespace":"ns","name":"p"},"reason":"R","message":"again","count":3}`)
	env.mustDo(200, "DELETE", "/api/v1/namespaces/ns/pods/p", "")
	paths := []string{"/api/v1/namespaces/ns", "/api/v1/namespaces/ns/pods/p", "/api/v1/namespaces/ns/pods/p/status", "/api/v1/namespaces/ns/events/e"}
	accepts := []string{"", "application/json", "application/yaml", "*/*",
		"application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
		"application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io,application/json"}
	for _, path := range paths {
		key := keyOfPath(t, env, path)
		for _, accept := range accepts {
			fast := env.mustDo(200, "GET", path, "", "Accept", accept)
			if accept == "" || accept == "application/json" || accept == "*/*" {
				if !env.srv.encoded.has(raftstore.KeyValue{Key: key, ModRevision: env.store.cur[key].ModRevision}) {
					t.Fatalf("%s: not known as written here", path)
				}
			}
			saved := env.srv.encoded
			env.srv.encoded = newEncodedHere()
			slow := env.mustDo(200, "GET", path, "", "Accept", accept)
			env.srv.encoded = saved
			if !bytes.Equal(fast.body, slow.body) || fmt.Sprint(fast.header["Content-Type"]) != fmt.Sprint(slow.header["Content-Type"]) {
				t.Errorf("GET %s (Accept %q) from stored bytes:\n%s %s\ndecoded:\n%s %s", path, accept,
					fast.header["Content-Type"], fast.body, slow.header["Content-Type"], slow.body)
			}
		}
	}
}

// keyOfPath finds the store key an object path names.
func keyOfPath(t *testing.T, env *testEnv, path string) string {
	t.Helper()
	for prefix, key := range map[string]string{
		"/api/v1/namespaces/ns/pods/p":   Key("", "pods", "ns", "p"),
		"/api/v1/namespaces/ns/events/e": Key("", "events", "ns", "e"),
		"/api/v1/namespaces/ns":          Key("", "namespaces", "", "ns"),
	} {
		if path == prefix || path == prefix+"/status" {
			return key
		}
	}
	t.Fatalf("no key for %s", path)
	return ""
}

func TestEncodedHereIsBounded(t *testing.T) {
	e := newEncodedHere()
	for i := 0; i < 2*maxEncodedHere; i++ {
		e.add(raftstore.KeyValue{Key: fmt.Sprint(i), ModRevision: int64(i)})
	}
	if len(e.revs) > maxEncodedHere {
		t.Fatalf("%d entries, bound %d", len(e.revs), maxEncodedHere)
	}
	last := fmt.Sprint(2*maxEncodedHere - 1)
	if !e.has(raftstore.KeyValue{Key: last, ModRevision: 2*maxEncodedHere - 1}) || e.has(raftstore.KeyValue{Key: last, ModRevision: 1}) {
		t.Fatal("the newest write is not known by its revision alone")
	}
}

package api

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiresource "k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// scanObjects are objects whose JSON exercises the scanner: escapes and
// brackets inside strings, nested objects and arrays, numbers, booleans,
// nulls, every ObjectMeta member, and an empty metadata.
func scanObjects() []runtime.Object {
	grace := int64(30)
	ts := metav1.NewTime(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	full := metav1.ObjectMeta{
		Name: "p", GenerateName: "p-", Namespace: "ns", SelfLink: "/x", UID: "u-1", Generation: 3,
		CreationTimestamp: ts, DeletionTimestamp: &ts, DeletionGracePeriodSeconds: &grace,
		Labels: map[string]string{"a": "b"}, Annotations: map[string]string{"q\"uote": "}{]["},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "X", Name: "o", UID: "u-2"}},
		Finalizers:      []string{"f"},
	}
	pod := func(meta metav1.ObjectMeta, image string) *corev1.Pod {
		return &corev1.Pod{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
			ObjectMeta: meta,
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: image,
				Command:   []string{"sh", "-c", `echo "}" \\ ]`},
				Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{"cpu": apiresource.MustParse("100m")}}}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, Message: "<b>&"},
		}
	}
	return []runtime.Object{
		pod(full, "busybox"),
		pod(full, "busybox:2"),
		pod(metav1.ObjectMeta{Name: "p"}, "busybox"),
		pod(metav1.ObjectMeta{Generation: 1}, "busybox"),
		pod(metav1.ObjectMeta{}, "busybox"),
		pod(metav1.ObjectMeta{UID: "u", Labels: map[string]string{"x": "y"}}, "busybox"),
		&corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "e", Namespace: "default", UID: "u-3", CreationTimestamp: ts},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "bench"}, Reason: "R", Message: "m\u2028\u00e9\t\"", Count: 2},
		&corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "e", Namespace: "default"}, Message: "other"},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns", GenerateName: "g"}, Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{"kubernetes"}}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm", SelfLink: "s"}, Data: map[string]string{"k": "[{"}, BinaryData: map[string][]byte{"b": {0, 1}}},
	}
}

func TestSpecChangedMatchesSlow(t *testing.T) {
	objs := scanObjects()
	for i, a := range objs {
		for j, b := range objs {
			if got, want := specChanged(a, b), specChangedSlow(a, b); got != want {
				t.Errorf("specChanged(#%d, #%d) = %v, the map comparison says %v", i, j, got, want)
			}
		}
	}
	// Same kind, only metadata or status differs: unchanged.
	a, b := scanObjects()[0].(*corev1.Pod), scanObjects()[0].(*corev1.Pod)
	b.Labels, b.Status.Phase = map[string]string{"z": "z"}, corev1.PodFailed
	if specChanged(a, b) {
		t.Error("metadata and status changes count as spec changes")
	}
	b.Spec.NodeName = "n"
	if !specChanged(a, b) {
		t.Error("a spec change is not seen")
	}
}

func TestWithResourceVersionMatchesEncoding(t *testing.T) {
	for i, obj := range scanObjects() {
		res := &resource{gvk: obj.GetObjectKind().GroupVersionKind()}
		stored, err := res.encode(obj)
		if err != nil {
			t.Fatal(err)
		}
		for _, rv := range []int64{2, 7, 1234567890123} {
			got, ok := withResourceVersion(stored, rv)
			if !ok {
				t.Fatalf("#%d: not spliced: %s", i, stored)
			}
			accessor(obj).SetResourceVersion(itoa(rv))
			want, err := json.Marshal(obj)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("#%d rv %d:\n got %s\nwant %s", i, rv, got, want)
			}
		}
		accessor(obj).SetResourceVersion("5")
		withRV, err := json.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := withResourceVersion(withRV, 6); ok {
			t.Errorf("#%d: a resourceVersion was added twice", i)
		}
	}
}

func TestScannerRefusesWhatItCannotRead(t *testing.T) {
	for _, in := range []string{``, `[]`, `{`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{"a":"x}`, `{"a":{"b":1}`, `{"metadata":1}`, `{"kind":"X"}`, `{"a":1}x`} {
		if _, ok := withResourceVersion([]byte(in), 1); ok {
			t.Errorf("withResourceVersion(%q) accepted it", in)
		}
	}
	for _, in := range []string{`{"a":1} `, `{ "metadata" : { "name" : "n" } }`} {
		if _, _, err := objectMembers([]byte(in), 0, nil); err != nil {
			t.Errorf("objectMembers(%q): %v", in, err)
		}
	}
	if _, ok := specMembersDiffer([]byte(`{"a":`), []byte(`{}`)); ok {
		t.Error("specMembersDiffer read truncated JSON")
	}
	changed, ok := specMembersDiffer([]byte(`{"kind":"A","spec":{"x":"\"}"}}`), []byte(`{"spec":{"x":"\"}"},"status":{}}`))
	if !ok || changed {
		t.Errorf("specMembersDiffer = %v, %v; want unchanged", changed, ok)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// FuzzTopMembers checks the scanner against encoding/json: for any valid
// JSON object it lists the same members with the same values (compared
// after compaction, since the scanner keeps the bytes as they are).
func FuzzTopMembers(f *testing.F) {
	for _, seed := range []string{`{}`, `{"a":1}`, `{"a":"\\\"","b":[1,{"c":"]}"}],"d":null}`, ` { "x" : true , "y":-1.5e3 } `, `{"\u0061":"\\"}`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var want map[string]json.RawMessage
		if json.Unmarshal(data, &want) != nil || want == nil {
			return
		}
		ms, err := topMembers(data, nil)
		if err != nil {
			t.Fatalf("topMembers(%q): %v", data, err)
		}
		got := map[string]string{}
		for _, m := range ms {
			got[string(m.name)] = string(data[m.valueStart:m.valueEnd])
		}
		if len(got) != len(want) {
			t.Fatalf("topMembers(%q): %d members, encoding/json finds %d", data, len(got), len(want))
		}
		for k, v := range want {
			var a, b bytes.Buffer
			if err := json.Compact(&a, v); err != nil {
				t.Fatal(err)
			}
			if err := json.Compact(&b, []byte(got[k])); err != nil {
				t.Fatalf("member %q = %q is not JSON: %v", k, got[k], err)
			}
			if a.String() != b.String() {
				t.Fatalf("member %q = %q, encoding/json reads %q", k, b.String(), a.String())
			}
		}
	})
}

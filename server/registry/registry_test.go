package registry

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Discovery as a Kubernetes v1.34 API server reports these kinds.
func TestCoreDiscovery(t *testing.T) {
	type disc struct {
		Kind, Singular string
		Short, Cats    []string
		Namespaced     bool
		Verbs, Subs    []string
	}
	all := []string{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
	want := map[string]disc{
		"namespaces": {"Namespace", "namespace", []string{"ns"}, nil, false,
			[]string{"create", "delete", "get", "list", "patch", "update", "watch"}, []string{"status", "finalize"}},
		"nodes":      {"Node", "node", []string{"no"}, nil, false, all, []string{"status"}},
		"pods":       {"Pod", "pod", []string{"po"}, []string{"all"}, true, all, []string{"status", "log", "binding", "exec", "attach", "portforward"}},
		"events":     {"Event", "event", []string{"ev"}, nil, true, all, nil},
		"configmaps": {"ConfigMap", "configmap", []string{"cm"}, nil, true, all, nil},
		"secrets":    {"Secret", "secret", nil, nil, true, all, nil},
	}
	got := map[string]disc{}
	for _, r := range CoreWithClock(fixedNow) {
		if r.Group != "" || r.Version != "v1" {
			t.Errorf("%s: group/version %q/%q", r.Resource, r.Group, r.Version)
		}
		got[r.Resource] = disc{r.Kind, r.SingularName, r.ShortNames, r.Categories, r.Namespaced, r.Verbs, r.Subresources}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("discovery = %+v\nwant %+v", got, want)
	}
	// Each call hands out its own slices.
	a, b := Core(), Core()
	a[0].Verbs[0] = "mutated"
	if b[0].Verbs[0] == "mutated" {
		t.Error("Core shares slices between calls")
	}
}

// sample returns a prepared, valid object of each kind.
func sample(kind string) runtime.Object {
	switch kind {
	case "Pod":
		return validPod()
	case "Node":
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}
	case "Namespace":
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns1"}}
	case "Event":
		return recorderEvent()
	case "ConfigMap":
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm1", Namespace: "default"}, Data: map[string]string{"k": "v"}}
	case "Secret":
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s1", Namespace: "default"}, Data: map[string][]byte{"k": []byte("v")}}
	}
	return nil
}

func TestCoreStrategiesAgree(t *testing.T) {
	for _, r := range CoreWithClock(fixedNow) {
		t.Run(r.Resource, func(t *testing.T) {
			obj := r.New()
			if _, ok := obj.(metav1.Object); !ok {
				t.Fatalf("New returns %T, not an object", obj)
			}
			if _, ok := r.NewList().(metav1.ListInterface); !ok {
				t.Fatalf("NewList returns %T, not a list", r.NewList())
			}
			if reflect.TypeOf(obj) != reflect.TypeOf(sample(r.Kind)) {
				t.Fatalf("New returns %T", obj)
			}
			s := r.Strategy
			o := sample(r.Kind)
			s.PrepareForCreate(o)
			if errs := s.ValidateCreate(o); len(errs) != 0 {
				t.Errorf("sample rejected: %v", errs)
			}
			cols, row := s.TableColumns(), s.TableRow(o)
			if len(cols) != len(row) {
				t.Errorf("%d columns but %d cells", len(cols), len(row))
			}
			nameCols := 0
			for i, c := range cols {
				if c.Format == "name" {
					nameCols++
					if row[i] != o.(metav1.Object).GetName() {
						t.Errorf("name cell = %v", row[i])
					}
				}
			}
			if nameCols != 1 {
				t.Errorf("%d name columns, want 1", nameCols)
			}
			f := s.Fields(o)
			if f["metadata.name"] != o.(metav1.Object).GetName() {
				t.Errorf("Fields lacks metadata.name: %v", f)
			}
			if _, ok := f["metadata.namespace"]; ok != r.Namespaced {
				t.Errorf("metadata.namespace present = %v, namespaced = %v", ok, r.Namespaced)
			}

			// Another kind's object is a wiring bug: reported, not a panic.
			other := &corev1.Service{}
			s.PrepareForCreate(other)
			s.PrepareForUpdate(other, other)
			s.PrepareForStatusUpdate(other, other)
			for _, errs := range []field.ErrorList{s.ValidateCreate(other), s.ValidateUpdate(other, other)} {
				if len(errs) != 1 || errs[0].Type != field.ErrorTypeInternal {
					t.Errorf("wrong type: errors = %v", errs)
				}
			}
			if s.Fields(other) != nil || s.TableRow(other) != nil {
				t.Error("wrong type: Fields or TableRow not nil")
			}
		})
	}
}

// TestCoreProtobuf decodes each kind's protobuf form with its
// UnmarshalProtobuf.
func TestCoreProtobuf(t *testing.T) {
	for _, r := range CoreWithClock(fixedNow) {
		t.Run(r.Resource, func(t *testing.T) {
			if r.UnmarshalProtobuf == nil {
				t.Fatal("no UnmarshalProtobuf: client-go's protobuf bodies would be refused")
			}
			o := sample(r.Kind)
			o.(metav1.Object).SetLabels(map[string]string{"app": "web"})
			data, err := o.(interface{ Marshal() ([]byte, error) }).Marshal()
			if err != nil {
				t.Fatal(err)
			}
			got := r.New()
			if err := r.UnmarshalProtobuf(got, data); err != nil {
				t.Fatal(err)
			}
			if !apiequality.Semantic.DeepEqual(got, o) {
				t.Errorf("decoded %+v\nwant %+v", got, o)
			}
		})
	}
}

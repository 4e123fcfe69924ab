package registry

import (
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
)

func newNamespaceStrategy() namespaceStrategy { return namespaceStrategy{now: fixedNow} }

func TestNamespacePrepareForCreate(t *testing.T) {
	ns := &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: "plant-a", Labels: map[string]string{"site": "a"}},
		Status:     corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating},
	}
	s := newNamespaceStrategy()
	s.PrepareForCreate(ns)
	// What `kubectl create namespace plant-a` reads back from Kubernetes.
	want := corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: "plant-a", Labels: map[string]string{"site": "a", "kubernetes.io/metadata.name": "plant-a"}},
		Spec:       corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{"kubernetes"}},
		Status:     corev1.NamespaceStatus{Phase: corev1.NamespaceActive},
	}
	if !reflect.DeepEqual(*ns, want) {
		t.Errorf("prepared = %+v\nwant %+v", *ns, want)
	}
	if errs := s.ValidateCreate(ns); len(errs) != 0 {
		t.Errorf("valid namespace rejected: %v", errs)
	}
}

func TestNamespaceValidate(t *testing.T) {
	tests := []struct {
		name string
		ns   corev1.Namespace
		want []string
	}{
		{"subdomain is not a label", corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "plant.a"}}, []string{"metadata.name: Invalid value"}},
		{"upper case", corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "Plant"}}, []string{"metadata.name: Invalid value"}},
		{"unqualified finalizer", corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a"},
			Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{"mine"}}}, []string{"spec.finalizers[0]: Invalid value"}},
		{"qualified finalizer", corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a"},
			Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{"example.com/mine"}}}, []string{}},
	}
	s := newNamespaceStrategy()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := tt.ns.DeepCopy()
			s.PrepareForCreate(ns)
			if got := errSummary(s.ValidateCreate(ns)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNamespaceUpdates(t *testing.T) {
	s := newNamespaceStrategy()
	old := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a", ResourceVersion: "4"}}
	s.PrepareForCreate(old)

	upd := old.DeepCopy()
	upd.Labels = map[string]string{"team": "x"}
	upd.Spec.Finalizers = nil
	upd.Status.Phase = corev1.NamespaceTerminating
	s.PrepareForUpdate(upd, old)
	if len(upd.Spec.Finalizers) != 1 || upd.Status.Phase != corev1.NamespaceActive || upd.Labels[corev1.LabelMetadataName] != "a" {
		t.Errorf("update = %+v", upd)
	}
	if errs := s.ValidateUpdate(upd, old); len(errs) != 0 {
		t.Errorf("label update rejected: %v", errs)
	}

	st := old.DeepCopy()
	st.Status.Phase = corev1.NamespaceTerminating
	s.PrepareForStatusUpdate(st, old)
	if got := errSummary(s.ValidateUpdate(st, old)); !reflect.DeepEqual(got, []string{"status.Phase: Invalid value"}) {
		t.Errorf("terminating without deletion: errors = %q", got)
	}
	deleting := old.DeepCopy()
	now := metav1.NewTime(fixedNow())
	deleting.DeletionTimestamp = &now
	st = deleting.DeepCopy()
	st.Status.Phase = corev1.NamespaceTerminating
	s.PrepareForStatusUpdate(st, deleting)
	if errs := s.ValidateUpdate(st, deleting); len(errs) != 0 {
		t.Errorf("terminating while deleted rejected: %v", errs)
	}

	fin := deleting.DeepCopy()
	fin.ResourceVersion = "5"
	fin.Spec.Finalizers = nil
	fin.Labels = map[string]string{"ignored": "yes"}
	PrepareNamespaceForFinalize(fin, deleting)
	if len(fin.Spec.Finalizers) != 0 || fin.Labels["ignored"] != "" || fin.ResourceVersion != "5" {
		t.Errorf("finalize = %+v", fin)
	}
}

func TestNamespaceTableAndFields(t *testing.T) {
	ns := &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-system", CreationTimestamp: metav1.NewTime(fixedNow().Add(-400 * 24 * time.Hour))},
		Status:     corev1.NamespaceStatus{Phase: corev1.NamespaceActive},
	}
	s := newNamespaceStrategy()
	if got, want := s.TableRow(ns), []interface{}{"kube-system", "Active", "400d"}; !reflect.DeepEqual(got, want) {
		t.Errorf("cells = %#v, want %#v", got, want)
	}
	if got := len(s.TableColumns()); got != 3 {
		t.Errorf("%d columns, want 3 (NAME STATUS AGE)", got)
	}
	want := fields.Set{"metadata.name": "kube-system", "status.phase": "Active", "name": "kube-system"}
	if got := s.Fields(ns); !reflect.DeepEqual(got, want) {
		t.Errorf("Fields = %v, want %v", got, want)
	}
}

package registry

import (
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
)

func newEventStrategy() eventStrategy { return eventStrategy{now: fixedNow} }

// recorderEvent is an event as client-go's record package writes it.
func recorderEvent() *corev1.Event {
	return &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: "web.17f2a3b4c5d6e7f8", Namespace: "default"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web", UID: "u-1",
			APIVersion: "v1", ResourceVersion: "42", FieldPath: "spec.containers{web}"},
		Reason:         "Pulled",
		Message:        "Successfully pulled image \"busybox\" in 1.2s\n",
		Source:         corev1.EventSource{Component: "kubelet", Host: "edge-1"},
		FirstTimestamp: metav1.NewTime(fixedNow().Add(-10 * time.Minute)),
		LastTimestamp:  metav1.NewTime(fixedNow().Add(-30 * time.Second)),
		Count:          3,
		Type:           corev1.EventTypeNormal,
	}
}

func TestEventValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*corev1.Event)
		want   []string
	}{
		{"recorder event", func(*corev1.Event) {}, []string{}},
		{"node event in default", func(e *corev1.Event) {
			e.InvolvedObject = corev1.ObjectReference{Kind: "Node", Name: "edge-1"}
		}, []string{}},
		{"namespace mismatch", func(e *corev1.Event) { e.InvolvedObject.Namespace = "other" },
			[]string{"involvedObject.namespace: Invalid value"}},
		{"cluster object in a namespace", func(e *corev1.Event) {
			e.Namespace = "apps"
			e.InvolvedObject = corev1.ObjectReference{Kind: "Node", Name: "edge-1"}
		}, []string{"involvedObject.namespace: Invalid value"}},
		{"new-style without reporter", func(e *corev1.Event) {
			e.EventTime = metav1.NewMicroTime(fixedNow())
			// Kubernetes also reports the empty controller as an invalid
			// qualified name (twice: empty, and not matching the pattern).
		}, []string{"reportingController: Required value", "reportingController: Invalid value", "reportingController: Invalid value",
			"reportingInstance: Required value", "action: Required value"}},
		{"new-style complete", func(e *corev1.Event) {
			e.EventTime = metav1.NewMicroTime(fixedNow())
			e.ReportingController = "kedge.dev/agent"
			e.ReportingInstance = "edge-1"
			e.Action = "Pulling"
		}, []string{}},
		{"new-style long reason", func(e *corev1.Event) {
			e.EventTime = metav1.NewMicroTime(fixedNow())
			e.ReportingController = "kedge.dev/agent"
			e.ReportingInstance = "edge-1"
			e.Action = "Pulling"
			e.Reason = strings.Repeat("r", 129)
		}, []string{"reason: Invalid value"}},
		{"no name", func(e *corev1.Event) { e.Name = "" }, []string{"metadata.name: Required value"}},
		{"name with slash", func(e *corev1.Event) { e.Name = "a/b" }, []string{"metadata.name: Invalid value"}},
	}
	s := newEventStrategy()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := recorderEvent()
			tt.mutate(ev)
			s.PrepareForCreate(ev)
			if got := errSummary(s.ValidateCreate(ev)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors = %q, want %q", got, tt.want)
			}
		})
	}
	old := recorderEvent()
	old.ResourceVersion = "8"
	upd := old.DeepCopy()
	upd.Count = 4
	upd.LastTimestamp = metav1.NewTime(fixedNow())
	if errs := s.ValidateUpdate(upd, old); len(errs) != 0 {
		t.Errorf("count bump rejected: %v", errs)
	}
}

func TestEventFields(t *testing.T) {
	want := fields.Set{
		"metadata.name": "web.17f2a3b4c5d6e7f8", "metadata.namespace": "default",
		"involvedObject.kind": "Pod", "involvedObject.namespace": "default", "involvedObject.name": "web",
		"involvedObject.uid": "u-1", "involvedObject.apiVersion": "v1", "involvedObject.resourceVersion": "42",
		"involvedObject.fieldPath": "spec.containers{web}", "reason": "Pulled", "reportingComponent": "",
		"source": "kubelet", "type": "Normal",
	}
	s := newEventStrategy()
	got := s.Fields(recorderEvent())
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Fields = %v\nwant %v", got, want)
	}
	// The selector kubectl describe pod uses.
	sel := fields.ParseSelectorOrDie("involvedObject.name=web,involvedObject.namespace=default,involvedObject.uid=u-1")
	if !sel.Matches(got) {
		t.Errorf("describe selector does not match")
	}
	ev := recorderEvent()
	ev.Source = corev1.EventSource{}
	ev.ReportingController = "kedge.dev/agent"
	if got := s.Fields(ev)["source"]; got != "kedge.dev/agent" {
		t.Errorf("source falls back to reportingController: got %q", got)
	}
}

// Rows follow Kubernetes' TestPrintEvent.
func TestEventTableRow(t *testing.T) {
	s := newEventStrategy()
	got := s.TableRow(recorderEvent())
	want := []interface{}{"30s", "Normal", "Pulled", "pod/web", "spec.containers{web}", "kubelet, edge-1",
		"Successfully pulled image \"busybox\" in 1.2s", "10m", int64(3), "web.17f2a3b4c5d6e7f8"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("cells = %#v\nwant    %#v", got, want)
	}

	series := &corev1.Event{
		ObjectMeta:          metav1.ObjectMeta{Name: "e2", Namespace: "default"},
		InvolvedObject:      corev1.ObjectReference{Kind: "Node"},
		Type:                corev1.EventTypeWarning,
		Reason:              "Rebooted",
		EventTime:           metav1.NewMicroTime(fixedNow().Add(-2 * time.Hour)),
		Series:              &corev1.EventSeries{Count: 5, LastObservedTime: metav1.NewMicroTime(fixedNow().Add(-5 * time.Second))},
		ReportingController: "kedge.dev/agent",
		ReportingInstance:   "edge-2",
	}
	got = s.TableRow(series)
	want = []interface{}{"5s", "Warning", "Rebooted", "node", "", "kedge.dev/agent, edge-2", "", "120m", int64(5), "e2"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("series cells = %#v\nwant    %#v", got, want)
	}

	var headers, wide []string
	for _, c := range s.TableColumns() {
		if c.Priority == 0 {
			headers = append(headers, strings.ToUpper(c.Name))
		} else {
			wide = append(wide, strings.ToUpper(c.Name))
		}
	}
	if got := strings.Join(headers, " "); got != "LAST SEEN TYPE REASON OBJECT MESSAGE" {
		t.Errorf("columns = %s", got)
	}
	if got := strings.Join(wide, " "); got != "SUBOBJECT SOURCE FIRST SEEN COUNT NAME" {
		t.Errorf("wide columns = %s", got)
	}
}

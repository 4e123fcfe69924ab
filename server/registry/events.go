package registry

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/api/validation/path"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Length limits Kubernetes puts on events that carry an eventTime.
const (
	eventReportingInstanceLengthLimit = 128
	eventActionLengthLimit            = 128
	eventReasonLengthLimit            = 128
	eventNoteLengthLimit              = 1024
)

// eventStrategy holds the decisions for core/v1 events
// (pkg/registry/core/event/strategy.go). Events have no status.
type eventStrategy struct {
	now func() time.Time
}

var _ Strategy = eventStrategy{}

func eventResource(now func() time.Time) Resource {
	return Resource{
		Version:           "v1",
		Kind:              "Event",
		Resource:          "events",
		SingularName:      "event",
		ShortNames:        []string{"ev"},
		Namespaced:        true,
		Verbs:             allVerbs(),
		New:               func() runtime.Object { return &corev1.Event{} },
		UnmarshalProtobuf: func(o runtime.Object, b []byte) error { return o.(*corev1.Event).Unmarshal(b) },
		NewList:           func() runtime.Object { return &corev1.EventList{} },
		Strategy:          eventStrategy{now: now},
	}
}

// PrepareForCreate does nothing: Kubernetes stores core/v1 events as sent.
func (eventStrategy) PrepareForCreate(runtime.Object) {}

// PrepareForUpdate does nothing: recorders update an event's count and
// lastTimestamp by writing the whole event.
func (eventStrategy) PrepareForUpdate(runtime.Object, runtime.Object) {}

// PrepareForStatusUpdate does nothing: events have no status subresource.
func (eventStrategy) PrepareForStatusUpdate(runtime.Object, runtime.Object) {}

// ValidateCreate validates an event as Kubernetes' legacy (core/v1) event
// validation does, plus a usable name.
func (eventStrategy) ValidateCreate(obj runtime.Object) field.ErrorList {
	ev, ok := obj.(*corev1.Event)
	if !ok {
		return wrongType("*v1.Event", obj)
	}
	return validateEvent(ev)
}

// ValidateUpdate validates the new event; core/v1 lets every field of an
// event change (recorders rewrite count and timestamps).
func (eventStrategy) ValidateUpdate(obj, old runtime.Object) field.ErrorList {
	ev, ok := obj.(*corev1.Event)
	if !ok {
		return wrongType("*v1.Event", obj)
	}
	oldEv, ok := old.(*corev1.Event)
	if !ok {
		return wrongType("*v1.Event", old)
	}
	errs := apivalidation.ValidateObjectMetaUpdate(&ev.ObjectMeta, &oldEv.ObjectMeta, field.NewPath("metadata"))
	return append(errs, validateEvent(ev)...)
}

// validateEvent is Kubernetes' legacyValidateEvent. Kubernetes does not
// validate a core/v1 event's metadata at all; kedge checks that the name
// can be stored (a valid path segment) and the metadata's syntax.
func validateEvent(ev *corev1.Event) field.ErrorList {
	errs := apivalidation.ValidateObjectMeta(&ev.ObjectMeta, true, path.ValidatePathSegmentName, field.NewPath("metadata"))
	nsPath := field.NewPath("involvedObject", "namespace")
	if ev.EventTime.IsZero() {
		// An old-style event: its namespace is its object's, or default for
		// cluster-scoped objects.
		if ev.InvolvedObject.Namespace == "" {
			if ev.Namespace != metav1.NamespaceNone && ev.Namespace != metav1.NamespaceDefault {
				errs = append(errs, field.Invalid(nsPath, ev.InvolvedObject.Namespace, "does not match event.namespace"))
			}
		} else if ev.Namespace != ev.InvolvedObject.Namespace {
			errs = append(errs, field.Invalid(nsPath, ev.InvolvedObject.Namespace, "does not match event.namespace"))
		}
	} else {
		if ev.InvolvedObject.Namespace == "" && ev.Namespace != metav1.NamespaceDefault && ev.Namespace != metav1.NamespaceSystem {
			errs = append(errs, field.Invalid(nsPath, ev.InvolvedObject.Namespace, "does not match event.namespace"))
		}
		if ev.ReportingController == "" {
			errs = append(errs, field.Required(field.NewPath("reportingController"), ""))
		}
		for _, msg := range validation.IsQualifiedName(ev.ReportingController) {
			errs = append(errs, field.Invalid(field.NewPath("reportingController"), ev.ReportingController, msg))
		}
		errs = append(errs, requiredWithLimit(ev.ReportingInstance, eventReportingInstanceLengthLimit, field.NewPath("reportingInstance"))...)
		errs = append(errs, requiredWithLimit(ev.Action, eventActionLengthLimit, field.NewPath("action"))...)
		errs = append(errs, requiredWithLimit(ev.Reason, eventReasonLengthLimit, field.NewPath("reason"))...)
		if len(ev.Message) > eventNoteLengthLimit {
			errs = append(errs, field.Invalid(field.NewPath("message"), "", fmt.Sprintf("can have at most %v characters", eventNoteLengthLimit)))
		}
	}
	for _, msg := range validation.IsDNS1123Subdomain(ev.Namespace) {
		errs = append(errs, field.Invalid(field.NewPath("namespace"), ev.Namespace, msg))
	}
	return errs
}

// requiredWithLimit requires a non-empty value of at most limit bytes.
func requiredWithLimit(v string, limit int, fldPath *field.Path) field.ErrorList {
	if v == "" {
		return field.ErrorList{field.Required(fldPath, "")}
	}
	if len(v) > limit {
		return field.ErrorList{field.Invalid(fldPath, "", fmt.Sprintf("can have at most %v characters", limit))}
	}
	return nil
}

// Fields returns the event fields Kubernetes lets a fieldSelector match;
// kubectl describe selects an object's events with the involvedObject ones.
func (eventStrategy) Fields(obj runtime.Object) fields.Set {
	ev, ok := obj.(*corev1.Event)
	if !ok {
		return nil
	}
	source := ev.Source.Component
	if source == "" {
		source = ev.ReportingController
	}
	set := objectMetaFields(&ev.ObjectMeta, true)
	set["involvedObject.kind"] = ev.InvolvedObject.Kind
	set["involvedObject.namespace"] = ev.InvolvedObject.Namespace
	set["involvedObject.name"] = ev.InvolvedObject.Name
	set["involvedObject.uid"] = string(ev.InvolvedObject.UID)
	set["involvedObject.apiVersion"] = ev.InvolvedObject.APIVersion
	set["involvedObject.resourceVersion"] = ev.InvolvedObject.ResourceVersion
	set["involvedObject.fieldPath"] = ev.InvolvedObject.FieldPath
	set["reason"] = ev.Reason
	set["reportingComponent"] = ev.ReportingController
	set["source"] = source
	set["type"] = ev.Type
	return set
}

// TableColumns returns kubectl's event columns: LAST SEEN TYPE REASON
// OBJECT MESSAGE, and with -o wide SUBOBJECT SOURCE FIRST SEEN COUNT NAME,
// in Kubernetes' order (the Name column comes last, with priority 1).
func (eventStrategy) TableColumns() []metav1.TableColumnDefinition {
	name := nameColumn()
	name.Priority = 1
	return []metav1.TableColumnDefinition{
		{Name: "Last Seen", Type: "string", Description: corev1.Event{}.SwaggerDoc()["lastTimestamp"]},
		{Name: "Type", Type: "string", Description: corev1.Event{}.SwaggerDoc()["type"]},
		{Name: "Reason", Type: "string", Description: corev1.Event{}.SwaggerDoc()["reason"]},
		{Name: "Object", Type: "string", Description: corev1.Event{}.SwaggerDoc()["involvedObject"]},
		{Name: "Subobject", Type: "string", Priority: 1, Description: corev1.Event{}.InvolvedObject.SwaggerDoc()["fieldPath"]},
		{Name: "Source", Type: "string", Priority: 1, Description: corev1.Event{}.SwaggerDoc()["source"]},
		{Name: "Message", Type: "string", Description: corev1.Event{}.SwaggerDoc()["message"]},
		{Name: "First Seen", Type: "string", Priority: 1, Description: corev1.Event{}.SwaggerDoc()["firstTimestamp"]},
		{Name: "Count", Type: "string", Priority: 1, Description: corev1.Event{}.SwaggerDoc()["count"]},
		name,
	}
}

// TableRow returns an event's cells as Kubernetes' printEvent does.
func (s eventStrategy) TableRow(obj runtime.Object) []interface{} {
	ev, ok := obj.(*corev1.Event)
	if !ok {
		return nil
	}
	now := s.now()
	first := HumanAge(ev.FirstTimestamp, now)
	if ev.FirstTimestamp.IsZero() {
		first = humanMicroAge(ev.EventTime, now)
	}
	last := HumanAge(ev.LastTimestamp, now)
	if ev.LastTimestamp.IsZero() {
		last = first
	}
	count := ev.Count
	if ev.Series != nil {
		last = humanMicroAge(ev.Series.LastObservedTime, now)
		count = ev.Series.Count
	} else if count == 0 {
		// Events of the events.k8s.io API that happened once carry no count.
		count = 1
	}
	target := strings.ToLower(ev.InvolvedObject.Kind)
	if ev.InvolvedObject.Name != "" {
		target += "/" + ev.InvolvedObject.Name
	}
	return []interface{}{
		last,
		ev.Type,
		ev.Reason,
		target,
		ev.InvolvedObject.FieldPath,
		eventSource(ev),
		strings.TrimSpace(ev.Message),
		first,
		int64(count),
		ev.Name,
	}
}

// eventSource renders "component, host", falling back to the reporting
// controller and instance of newer events.
func eventSource(ev *corev1.Event) string {
	component := ev.Source.Component
	if component == "" {
		component = ev.ReportingController
	}
	host := ev.Source.Host
	if host == "" {
		host = ev.ReportingInstance
	}
	if host == "" {
		return component
	}
	return component + ", " + host
}

package api

import (
	"fmt"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"kedge.dev/kedge/server/registry"
)

// bindingResource describes v1 Binding bodies for the decoder.
var bindingResource = &resource{
	Resource: registry.Resource{Version: "v1", Kind: "Binding", Resource: "bindings",
		New:               func() runtime.Object { return &corev1.Binding{} },
		UnmarshalProtobuf: func(o runtime.Object, b []byte) error { return o.(*corev1.Binding).Unmarshal(b) }},
	gvk: corev1.SchemeGroupVersion.WithKind("Binding"),
}

// serveBinding answers POST pods/<name>/binding: the scheduler's way to set
// spec.nodeName once, with the PodScheduled condition.
func (s *Server) serveBinding(w http.ResponseWriter, r *http.Request, t target) {
	dryRun, err := parseDryRun(r.URL.Query())
	if err != nil {
		s.writeError(w, r, err, t.res.gr, t.name)
		return
	}
	obj, warnings, err := s.decodeRequest(r, bindingResource)
	if err != nil {
		s.writeError(w, r, err, t.res.gr, t.name)
		return
	}
	b := obj.(*corev1.Binding)
	if err := checkBinding(t, b); err != nil {
		s.writeError(w, r, err, t.res.gr, t.name)
		return
	}
	_, err = s.update(r.Context(), t.res, t.namespace, t.name, updateSystem, func(cur runtime.Object) (runtime.Object, error) {
		pod, ok := cur.(*corev1.Pod)
		if !ok {
			return nil, fmt.Errorf("binding of %T", cur)
		}
		return s.bind(t, pod, b)
	}, dryRun)
	if err != nil {
		s.writeError(w, r, err, t.res.gr, t.name)
		return
	}
	addWarnings(w, warnings)
	s.writeObject(w, r, http.StatusCreated, &metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusSuccess,
		Code:     http.StatusCreated,
	})
}

func checkBinding(t target, b *corev1.Binding) error {
	switch {
	case b.Name == "":
		b.Name = t.name
	case b.Name != t.name:
		return apierrors.NewBadRequest("name in URL does not match name in Binding object")
	}
	if b.Namespace != "" && b.Namespace != t.namespace {
		return apierrors.NewBadRequest("namespace in URL does not match namespace in Binding object")
	}
	var errs field.ErrorList
	if b.Target.Kind != "" && b.Target.Kind != "Node" {
		errs = append(errs, field.NotSupported(field.NewPath("target", "kind"), b.Target.Kind, []string{"Node", "<empty>"}))
	}
	if b.Target.Name == "" {
		errs = append(errs, field.Required(field.NewPath("target", "name"), ""))
	}
	if len(errs) > 0 {
		return apierrors.NewInvalid(bindingResource.gvk.GroupKind(), b.Name, errs)
	}
	return nil
}

// bind assigns pod to the binding's node, as Kubernetes' assignPod does.
func (s *Server) bind(t target, pod *corev1.Pod, b *corev1.Binding) (runtime.Object, error) {
	switch {
	case b.UID != "" && b.UID != pod.UID:
		return nil, apierrors.NewConflict(t.res.gr, pod.Name, fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", b.UID, pod.UID))
	case pod.DeletionTimestamp != nil:
		return nil, apierrors.NewConflict(t.res.gr, pod.Name, fmt.Errorf("pod %s is being deleted, cannot be assigned to a host", pod.Name))
	case pod.Spec.NodeName != "":
		return nil, apierrors.NewConflict(t.res.gr, pod.Name, fmt.Errorf("pod %v is already assigned to node %q", pod.Name, pod.Spec.NodeName))
	}
	pod.Spec.NodeName = b.Target.Name
	for k, v := range b.Annotations {
		if pod.Annotations == nil {
			pod.Annotations = map[string]string{}
		}
		pod.Annotations[k] = v
	}
	now := metav1.NewTime(s.cfg.Now())
	found := false
	for i := range pod.Status.Conditions {
		c := &pod.Status.Conditions[i]
		if c.Type != corev1.PodScheduled {
			continue
		}
		found = true
		if c.Status != corev1.ConditionTrue {
			c.Status, c.LastTransitionTime, c.Reason, c.Message = corev1.ConditionTrue, now, "", ""
		}
	}
	if !found {
		pod.Status.Conditions = append(pod.Status.Conditions, corev1.PodCondition{
			Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now,
		})
	}
	pod.ResourceVersion = "" // binding has no resourceVersion precondition
	return pod, nil
}

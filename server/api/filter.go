package api

import (
	"fmt"
	"net/url"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
)

// filter is a list or watch's labelSelector and fieldSelector.
type filter struct {
	res   *resource
	label labels.Selector
	field fields.Selector
}

// parseFilter reads labelSelector and fieldSelector; a field the kind does
// not support is a 400, as in Kubernetes.
func parseFilter(res *resource, q url.Values) (*filter, error) {
	f := &filter{res: res, label: labels.Everything(), field: fields.Everything()}
	if s := q.Get("labelSelector"); s != "" {
		sel, err := labels.Parse(s)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("unable to parse requirement: %v", err))
		}
		f.label = sel
	}
	if s := q.Get("fieldSelector"); s != "" {
		sel, err := fields.ParseSelector(s)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid field selector: %v", err))
		}
		for _, req := range sel.Requirements() {
			if !res.fieldSet.Has(req.Field) {
				return nil, apierrors.NewBadRequest(fmt.Sprintf("field label not supported: %s", req.Field))
			}
		}
		f.field = sel
	}
	return f, nil
}

// empty is true when the filter lets everything through.
func (f *filter) empty() bool { return f.label.Empty() && f.field.Empty() }

// matches applies both selectors to obj.
func (f *filter) matches(obj runtime.Object) bool {
	if !f.label.Empty() && !f.label.Matches(labels.Set(accessor(obj).GetLabels())) {
		return false
	}
	if !f.field.Empty() {
		m := accessor(obj)
		// metadata.name and metadata.namespace always match, whatever the
		// strategy reports.
		set := fields.Set{"metadata.name": m.GetName()}
		for k, v := range f.res.Strategy.Fields(obj) {
			set[k] = v
		}
		if f.res.Namespaced {
			set["metadata.namespace"] = m.GetNamespace()
		}
		if !f.field.Matches(set) {
			return false
		}
	}
	return true
}

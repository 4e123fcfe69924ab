package api

import (
	"encoding/json"
	"fmt"
	"net/url"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// nameColumn is the first column of every table; kubectl expects it.
var nameColumn = metav1.TableColumnDefinition{
	Name:        "Name",
	Type:        "string",
	Format:      "name",
	Description: metav1.ObjectMeta{}.SwaggerDoc()["name"],
}

// tableOptions are the includeObject query parameter's choices.
type tableOptions struct {
	include metav1.IncludeObjectPolicy
}

func parseTableOptions(q url.Values) (tableOptions, error) {
	switch p := metav1.IncludeObjectPolicy(q.Get("includeObject")); p {
	case "":
		return tableOptions{include: metav1.IncludeMetadata}, nil
	case metav1.IncludeNone, metav1.IncludeMetadata, metav1.IncludeObject:
		return tableOptions{include: p}, nil
	default:
		return tableOptions{}, apierrors.NewBadRequest(fmt.Sprintf("includeObject: unsupported value %q: supported values are None, Metadata, Object", p))
	}
}

// columns returns the Name column followed by the kind's columns.
func (res *resource) columns() []metav1.TableColumnDefinition {
	cols := res.Strategy.TableColumns()
	if len(cols) > 0 && cols[0].Name == "Name" {
		return cols
	}
	return append([]metav1.TableColumnDefinition{nameColumn}, cols...)
}

// toTable prints objs as a Table. headers false leaves out the column
// definitions (watch events after the first).
func (res *resource) toTable(objs []runtime.Object, version string, opts tableOptions, headers bool) (*metav1.Table, error) {
	t := &metav1.Table{
		TypeMeta: metav1.TypeMeta{Kind: "Table", APIVersion: "meta.k8s.io/" + version},
		Rows:     []metav1.TableRow{},
	}
	cols := res.Strategy.TableColumns()
	prependName := len(cols) == 0 || cols[0].Name != "Name"
	if headers {
		t.ColumnDefinitions = res.columns()
	}
	for _, obj := range objs {
		m := accessor(obj)
		cells := res.Strategy.TableRow(obj)
		if prependName {
			cells = append([]interface{}{m.GetName()}, cells...)
		}
		row := metav1.TableRow{Cells: cells}
		switch opts.include {
		case metav1.IncludeMetadata:
			raw, err := json.Marshal(partialMeta(obj, version))
			if err != nil {
				return nil, fmt.Errorf("encode table row of %s: %w", m.GetName(), err)
			}
			row.Object = runtime.RawExtension{Raw: raw}
		case metav1.IncludeObject:
			raw, err := json.Marshal(obj)
			if err != nil {
				return nil, fmt.Errorf("encode table row of %s: %w", m.GetName(), err)
			}
			row.Object = runtime.RawExtension{Raw: raw}
		}
		t.Rows = append(t.Rows, row)
	}
	return t, nil
}

// partialMeta is an object's metadata alone (PartialObjectMetadata).
func partialMeta(obj runtime.Object, version string) *metav1.PartialObjectMetadata {
	m := accessor(obj)
	p := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{Kind: "PartialObjectMetadata", APIVersion: "meta.k8s.io/" + version}}
	if om, ok := m.(*metav1.ObjectMeta); ok {
		p.ObjectMeta = *om
	} else {
		p.ObjectMeta = metav1.ObjectMeta{
			Name: m.GetName(), Namespace: m.GetNamespace(), UID: m.GetUID(),
			ResourceVersion: m.GetResourceVersion(), Generation: m.GetGeneration(),
			CreationTimestamp: m.GetCreationTimestamp(), DeletionTimestamp: m.GetDeletionTimestamp(),
			DeletionGracePeriodSeconds: m.GetDeletionGracePeriodSeconds(),
			Labels:                     m.GetLabels(), Annotations: m.GetAnnotations(),
			OwnerReferences: m.GetOwnerReferences(), Finalizers: m.GetFinalizers(),
		}
	}
	return p
}

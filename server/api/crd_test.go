package api

import (
	"testing"
)

func TestNoCRDs(t *testing.T) {
	e := newTestEnv(t)
	var list struct {
		Kind  string `json:"kind"`
		Items []any  `json:"items"`
		Meta  struct {
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
	}
	e.mustDo(200, "GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", "").into(t, &list)
	if list.Kind != "CustomResourceDefinitionList" || list.Items == nil || len(list.Items) != 0 || list.Meta.ResourceVersion == "" {
		t.Fatalf("got %+v", list)
	}
	e.mustDo(404, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", "{}")
	e.mustDo(404, "GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/foo", "")
}

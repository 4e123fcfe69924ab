package api

import (
	"net/http"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// crdGV is where Kubernetes serves CustomResourceDefinitions.
var crdGV = schema.GroupVersion{Group: "apiextensions.k8s.io", Version: "v1"}

// serveNoCRDs answers a list of CustomResourceDefinitions with an empty
// list. kedge has no custom resources; kubectl's client-side validation
// lists CRDs to tell "unknown kind" from "custom kind", and without this
// answer it reports a confusing "failed to list CRDs" instead of Kubernetes'
// `no matches for kind "X" in version "Y"`.
func (s *Server) serveNoCRDs(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet || r.URL.Query().Get("watch") == "1" || r.URL.Query().Get("watch") == "true" {
		s.writeError(w, r, errNotServed(), emptyGR, "")
		return
	}
	rev, err := s.cfg.Store.Revision(r.Context())
	if err != nil {
		s.writeError(w, r, err, schema.GroupResource{Group: crdGV.Group, Resource: "customresourcedefinitions"}, "")
		return
	}
	list := struct {
		metav1.TypeMeta `json:",inline"`
		Metadata        metav1.ListMeta `json:"metadata"`
		Items           []any           `json:"items"`
	}{
		TypeMeta: metav1.TypeMeta{APIVersion: crdGV.String(), Kind: "CustomResourceDefinitionList"},
		Metadata: metav1.ListMeta{ResourceVersion: strconv.FormatInt(rev, 10)},
		Items:    []any{},
	}
	s.writeObject(w, r, http.StatusOK, list)
}

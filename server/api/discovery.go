package api

import (
	"net/http"
	"sort"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	apidiscoveryv2beta1 "k8s.io/api/apidiscovery/v2beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// subresourceInfo is what discovery says about a subresource: the kind it
// answers with and its verbs.
func subresourceInfo(res *resource, sub string) (kind string, verbs []string) {
	switch sub {
	case "status":
		return res.Kind, []string{"get", "patch", "update"}
	case "log":
		return res.Kind, []string{"get"}
	case "binding":
		return "Binding", []string{"create"}
	case "finalize":
		return res.Kind, []string{"update"}
	case "exec":
		return "PodExecOptions", []string{"create", "get"}
	case "attach":
		return "PodAttachOptions", []string{"create", "get"}
	case "portforward":
		return "PodPortForwardOptions", []string{"create", "get"}
	}
	return res.Kind, nil
}

// sortedResources returns the resources of one group version by name.
func (s *Server) sortedResources(gv schema.GroupVersion) []*resource {
	var out []*resource
	for _, res := range s.resources[gv] {
		out = append(out, res)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Resource.Resource < out[j].Resource.Resource })
	return out
}

// versionsOf returns the served versions of a group, sorted.
func (s *Server) versionsOf(group string) []string {
	var vs []string
	for gv := range s.resources {
		if gv.Group == group {
			vs = append(vs, gv.Version)
		}
	}
	sort.Strings(vs)
	return vs
}

func (s *Server) serveCoreVersions(w http.ResponseWriter, r *http.Request) {
	out, ok := negotiate(r.Header.Get("Accept"), capabilities{discovery: true})
	if !ok {
		s.writeError(w, r, errNotAcceptable(r.Header.Get("Accept")), emptyGR, "")
		return
	}
	if out.kind == outDiscovery {
		s.writeOut(w, out, http.StatusOK, s.aggregated([]string{""}, out.version), true)
		return
	}
	s.writeOut(w, out, http.StatusOK, &metav1.APIVersions{
		TypeMeta: metav1.TypeMeta{Kind: "APIVersions"},
		Versions: s.versionsOf(""),
		ServerAddressByClientCIDRs: []metav1.ServerAddressByClientCIDR{
			{ClientCIDR: "0.0.0.0/0", ServerAddress: r.Host},
		},
	}, false)
}

func (s *Server) apiGroup(group string) metav1.APIGroup {
	g := metav1.APIGroup{TypeMeta: metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"}, Name: group}
	for _, v := range s.versionsOf(group) {
		g.Versions = append(g.Versions, metav1.GroupVersionForDiscovery{GroupVersion: group + "/" + v, Version: v})
	}
	if len(g.Versions) > 0 {
		// The newest version is the preferred one; with one version per
		// group for now this is simply the only one.
		g.PreferredVersion = g.Versions[len(g.Versions)-1]
	}
	return g
}

func (s *Server) serveGroupList(w http.ResponseWriter, r *http.Request) {
	out, ok := negotiate(r.Header.Get("Accept"), capabilities{discovery: true})
	if !ok {
		s.writeError(w, r, errNotAcceptable(r.Header.Get("Accept")), emptyGR, "")
		return
	}
	if out.kind == outDiscovery {
		s.writeOut(w, out, http.StatusOK, s.aggregated(s.groups, out.version), true)
		return
	}
	list := metav1.APIGroupList{
		TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"},
		Groups:   []metav1.APIGroup{},
	}
	for _, g := range s.groups {
		ag := s.apiGroup(g)
		ag.TypeMeta = metav1.TypeMeta{}
		list.Groups = append(list.Groups, ag)
	}
	s.writeOut(w, out, http.StatusOK, &list, false)
}

func (s *Server) serveGroup(w http.ResponseWriter, r *http.Request, group string) {
	if len(s.versionsOf(group)) == 0 || group == "" {
		s.writeError(w, r, errNotServed(), emptyGR, "")
		return
	}
	g := s.apiGroup(group)
	s.writeObject(w, r, http.StatusOK, &g)
}

func (s *Server) serveResourceList(w http.ResponseWriter, r *http.Request, gv schema.GroupVersion) {
	list := metav1.APIResourceList{
		TypeMeta:     metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"},
		GroupVersion: gv.String(),
		APIResources: []metav1.APIResource{},
	}
	for _, res := range s.sortedResources(gv) {
		list.APIResources = append(list.APIResources, metav1.APIResource{
			Name:         res.Resource.Resource,
			SingularName: res.SingularName,
			Namespaced:   res.Namespaced,
			Kind:         res.Kind,
			Verbs:        metav1.Verbs(res.Verbs),
			ShortNames:   res.ShortNames,
			Categories:   res.Categories,
		})
		for _, sub := range res.Subresources {
			kind, verbs := subresourceInfo(res, sub)
			list.APIResources = append(list.APIResources, metav1.APIResource{
				Name:       res.Resource.Resource + "/" + sub,
				Namespaced: res.Namespaced,
				Kind:       kind,
				Verbs:      verbs,
			})
		}
	}
	s.writeObject(w, r, http.StatusOK, &list)
}

// aggregated builds the aggregated discovery document of the given groups
// ("" is the core group) in apidiscovery.k8s.io/<version>.
func (s *Server) aggregated(groups []string, version string) any {
	list := apidiscoveryv2.APIGroupDiscoveryList{
		TypeMeta: metav1.TypeMeta{Kind: "APIGroupDiscoveryList", APIVersion: "apidiscovery.k8s.io/" + version},
		Items:    []apidiscoveryv2.APIGroupDiscovery{},
	}
	for _, g := range groups {
		item := apidiscoveryv2.APIGroupDiscovery{ObjectMeta: metav1.ObjectMeta{Name: g}}
		vs := s.versionsOf(g)
		// Versions are listed newest (preferred) first.
		for i := len(vs) - 1; i >= 0; i-- {
			gv := schema.GroupVersion{Group: g, Version: vs[i]}
			vd := apidiscoveryv2.APIVersionDiscovery{
				Version:   vs[i],
				Resources: []apidiscoveryv2.APIResourceDiscovery{},
				Freshness: apidiscoveryv2.DiscoveryFreshnessCurrent,
			}
			for _, res := range s.sortedResources(gv) {
				scope := apidiscoveryv2.ScopeCluster
				if res.Namespaced {
					scope = apidiscoveryv2.ScopeNamespace
				}
				rd := apidiscoveryv2.APIResourceDiscovery{
					Resource:         res.Resource.Resource,
					ResponseKind:     &metav1.GroupVersionKind{Group: g, Version: vs[i], Kind: res.Kind},
					Scope:            scope,
					SingularResource: res.SingularName,
					Verbs:            res.Verbs,
					ShortNames:       res.ShortNames,
					Categories:       res.Categories,
				}
				for _, sub := range res.Subresources {
					kind, verbs := subresourceInfo(res, sub)
					rd.Subresources = append(rd.Subresources, apidiscoveryv2.APISubresourceDiscovery{
						Subresource:  sub,
						ResponseKind: &metav1.GroupVersionKind{Group: g, Version: vs[i], Kind: kind},
						Verbs:        verbs,
					})
				}
				vd.Resources = append(vd.Resources, rd)
			}
			item.Versions = append(item.Versions, vd)
		}
		list.Items = append(list.Items, item)
	}
	if version == "v2beta1" {
		return toV2beta1(list)
	}
	return &list
}

// toV2beta1 converts the v2 document to v2beta1, whose JSON shape is the
// same field for field; only apiVersion differs.
func toV2beta1(in apidiscoveryv2.APIGroupDiscoveryList) *apidiscoveryv2beta1.APIGroupDiscoveryList {
	out := &apidiscoveryv2beta1.APIGroupDiscoveryList{TypeMeta: in.TypeMeta, Items: []apidiscoveryv2beta1.APIGroupDiscovery{}}
	for _, g := range in.Items {
		og := apidiscoveryv2beta1.APIGroupDiscovery{ObjectMeta: g.ObjectMeta}
		for _, v := range g.Versions {
			ov := apidiscoveryv2beta1.APIVersionDiscovery{
				Version:   v.Version,
				Freshness: apidiscoveryv2beta1.DiscoveryFreshness(v.Freshness),
				Resources: []apidiscoveryv2beta1.APIResourceDiscovery{},
			}
			for _, r := range v.Resources {
				or := apidiscoveryv2beta1.APIResourceDiscovery{
					Resource:         r.Resource,
					ResponseKind:     r.ResponseKind,
					Scope:            apidiscoveryv2beta1.ResourceScope(r.Scope),
					SingularResource: r.SingularResource,
					Verbs:            r.Verbs,
					ShortNames:       r.ShortNames,
					Categories:       r.Categories,
				}
				for _, sr := range r.Subresources {
					or.Subresources = append(or.Subresources, apidiscoveryv2beta1.APISubresourceDiscovery{
						Subresource:  sr.Subresource,
						ResponseKind: sr.ResponseKind,
						Verbs:        sr.Verbs,
					})
				}
				ov.Resources = append(ov.Resources, or)
			}
			og.Versions = append(og.Versions, ov)
		}
		out.Items = append(out.Items, og)
	}
	return out
}

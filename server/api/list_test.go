package api

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func names(l corev1.PodList) string {
	var out []string
	for _, p := range l.Items {
		out = append(out, p.Namespace+"/"+p.Name)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func TestListSelectors(t *testing.T) {
	env := newTestEnv(t)
	env.createNamespace("a")
	env.createNamespace("b")
	env.createPod("a", "web1", `{"app":"web","tier":"fe"}`, "")
	env.createPod("a", "web2", `{"app":"web"}`, `"nodeName":"n1"`)
	env.createPod("a", "db", `{"app":"db"}`, `"nodeName":"n1"`)
	env.createPod("b", "web3", `{"app":"web"}`, "")
	tests := []struct {
		name  string
		path  string
		query url.Values
		want  string
		code  int
	}{
		{"all namespaces", "/api/v1/pods", nil, "a/db,a/web1,a/web2,b/web3", 200},
		{"one namespace", "/api/v1/namespaces/a/pods", nil, "a/db,a/web1,a/web2", 200},
		{"label equality", "/api/v1/pods", url.Values{"labelSelector": {"app=web"}}, "a/web1,a/web2,b/web3", 200},
		{"label set", "/api/v1/pods", url.Values{"labelSelector": {"app in (db),tier!=fe"}}, "a/db", 200},
		{"label exists", "/api/v1/pods", url.Values{"labelSelector": {"tier"}}, "a/web1", 200},
		{"field nodeName", "/api/v1/pods", url.Values{"fieldSelector": {"spec.nodeName=n1"}}, "a/db,a/web2", 200},
		{"field unscheduled", "/api/v1/pods", url.Values{"fieldSelector": {"spec.nodeName="}}, "a/web1,b/web3", 200},
		{"field name", "/api/v1/pods", url.Values{"fieldSelector": {"metadata.name=web3"}}, "b/web3", 200},
		{"field namespace negated", "/api/v1/pods", url.Values{"fieldSelector": {"metadata.namespace!=a"}}, "b/web3", 200},
		{"both", "/api/v1/pods", url.Values{"fieldSelector": {"spec.nodeName=n1"}, "labelSelector": {"app=web"}}, "a/web2", 200},
		{"unsupported field", "/api/v1/pods", url.Values{"fieldSelector": {"spec.bogus=1"}}, "", 400},
		{"bad label selector", "/api/v1/pods", url.Values{"labelSelector": {"a=(b"}}, "", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := env.do("GET", tt.path+"?"+tt.query.Encode(), "")
			if r.code != tt.code {
				t.Fatalf("code %d: %s", r.code, r.body)
			}
			if tt.code != 200 {
				if st := r.status(t); st.Reason != metav1.StatusReasonBadRequest {
					t.Fatalf("status %+v", st)
				}
				return
			}
			var l corev1.PodList
			r.into(t, &l)
			if got := names(l); got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
			if l.Kind != "PodList" || l.APIVersion != "v1" || l.ResourceVersion == "" {
				t.Fatalf("list meta %+v %+v", l.TypeMeta, l.ListMeta)
			}
		})
	}
}

func TestListPagination(t *testing.T) {
	env := newTestEnv(t)
	env.createNamespace("ns")
	for i := 0; i < 7; i++ {
		lbl := `{"odd":"false"}`
		if i%2 == 1 {
			lbl = `{"odd":"true"}`
		}
		env.createPod("ns", fmt.Sprintf("p%d", i), lbl, "")
	}
	var page corev1.PodList
	env.mustDo(200, "GET", "/api/v1/namespaces/ns/pods?limit=3", "").into(t, &page)
	if names(page) != "ns/p0,ns/p1,ns/p2" || page.Continue == "" || page.RemainingItemCount == nil || *page.RemainingItemCount != 4 {
		t.Fatalf("page 1: %s cont=%q remaining=%v", names(page), page.Continue, page.RemainingItemCount)
	}
	rv := page.ResourceVersion
	// A write between pages is not visible: pages read at the first page's revision.
	env.createPod("ns", "p9", "", "")
	var all []string
	all = append(all, names(page))
	for page.Continue != "" {
		cont := page.Continue
		page = corev1.PodList{}
		env.mustDo(200, "GET", "/api/v1/namespaces/ns/pods?limit=3&continue="+url.QueryEscape(cont), "").into(t, &page)
		if page.ResourceVersion != rv {
			t.Fatalf("page at %s, first at %s", page.ResourceVersion, rv)
		}
		all = append(all, names(page))
	}
	if got := strings.Join(all, ";"); got != "ns/p0,ns/p1,ns/p2;ns/p3,ns/p4,ns/p5;ns/p6" {
		t.Fatalf("pages %s", got)
	}

	// With a selector, pages fill up to the limit with matches; no remainingItemCount.
	page = corev1.PodList{}
	env.mustDo(200, "GET", "/api/v1/namespaces/ns/pods?limit=2&labelSelector=odd%3Dtrue", "").into(t, &page)
	if names(page) != "ns/p1,ns/p3" || page.Continue == "" || page.RemainingItemCount != nil {
		t.Fatalf("selector page: %s %q %v", names(page), page.Continue, page.RemainingItemCount)
	}
	cont := page.Continue
	page = corev1.PodList{}
	env.mustDo(200, "GET", "/api/v1/namespaces/ns/pods?limit=2&labelSelector=odd%3Dtrue&continue="+url.QueryEscape(cont), "").into(t, &page)
	if names(page) != "ns/p5" || page.Continue != "" {
		t.Fatalf("selector page 2: %s %q", names(page), page.Continue)
	}

	// Bad tokens and combinations.
	env.mustDo(400, "GET", "/api/v1/namespaces/ns/pods?continue=garbage", "")
	env.mustDo(400, "GET", "/api/v1/namespaces/ns/pods?continue="+url.QueryEscape(cont)+"&resourceVersion=5", "")

	// A continue token older than the compaction: 410 with an inconsistent continue token.
	head, _ := env.store.Revision(context.Background())
	_ = env.store.Compact(context.Background(), head)
	page = corev1.PodList{}
	env.mustDo(200, "GET", "/api/v1/namespaces/ns/pods?limit=3", "").into(t, &page)
	env.createPod("ns", "p10", "", "")
	_ = env.store.Compact(context.Background(), head+1)
	r := env.mustDo(410, "GET", "/api/v1/namespaces/ns/pods?limit=3&continue="+url.QueryEscape(page.Continue), "")
	st := r.status(t)
	if st.Reason != metav1.StatusReasonExpired || st.Continue == "" {
		t.Fatalf("expired continue: %+v", st)
	}
	page = corev1.PodList{}
	env.mustDo(200, "GET", "/api/v1/namespaces/ns/pods?limit=3&continue="+url.QueryEscape(st.Continue), "").into(t, &page)
	if names(page) != "ns/p3,ns/p4,ns/p5" {
		t.Fatalf("inconsistent continue: %s", names(page))
	}
}

func TestListResourceVersionSemantics(t *testing.T) {
	env := newTestEnv(t)
	env.createNamespace("ns")
	p := env.createPod("ns", "a", "", "")
	first := p.ResourceVersion
	env.createPod("ns", "b", "", "")
	head, _ := env.store.Revision(context.Background())
	tests := []struct {
		name  string
		query string
		code  int
		want  string
	}{
		{"latest", "", 200, "ns/a,ns/b"},
		{"any", "resourceVersion=0", 200, "ns/a,ns/b"},
		{"exact old", "resourceVersion=" + first + "&resourceVersionMatch=Exact", 200, "ns/a"},
		{"legacy exact with limit", "resourceVersion=" + first + "&limit=10", 200, "ns/a"},
		{"not older than", "resourceVersion=" + first + "&resourceVersionMatch=NotOlderThan", 200, "ns/a,ns/b"},
		{"legacy not older than", "resourceVersion=" + first, 200, "ns/a,ns/b"},
		{"too large", fmt.Sprintf("resourceVersion=%d&resourceVersionMatch=NotOlderThan", head+100), 504, ""},
		{"exact future", fmt.Sprintf("resourceVersion=%d&resourceVersionMatch=Exact", head+100), 504, ""},
		{"match without rv", "resourceVersionMatch=Exact", 400, ""},
		{"exact zero", "resourceVersion=0&resourceVersionMatch=Exact", 400, ""},
		{"bad match", "resourceVersion=1&resourceVersionMatch=Sometime", 400, ""},
		{"bad rv", "resourceVersion=abc", 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := env.do("GET", "/api/v1/namespaces/ns/pods?"+tt.query, "")
			if r.code != tt.code {
				t.Fatalf("code %d: %s", r.code, r.body)
			}
			if tt.code != 200 {
				r.status(t)
				return
			}
			var l corev1.PodList
			r.into(t, &l)
			if names(l) != tt.want {
				t.Fatalf("got %s want %s", names(l), tt.want)
			}
		})
	}
	_ = env.store.Compact(context.Background(), head)
	st := env.mustDo(410, "GET", "/api/v1/namespaces/ns/pods?resourceVersionMatch=Exact&resourceVersion="+first, "").status(t)
	if st.Reason != metav1.StatusReasonExpired {
		t.Fatalf("compacted exact list: %+v", st)
	}
}

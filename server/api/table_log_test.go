package api

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestNegotiation(t *testing.T) {
	env := newTestEnv(t)
	env.createNamespace("ns")
	env.createPod("ns", "a", "", "")
	env.createPod("ns", "b", "", "")
	kubectlTable := "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
	tests := []struct {
		name   string
		path   string
		accept string
		code   int
		ct     string
		check  func(t *testing.T, body []byte)
	}{
		{"plain json", "/api/v1/namespaces/ns/pods/a", "", 200, "application/json", nil},
		{"protobuf falls back to json", "/api/v1/namespaces/ns/pods/a", "application/vnd.kubernetes.protobuf, */*", 200, "application/json", nil},
		{"protobuf only", "/api/v1/namespaces/ns/pods/a", "application/vnd.kubernetes.protobuf", 406, "application/json", nil},
		{"yaml", "/api/v1/namespaces/ns/pods/a", "application/yaml", 200, "application/yaml", func(t *testing.T, b []byte) {
			if !strings.Contains(string(b), "kind: Pod\n") {
				t.Fatalf("yaml body %s", b)
			}
		}},
		{"table get", "/api/v1/namespaces/ns/pods/a", kubectlTable, 200, "application/json;as=Table;v=v1;g=meta.k8s.io", func(t *testing.T, b []byte) {
			var tb metav1.Table
			_ = json.Unmarshal(b, &tb)
			if tb.Kind != "Table" || tb.APIVersion != "meta.k8s.io/v1" || tb.ColumnDefinitions[0].Name != "Name" || len(tb.Rows) != 1 || tb.Rows[0].Cells[0] != "a" {
				t.Fatalf("table %s", b)
			}
			var pm metav1.PartialObjectMetadata
			_ = json.Unmarshal(tb.Rows[0].Object.Raw, &pm)
			if pm.Kind != "PartialObjectMetadata" || pm.Namespace != "ns" || tb.ResourceVersion == "" {
				t.Fatalf("row object %s", tb.Rows[0].Object.Raw)
			}
		}},
		{"table v1beta1 list with object", "/api/v1/pods?includeObject=Object", "application/json;as=Table;v=v1beta1;g=meta.k8s.io", 200,
			"application/json;as=Table;v=v1beta1;g=meta.k8s.io", func(t *testing.T, b []byte) {
				var tb metav1.Table
				_ = json.Unmarshal(b, &tb)
				if tb.APIVersion != "meta.k8s.io/v1beta1" || len(tb.Rows) != 2 || tb.ResourceVersion == "" {
					t.Fatalf("table %s", b)
				}
				var p corev1.Pod
				_ = json.Unmarshal(tb.Rows[1].Object.Raw, &p)
				if p.Kind != "Pod" || p.Name != "b" || len(p.Spec.Containers) != 1 {
					t.Fatalf("row object %s", tb.Rows[1].Object.Raw)
				}
			}},
		{"table without objects", "/api/v1/pods?includeObject=None", kubectlTable, 200, "", func(t *testing.T, b []byte) {
			var tb metav1.Table
			_ = json.Unmarshal(b, &tb)
			if len(tb.Rows) != 2 || tb.Rows[0].Object.Raw != nil {
				t.Fatalf("table %s", b)
			}
		}},
		{"bad includeObject", "/api/v1/pods?includeObject=All", kubectlTable, 400, "", nil},
		{"partial list", "/api/v1/pods", "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json", 200, "", func(t *testing.T, b []byte) {
			var l metav1.PartialObjectMetadataList
			_ = json.Unmarshal(b, &l)
			if l.Kind != "PartialObjectMetadataList" || len(l.Items) != 2 || l.Items[0].Name != "a" {
				t.Fatalf("partial list %s", b)
			}
		}},
		{"unknown as= falls through", "/api/v1/namespaces/ns/pods/a", "application/json;as=Thing;v=v1;g=x,application/json", 200, "application/json", nil},
		{"discovery accept on a resource", "/api/v1/namespaces/ns/pods/a", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList", 406, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := env.do("GET", tt.path, "", "Accept", tt.accept)
			if r.code != tt.code {
				t.Fatalf("code %d: %s", r.code, r.body)
			}
			if tt.ct != "" && r.header.Get("Content-Type") != tt.ct {
				t.Fatalf("content type %q", r.header.Get("Content-Type"))
			}
			if tt.check != nil {
				tt.check(t, r.body)
			}
		})
	}
}

func TestPodLogs(t *testing.T) {
	env := newTestEnv(t)
	env.createNamespace("ns")
	env.mustDo(201, "POST", "/api/v1/nodes", `{"apiVersion":"v1","kind":"Node","metadata":{"name":"n1"}}`)
	env.createPod("ns", "one", "", `"nodeName":"n1"`)
	env.createPod("ns", "unbound", "", "")
	env.mustDo(201, "POST", "/api/v1/namespaces/ns/pods", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"two"},`+
		`"spec":{"nodeName":"n1","initContainers":[{"name":"init","image":"i"}],"containers":[{"name":"a","image":"i"},{"name":"waiting","image":"i"}]}}`)
	env.createPod("ns", "lost", "", `"nodeName":"n9"`)
	tests := []struct {
		name string
		path string
		code int
		body string
	}{
		{"only container", "one/log", 200, "log of ns/one/c query=\n"},
		{"params passed", "one/log?tailLines=5&timestamps=true&container=c", 200, "log of ns/one/c query=tailLines=5&timestamps=true\n"},
		{"needs container", "two/log", 400, "a container name must be specified for pod two, choose one of: [a waiting] or one of the init containers: [init]"},
		{"unknown container", "two/log?container=zz", 400, "container zz is not valid for pod two"},
		{"upstream error passes through", "two/log?container=waiting", 400, `container "waiting" in pod "two" is waiting to start: ContainerCreating`},
		{"unbound is empty", "unbound/log", 200, ""},
		{"bad tailLines", "one/log?tailLines=-1", 400, "tailLines"},
		{"since both", "one/log?sinceSeconds=5&sinceTime=2026-01-01T00:00:00Z", 400, "at most one"},
		{"missing node", "lost/log", 404, `nodes "n9" not found`},
		{"missing pod", "nope/log", 404, `pods "nope" not found`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := env.do("GET", "/api/v1/namespaces/ns/pods/"+tt.path, "")
			if r.code != tt.code {
				t.Fatalf("code %d: %s", r.code, r.body)
			}
			if tt.code == 200 {
				if string(r.body) != tt.body {
					t.Fatalf("body %q", r.body)
				}
				return
			}
			if st := r.status(t); !strings.Contains(st.Message, tt.body) {
				t.Fatalf("message %q", st.Message)
			}
		})
	}
	// follow streams line by line.
	req, _ := http.NewRequest("GET", env.http.URL+"/api/v1/namespaces/ns/pods/one/log?follow=true", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if strings.Join(lines, "|") != "log of ns/one/c query=follow=true|second line" {
		t.Fatalf("follow lines %q", lines)
	}
}

func TestBinding(t *testing.T) {
	env := newTestEnv(t)
	env.createNamespace("ns")
	env.createPod("ns", "p", "", "")
	bind := func(body string) response {
		return env.do("POST", "/api/v1/namespaces/ns/pods/p/binding", body)
	}
	if r := bind(`{"apiVersion":"v1","kind":"Binding","metadata":{"name":"other"},"target":{"name":"n1"}}`); r.code != 400 {
		t.Fatalf("name mismatch: %d", r.code)
	}
	if r := bind(`{"apiVersion":"v1","kind":"Binding","metadata":{"name":"p"},"target":{"kind":"Pod","name":"n1"}}`); r.code != 422 {
		t.Fatalf("target kind: %d", r.code)
	}
	r := bind(`{"apiVersion":"v1","kind":"Binding","metadata":{"name":"p","annotations":{"sched":"yes"}},"target":{"kind":"Node","name":"n1"}}`)
	if r.code != 201 || r.status(t).Status != metav1.StatusSuccess {
		t.Fatalf("bind: %d %s", r.code, r.body)
	}
	var p corev1.Pod
	env.mustDo(200, "GET", "/api/v1/namespaces/ns/pods/p", "").into(t, &p)
	if p.Spec.NodeName != "n1" || p.Annotations["sched"] != "yes" || len(p.Status.Conditions) != 1 ||
		p.Status.Conditions[0].Type != corev1.PodScheduled || p.Status.Conditions[0].Status != corev1.ConditionTrue {
		t.Fatalf("bound pod %+v %+v", p.Spec.NodeName, p.Status.Conditions)
	}
	r = bind(`{"apiVersion":"v1","kind":"Binding","metadata":{"name":"p"},"target":{"name":"n2"}}`)
	if st := r.status(t); r.code != 409 || !strings.Contains(st.Message, `pod p is already assigned to node "n1"`) {
		t.Fatalf("rebind: %d %s", r.code, r.body)
	}
}

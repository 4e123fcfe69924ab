package api

import (
	"net/url"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestKubeletStreamPath(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a"}}}}
	two := pod.DeepCopy()
	two.Spec.Containers = append(two.Spec.Containers, corev1.Container{Name: "b"})
	tests := []struct {
		name      string
		pod       *corev1.Pod
		sub, q    string
		wantPath  string
		wantQuery url.Values
		wantErr   bool
	}{
		{name: "exec", pod: pod, sub: "exec", q: "command=sh&command=-c&command=echo+hi&stdout=true&stderr=true",
			wantPath: "/exec/ns/p/a", wantQuery: url.Values{"command": {"sh", "-c", "echo hi"}, "output": {"1"}, "error": {"1"}}},
		{name: "exec tty stdin", pod: two, sub: "exec", q: "container=b&command=sh&stdin=true&stdout=true&tty=true",
			wantPath: "/exec/ns/p/b", wantQuery: url.Values{"command": {"sh"}, "input": {"1"}, "output": {"1"}, "tty": {"1"}}},
		{name: "exec without command", pod: pod, sub: "exec", q: "stdout=true", wantErr: true},
		{name: "exec without streams", pod: pod, sub: "exec", q: "command=ls&tty=true", wantErr: true},
		{name: "unknown container", pod: pod, sub: "exec", q: "container=x&command=ls&stdout=1", wantErr: true},
		{name: "container needed", pod: two, sub: "attach", q: "stdout=1", wantErr: true},
		{name: "attach", pod: pod, sub: "attach", q: "stdin=1&stdout=1&tty=1",
			wantPath: "/attach/ns/p/a", wantQuery: url.Values{"input": {"1"}, "output": {"1"}, "tty": {"1"}}},
		{name: "portforward", pod: pod, sub: "portforward", q: "ports=80",
			wantPath: "/portForward/ns/p", wantQuery: url.Values{"port": {"80"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, err := url.ParseQuery(tc.q)
			if err != nil {
				t.Fatal(err)
			}
			path, query, err := kubeletStreamPath(tc.pod, tc.sub, q)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("no error; path %s query %v", path, query)
				}
				return
			}
			if err != nil || path != tc.wantPath || !reflect.DeepEqual(query, tc.wantQuery) {
				t.Fatalf("got %s %v %v; want %s %v", path, query, err, tc.wantPath, tc.wantQuery)
			}
		})
	}
}

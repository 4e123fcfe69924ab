package strategicpatch

import (
	"encoding/json"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	upstream "k8s.io/apimachinery/pkg/util/strategicpatch"
)

const (
	pod = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","labels":{"app":"web","tier":"front"},"finalizers":["a","b","c"]},
"spec":{"containers":[
 {"name":"app","image":"app:1","env":[{"name":"A","value":"1"},{"name":"B","value":"2"}],"ports":[{"containerPort":80,"name":"http"},{"containerPort":443}],
  "volumeMounts":[{"name":"data","mountPath":"/data"}]},
 {"name":"side","image":"side:1","args":["-v","--x"]}],
 "volumes":[{"name":"data","emptyDir":{}},{"name":"cfg","configMap":{"name":"cfg"}}],
 "tolerations":[{"key":"k","operator":"Exists"}],"nodeSelector":{"disk":"ssd"}}}`
	deployment = `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},
"spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxSurge":1,"maxUnavailable":0}},
 "template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"app","image":"app:1","resources":{"limits":{"memory":"64Mi"}}}]}}}}`
)

// TestMatchesUpstream applies the patches kubectl apply, edit, set and
// scale send (and some it rejects) with this copy and with upstream's
// package: results and errors must be the same.
func TestMatchesUpstream(t *testing.T) {
	tests := []struct {
		name, original, patch string
		obj                   runtime.Object
		wantErr               bool
	}{
		{"labels merge and delete", pod, `{"metadata":{"labels":{"tier":null,"new":"x"}}}`, &corev1.Pod{}, false},
		{"container merged by name", pod, `{"spec":{"containers":[{"name":"app","image":"app:2"}]}}`, &corev1.Pod{}, false},
		{"container added", pod, `{"spec":{"containers":[{"name":"third","image":"t:1"}]}}`, &corev1.Pod{}, false},
		{"container deleted", pod, `{"spec":{"containers":[{"name":"side","$patch":"delete"}]}}`, &corev1.Pod{}, false},
		{"env merged by name", pod, `{"spec":{"containers":[{"name":"app","env":[{"name":"B","value":"3"},{"name":"C","value":"4"}]}]}}`, &corev1.Pod{}, false},
		{"ports merged by containerPort", pod, `{"spec":{"containers":[{"name":"app","ports":[{"containerPort":80,"name":"web"},{"containerPort":8080}]}]}}`, &corev1.Pod{}, false},
		{"atomic list replaced", pod, `{"spec":{"containers":[{"name":"side","args":["-q"]}]}}`, &corev1.Pod{}, false},
		{"element order", pod, `{"spec":{"$setElementOrder/containers":[{"name":"side"},{"name":"app"}],"containers":[{"name":"app","image":"app:3"}]}}`, &corev1.Pod{}, false},
		{"delete from primitive list", pod, `{"metadata":{"$deleteFromPrimitiveList/finalizers":["b"]}}`, &corev1.Pod{}, false},
		{"primitive list merged", pod, `{"metadata":{"finalizers":["d"]}}`, &corev1.Pod{}, false},
		{"volume replaced", pod, `{"spec":{"volumes":[{"name":"cfg","$patch":"replace","secret":{"secretName":"s"}}]}}`, &corev1.Pod{}, false},
		{"list replaced", pod, `{"spec":{"volumes":[{"$patch":"replace"},{"name":"only","emptyDir":{}}]}}`, &corev1.Pod{}, false},
		{"map replaced", pod, `{"spec":{"nodeSelector":{"$patch":"replace","zone":"a"}}}`, &corev1.Pod{}, false},
		{"scale", deployment, `{"spec":{"replicas":5}}`, &appsv1.Deployment{}, false},
		{"set image", deployment, `{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"app:9"}]}}}}`, &appsv1.Deployment{}, false},
		{"retain keys", deployment, `{"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate","rollingUpdate":null}}}`, &appsv1.Deployment{}, false},
		{"unknown directive", pod, `{"spec":{"containers":[{"name":"app","$patch":"explode"}]}}`, &corev1.Pod{}, true},
		{"element without merge key", pod, `{"spec":{"containers":[{"image":"nameless"}]}}`, &corev1.Pod{}, true},
		{"object for a list", pod, `{"spec":{"containers":{"name":"app"}}}`, &corev1.Pod{}, false},
		{"not JSON", pod, `{"spec":`, &corev1.Pod{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, gotErr := StrategicMergePatch([]byte(tt.original), []byte(tt.patch), tt.obj)
			want, wantErr := upstream.StrategicMergePatch([]byte(tt.original), []byte(tt.patch), tt.obj)
			if (gotErr == nil) != (wantErr == nil) || (gotErr != nil && gotErr.Error() != wantErr.Error()) {
				t.Fatalf("error: got %v, upstream %v", gotErr, wantErr)
			}
			if (gotErr != nil) != tt.wantErr {
				t.Fatalf("error %v, want one: %v", gotErr, tt.wantErr)
			}
			if gotErr != nil {
				return
			}
			if !jsonEqual(t, got, want) {
				t.Errorf("got  %s\nupstream %s", got, want)
			}
			if jsonEqual(t, got, []byte(tt.original)) {
				t.Errorf("the patch changed nothing: %s", got)
			}
		})
	}
}

// TestTwoWayMatchesUpstream creates patches as kubectl does from an
// original and a modified object.
func TestTwoWayMatchesUpstream(t *testing.T) {
	modified := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","labels":{"app":"web"}},
"spec":{"containers":[{"name":"side","image":"side:2"},{"name":"app","image":"app:1","env":[{"name":"A","value":"9"}]}],"volumes":[{"name":"data","emptyDir":{}}]}}`
	got, err := CreateTwoWayMergePatch([]byte(pod), []byte(modified), &corev1.Pod{})
	if err != nil {
		t.Fatal(err)
	}
	want, err := upstream.CreateTwoWayMergePatch([]byte(pod), []byte(modified), &corev1.Pod{})
	if err != nil {
		t.Fatal(err)
	}
	if !jsonEqual(t, got, want) {
		t.Errorf("got  %s\nupstream %s", got, want)
	}
	applied, err := StrategicMergePatch([]byte(pod), got, &corev1.Pod{})
	if err != nil {
		t.Fatal(err)
	}
	var a, m corev1.Pod
	if err := json.Unmarshal(applied, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(modified), &m); err != nil {
		t.Fatal(err)
	}
	if a.Spec.Containers[0].Image != "side:2" || len(a.Spec.Volumes) != 1 || len(a.Labels) != 1 {
		t.Errorf("applying the created patch gave %s", applied)
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("decode %s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}

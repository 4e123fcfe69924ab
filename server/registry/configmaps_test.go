package registry

import (
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
)

func newConfigMapStrategy() configMapStrategy { return configMapStrategy{now: fixedNow} }

// appConfig is what `kubectl create configmap app --from-literal=mode=edge
// --from-file=logo.png` sends.
func appConfig() *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "default"},
		Data:       map[string]string{"mode": "edge", "app.properties": "a=1\nb=2\n"},
		BinaryData: map[string][]byte{"logo.png": {0x89, 'P', 'N', 'G'}},
	}
}

func TestConfigMapPrepareKeepsObject(t *testing.T) {
	s := newConfigMapStrategy()
	cm := appConfig()
	s.PrepareForCreate(cm)
	if !reflect.DeepEqual(cm, appConfig()) {
		t.Errorf("PrepareForCreate changed the config map: %+v", cm)
	}
	s.PrepareForUpdate(cm, appConfig())
	if !reflect.DeepEqual(cm, appConfig()) {
		t.Errorf("PrepareForUpdate changed the config map: %+v", cm)
	}
}

func TestConfigMapValidateCreate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*corev1.ConfigMap)
		want   []string
	}{
		{"data and binaryData", func(*corev1.ConfigMap) {}, []string{}},
		{"empty", func(c *corev1.ConfigMap) { c.Data, c.BinaryData = nil, nil }, []string{}},
		{"subdomain name", func(c *corev1.ConfigMap) { c.Name = "app.v2" }, []string{}},
		{"upper-case name", func(c *corev1.ConfigMap) { c.Name = "App" }, []string{"metadata.name: Invalid value"}},
		{"invalid data keys in sorted order", func(c *corev1.ConfigMap) {
			c.Data["z/z"] = ""
			c.Data["a b"] = ""
		}, []string{"data[a b]: Invalid value", "data[z/z]: Invalid value"}},
		{"invalid binaryData key", func(c *corev1.ConfigMap) { c.BinaryData["..logo"] = nil },
			[]string{"binaryData[..logo]: Invalid value"}},
		{"key in both", func(c *corev1.ConfigMap) { c.BinaryData["mode"] = []byte("edge") },
			[]string{"data[mode]: Invalid value"}},
		{"exactly 1 MiB over both bags", func(c *corev1.ConfigMap) {
			c.Data = map[string]string{"a": strings.Repeat("x", corev1.MaxSecretSize/2)}
			c.BinaryData = map[string][]byte{"b": make([]byte, corev1.MaxSecretSize/2)}
		}, []string{}},
		{"1 MiB and one byte over both bags", func(c *corev1.ConfigMap) {
			c.Data = map[string]string{"a": strings.Repeat("x", corev1.MaxSecretSize/2+1)}
			c.BinaryData = map[string][]byte{"b": make([]byte, corev1.MaxSecretSize/2)}
		}, []string{"[]: Too long"}},
	}
	s := newConfigMapStrategy()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cm := appConfig()
			tt.mutate(cm)
			s.PrepareForCreate(cm)
			if got := errSummary(s.ValidateCreate(cm)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestConfigMapValidateUpdate(t *testing.T) {
	stored := func(immutable bool) *corev1.ConfigMap {
		cm := appConfig()
		cm.ResourceVersion = "3"
		cm.UID = "u-1"
		if immutable {
			cm.Immutable = ptrTo(true)
		}
		return cm
	}
	tests := []struct {
		name   string
		old    *corev1.ConfigMap
		mutate func(*corev1.ConfigMap)
		want   []string
	}{
		{"mutable: data", stored(false), func(c *corev1.ConfigMap) { c.Data["mode"] = "cloud" }, []string{}},
		{"mutable: binaryData removed", stored(false), func(c *corev1.ConfigMap) { c.BinaryData = nil }, []string{}},
		{"made immutable", stored(false), func(c *corev1.ConfigMap) { c.Immutable = ptrTo(true) }, []string{}},
		{"immutable: labels", stored(true), func(c *corev1.ConfigMap) { c.Labels = map[string]string{"a": "b"} }, []string{}},
		{"immutable: data", stored(true), func(c *corev1.ConfigMap) { c.Data["mode"] = "cloud" },
			[]string{"data: Forbidden"}},
		{"immutable: binaryData", stored(true), func(c *corev1.ConfigMap) { c.BinaryData["logo.png"] = nil },
			[]string{"binaryData: Forbidden"}},
		{"immutable: unset", stored(true), func(c *corev1.ConfigMap) { c.Immutable = nil },
			[]string{"immutable: Forbidden"}},
		{"immutable: everything at once", stored(true), func(c *corev1.ConfigMap) {
			c.Immutable = ptrTo(false)
			c.Data = nil
			c.BinaryData = nil
		}, []string{"immutable: Forbidden", "data: Forbidden", "binaryData: Forbidden"}},
		{"immutable: empty maps for nil ones", func() *corev1.ConfigMap {
			cm := stored(true)
			cm.Data, cm.BinaryData = nil, nil
			return cm
		}(), func(c *corev1.ConfigMap) { c.Data, c.BinaryData = map[string]string{}, map[string][]byte{} }, []string{}},
		{"invalid key on update", stored(false), func(c *corev1.ConfigMap) { c.Data["a%b"] = "" },
			[]string{"data[a%b]: Invalid value"}},
		{"name change", stored(false), func(c *corev1.ConfigMap) { c.Name = "other" },
			[]string{"metadata.name: Invalid value"}},
	}
	s := newConfigMapStrategy()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cm := tt.old.DeepCopy()
			tt.mutate(cm)
			s.PrepareForUpdate(cm, tt.old)
			if got := errSummary(s.ValidateUpdate(cm, tt.old)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestConfigMapFieldsAndTable(t *testing.T) {
	s := newConfigMapStrategy()
	cm := appConfig()
	cm.CreationTimestamp = metav1.NewTime(fixedNow().Add(-3 * 24 * time.Hour))
	if got, want := s.Fields(cm), (fields.Set{"metadata.name": "app", "metadata.namespace": "default"}); !reflect.DeepEqual(got, want) {
		t.Errorf("Fields = %v, want %v", got, want)
	}
	// DATA counts data and binaryData keys together, as printConfigMap does.
	if got, want := s.TableRow(cm), []interface{}{"app", int64(3), "3d"}; !reflect.DeepEqual(got, want) {
		t.Errorf("cells = %#v, want %#v", got, want)
	}
	var headers []string
	for _, c := range s.TableColumns() {
		headers = append(headers, strings.ToUpper(c.Name))
	}
	if got := strings.Join(headers, " "); got != "NAME DATA AGE" {
		t.Errorf("columns = %s", got)
	}
}

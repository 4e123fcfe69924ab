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

func newSecretStrategy() secretStrategy { return secretStrategy{now: fixedNow} }

// regcred is the secret `kubectl create secret docker-registry regcred`
// sends.
func regcred() *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "regcred", Namespace: "default"},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(
			`{"auths":{"10.0.0.5:5000":{"username":"alice","password":"s3cret","auth":"YWxpY2U6czNjcmV0"}}}`)},
	}
}

func TestSecretPrepare(t *testing.T) {
	tests := []struct {
		name     string
		in       corev1.Secret
		wantType corev1.SecretType
		wantData map[string]string
	}{
		{"type defaults to Opaque", corev1.Secret{Data: map[string][]byte{"a": []byte("1")}},
			corev1.SecretTypeOpaque, map[string]string{"a": "1"}},
		{"type kept", corev1.Secret{Type: corev1.SecretTypeBasicAuth},
			corev1.SecretTypeBasicAuth, nil},
		{"stringData alone becomes data", corev1.Secret{StringData: map[string]string{"user": "bob"}},
			corev1.SecretTypeOpaque, map[string]string{"user": "bob"}},
		{"stringData overwrites data", corev1.Secret{
			Data:       map[string][]byte{"user": []byte("old"), "keep": []byte("k")},
			StringData: map[string]string{"user": "new"}},
			corev1.SecretTypeOpaque, map[string]string{"user": "new", "keep": "k"}},
		{"empty stringData leaves data nil", corev1.Secret{StringData: map[string]string{}},
			corev1.SecretTypeOpaque, nil},
	}
	s := newSecretStrategy()
	for _, tt := range tests {
		for _, op := range []string{"create", "update"} {
			t.Run(tt.name+"/"+op, func(t *testing.T) {
				sec := tt.in.DeepCopy()
				if op == "create" {
					s.PrepareForCreate(sec)
				} else {
					s.PrepareForUpdate(sec, regcred())
				}
				if sec.Type != tt.wantType {
					t.Errorf("type = %q, want %q", sec.Type, tt.wantType)
				}
				if sec.StringData != nil {
					t.Errorf("stringData kept: %v", sec.StringData)
				}
				var got map[string]string
				if sec.Data != nil {
					got = map[string]string{}
					for k, v := range sec.Data {
						got[k] = string(v)
					}
				}
				if !reflect.DeepEqual(got, tt.wantData) {
					t.Errorf("data = %v, want %v", got, tt.wantData)
				}
			})
		}
	}
}

func TestSecretValidateCreate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*corev1.Secret)
		want   []string
	}{
		{"docker-registry secret", func(*corev1.Secret) {}, []string{}},
		{"opaque", func(s *corev1.Secret) { s.Type = "" }, []string{}},
		{"subdomain name", func(s *corev1.Secret) { s.Name = "reg.example.com" }, []string{}},
		{"upper-case name", func(s *corev1.Secret) { s.Name = "RegCred" }, []string{"metadata.name: Invalid value"}},
		{"underscore in name", func(s *corev1.Secret) { s.Name = "reg_cred" }, []string{"metadata.name: Invalid value"}},
		{"invalid keys in sorted order", func(s *corev1.Secret) {
			s.Data["b/c"] = []byte("x")
			s.Data["a b"] = []byte("x")
			s.Data[".."] = []byte("x")
		}, []string{"data[..]: Invalid value", "data[a b]: Invalid value", "data[b/c]: Invalid value"}},
		{"invalid stringData key reported under data", func(s *corev1.Secret) {
			s.StringData = map[string]string{"no/slash": "x"}
		}, []string{"data[no/slash]: Invalid value"}},
		{"dotted keys are fine", func(s *corev1.Secret) {
			s.Type = ""
			s.Data = map[string][]byte{".hidden": nil, "app.properties": nil, "A_B-c": nil}
		}, []string{}},
		{"exactly 1 MiB", func(s *corev1.Secret) {
			s.Type = ""
			s.Data = map[string][]byte{"a": make([]byte, corev1.MaxSecretSize/2), "b": make([]byte, corev1.MaxSecretSize/2)}
		}, []string{}},
		{"1 MiB and one byte", func(s *corev1.Secret) {
			s.Type = ""
			s.Data = map[string][]byte{"a": make([]byte, corev1.MaxSecretSize/2), "b": make([]byte, corev1.MaxSecretSize/2+1)}
		}, []string{"data: Too long"}},
		{"dockerconfigjson without its key", func(s *corev1.Secret) {
			s.Data = map[string][]byte{"config.json": []byte("{}")}
		}, []string{"data[.dockerconfigjson]: Required value"}},
		{"dockerconfigjson not JSON", func(s *corev1.Secret) {
			s.Data[corev1.DockerConfigJsonKey] = []byte(`{"auths":`)
		}, []string{"data[.dockerconfigjson]: Invalid value"}},
		{"dockerconfigjson not an object", func(s *corev1.Secret) {
			s.Data[corev1.DockerConfigJsonKey] = []byte(`["auths"]`)
		}, []string{"data[.dockerconfigjson]: Invalid value"}},
		{"dockerconfigjson from stringData", func(s *corev1.Secret) {
			s.Data = nil
			s.StringData = map[string]string{corev1.DockerConfigJsonKey: `{"auths":{}}`}
		}, []string{}},
		{"dockercfg", func(s *corev1.Secret) {
			s.Type = corev1.SecretTypeDockercfg
			s.Data = map[string][]byte{corev1.DockerConfigKey: []byte(`{"10.0.0.5:5000":{"auth":"eDp5"}}`)}
		}, []string{}},
		{"dockercfg without its key", func(s *corev1.Secret) { s.Type = corev1.SecretTypeDockercfg },
			[]string{"data[.dockercfg]: Required value"}},
		{"dockercfg not JSON", func(s *corev1.Secret) {
			s.Type = corev1.SecretTypeDockercfg
			s.Data = map[string][]byte{corev1.DockerConfigKey: []byte("auth = x")}
		}, []string{"data[.dockercfg]: Invalid value"}},
		{"basic-auth with neither key", func(s *corev1.Secret) {
			s.Type = corev1.SecretTypeBasicAuth
			s.Data = nil
		}, []string{"data[username]: Required value", "data[password]: Required value"}},
		{"basic-auth with an empty password only", func(s *corev1.Secret) {
			s.Type = corev1.SecretTypeBasicAuth
			s.Data = map[string][]byte{corev1.BasicAuthPasswordKey: {}}
		}, []string{}},
		{"ssh-auth with an empty key", func(s *corev1.Secret) {
			s.Type = corev1.SecretTypeSSHAuth
			s.Data = map[string][]byte{corev1.SSHAuthPrivateKey: {}}
		}, []string{"data[ssh-privatekey]: Required value"}},
		{"ssh-auth", func(s *corev1.Secret) {
			s.Type = corev1.SecretTypeSSHAuth
			s.Data = map[string][]byte{corev1.SSHAuthPrivateKey: []byte("-----BEGIN OPENSSH PRIVATE KEY-----")}
		}, []string{}},
		{"tls without key", func(s *corev1.Secret) {
			s.Type = corev1.SecretTypeTLS
			s.Data = map[string][]byte{corev1.TLSCertKey: []byte("cert")}
		}, []string{"data[tls.key]: Required value"}},
		{"tls with neither", func(s *corev1.Secret) {
			s.Type = corev1.SecretTypeTLS
			s.Data = nil
		}, []string{"data[tls.crt]: Required value", "data[tls.key]: Required value"}},
		{"tls with both, even empty", func(s *corev1.Secret) {
			s.Type = corev1.SecretTypeTLS
			s.Data = map[string][]byte{corev1.TLSCertKey: {}, corev1.TLSPrivateKeyKey: {}}
		}, []string{}},
		{"service account token without account", func(s *corev1.Secret) {
			s.Type = corev1.SecretTypeServiceAccountToken
		}, []string{"metadata.annotations[kubernetes.io/service-account.name]: Required value"}},
		{"service account token", func(s *corev1.Secret) {
			s.Type = corev1.SecretTypeServiceAccountToken
			s.Annotations = map[string]string{corev1.ServiceAccountNameKey: "default"}
		}, []string{}},
		{"a type Kubernetes does not know", func(s *corev1.Secret) {
			s.Type = "example.com/token"
			s.Data = nil
		}, []string{}},
	}
	s := newSecretStrategy()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sec := regcred()
			tt.mutate(sec)
			s.PrepareForCreate(sec)
			if got := errSummary(s.ValidateCreate(sec)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors = %q, want %q", got, tt.want)
			}
		})
	}
}

// A 422 must not carry the credentials it rejects.
func TestSecretValidateRedacts(t *testing.T) {
	sec := regcred()
	sec.Data[corev1.DockerConfigJsonKey] = []byte(`{"auths":{"r":{"password":"hunter2"}}`)
	errs := newSecretStrategy().ValidateCreate(sec)
	if len(errs) != 1 {
		t.Fatalf("errors = %v", errs)
	}
	if errs[0].BadValue != redacted || strings.Contains(errs.ToAggregate().Error(), "hunter2") {
		t.Errorf("error shows the secret: %v", errs)
	}
}

func TestSecretValidateUpdate(t *testing.T) {
	stored := func() *corev1.Secret {
		sec := regcred()
		sec.ResourceVersion = "7"
		sec.UID = "u-1"
		sec.Labels = map[string]string{"team": "a"}
		return sec
	}
	immutable := func() *corev1.Secret {
		sec := stored()
		sec.Immutable = ptrTo(true)
		return sec
	}
	tests := []struct {
		name   string
		old    *corev1.Secret
		mutate func(*corev1.Secret)
		want   []string
	}{
		{"new data", stored(), func(s *corev1.Secret) {
			s.Data[corev1.DockerConfigJsonKey] = []byte(`{"auths":{}}`)
		}, []string{}},
		{"new data through stringData", stored(), func(s *corev1.Secret) {
			s.StringData = map[string]string{"extra": "x"}
		}, []string{}},
		{"type change", stored(), func(s *corev1.Secret) { s.Type = corev1.SecretTypeOpaque },
			[]string{"type: Invalid value"}},
		{"type left out is Opaque, a change", stored(), func(s *corev1.Secret) { s.Type = "" },
			[]string{"type: Invalid value"}},
		{"made immutable", stored(), func(s *corev1.Secret) { s.Immutable = ptrTo(true) }, []string{}},
		{"immutable: labels may change", immutable(), func(s *corev1.Secret) { s.Labels = map[string]string{"team": "b"} },
			[]string{}},
		{"immutable: data", immutable(), func(s *corev1.Secret) { s.Data["extra"] = []byte("x") },
			[]string{"data: Forbidden"}},
		{"immutable: stringData", immutable(), func(s *corev1.Secret) {
			s.StringData = map[string]string{corev1.DockerConfigJsonKey: `{"auths":{}}`}
		}, []string{"data: Forbidden"}},
		{"immutable: stringData repeating data", immutable(), func(s *corev1.Secret) {
			s.StringData = map[string]string{corev1.DockerConfigJsonKey: string(s.Data[corev1.DockerConfigJsonKey])}
		}, []string{}},
		{"immutable: unset", immutable(), func(s *corev1.Secret) { s.Immutable = nil },
			[]string{"immutable: Forbidden"}},
		{"immutable: set false", immutable(), func(s *corev1.Secret) { s.Immutable = ptrTo(false) },
			[]string{"immutable: Forbidden"}},
		{"immutable without data: empty data is no change", func() *corev1.Secret {
			sec := immutable()
			sec.Type, sec.Data = corev1.SecretTypeOpaque, nil
			return sec
		}(), func(s *corev1.Secret) { s.Data = map[string][]byte{} }, []string{}},
		{"invalid key on update", stored(), func(s *corev1.Secret) { s.Data["a:b"] = nil },
			[]string{"data[a:b]: Invalid value"}},
		{"uid change", stored(), func(s *corev1.Secret) { s.UID = "u-2" },
			[]string{"metadata.uid: Invalid value"}},
	}
	s := newSecretStrategy()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sec := tt.old.DeepCopy()
			tt.mutate(sec)
			s.PrepareForUpdate(sec, tt.old)
			if got := errSummary(s.ValidateUpdate(sec, tt.old)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSecretFieldsAndTable(t *testing.T) {
	s := newSecretStrategy()
	sec := regcred()
	sec.CreationTimestamp = metav1.NewTime(fixedNow().Add(-90 * time.Second))
	want := fields.Set{"metadata.name": "regcred", "metadata.namespace": "default", "type": "kubernetes.io/dockerconfigjson"}
	got := s.Fields(sec)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Fields = %v, want %v", got, want)
	}
	for sel, match := range map[string]bool{
		"type=kubernetes.io/dockerconfigjson": true,
		"type!=Opaque":                        true,
		"type=Opaque":                         false,
	} {
		if fields.ParseSelectorOrDie(sel).Matches(got) != match {
			t.Errorf("selector %s matches = %v", sel, !match)
		}
	}

	// kubectl get secrets on Kubernetes: regcred  kubernetes.io/dockerconfigjson  1  90s
	if got, want := s.TableRow(sec), []interface{}{"regcred", "kubernetes.io/dockerconfigjson", int64(1), "90s"}; !reflect.DeepEqual(got, want) {
		t.Errorf("cells = %#v, want %#v", got, want)
	}
	empty := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "e"}, Type: corev1.SecretTypeOpaque}
	if got, want := s.TableRow(empty), []interface{}{"e", "Opaque", int64(0), "<unknown>"}; !reflect.DeepEqual(got, want) {
		t.Errorf("empty secret cells = %#v, want %#v", got, want)
	}
	var headers []string
	for _, c := range s.TableColumns() {
		headers = append(headers, strings.ToUpper(c.Name))
	}
	if got := strings.Join(headers, " "); got != "NAME TYPE DATA AGE" {
		t.Errorf("columns = %s", got)
	}
}

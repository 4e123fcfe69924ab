package registry

import (
	"encoding/json"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// redacted stands for a secret's value in error messages, as Kubernetes
// writes it: the API must not echo credentials back in a 422.
const redacted = "<secret contents redacted>"

// secretStrategy holds the decisions for core/v1 secrets
// (pkg/registry/core/secret/strategy.go). Secrets have no status.
type secretStrategy struct {
	now func() time.Time
}

var _ Strategy = secretStrategy{}

func secretResource(now func() time.Time) Resource {
	return Resource{
		Version:           "v1",
		Kind:              "Secret",
		Resource:          "secrets",
		SingularName:      "secret",
		Namespaced:        true,
		Verbs:             allVerbs(),
		New:               func() runtime.Object { return &corev1.Secret{} },
		UnmarshalProtobuf: func(o runtime.Object, b []byte) error { return o.(*corev1.Secret).Unmarshal(b) },
		NewList:           func() runtime.Object { return &corev1.SecretList{} },
		Strategy:          secretStrategy{now: now},
	}
}

// PrepareForCreate merges stringData into data and defaults the type.
func (secretStrategy) PrepareForCreate(obj runtime.Object) {
	sec, ok := obj.(*corev1.Secret)
	if !ok {
		return
	}
	prepareSecret(sec)
}

// PrepareForUpdate does what PrepareForCreate does: a write of stringData
// overwrites those keys of data, and a missing type is Opaque (so changing
// a typed secret's type by leaving it out is reported as an immutable
// field, as Kubernetes' decoding defaults do).
func (secretStrategy) PrepareForUpdate(obj, _ runtime.Object) {
	sec, ok := obj.(*corev1.Secret)
	if !ok {
		return
	}
	prepareSecret(sec)
}

// PrepareForStatusUpdate does nothing: secrets have no status subresource.
func (secretStrategy) PrepareForStatusUpdate(runtime.Object, runtime.Object) {}

// prepareSecret is what Kubernetes does while decoding a v1 Secret:
// SetDefaults_Secret (type Opaque) and the conversion to the internal type,
// which writes each stringData entry over data and drops stringData.
// stringData is write-only: it is never stored nor returned.
func prepareSecret(sec *corev1.Secret) {
	if sec.Type == "" {
		sec.Type = corev1.SecretTypeOpaque
	}
	if len(sec.StringData) > 0 {
		if sec.Data == nil {
			sec.Data = make(map[string][]byte, len(sec.StringData))
		}
		for k, v := range sec.StringData {
			sec.Data[k] = []byte(v)
		}
	}
	sec.StringData = nil
}

// ValidateCreate validates a new secret; see validateSecret.
func (secretStrategy) ValidateCreate(obj runtime.Object) field.ErrorList {
	sec, ok := obj.(*corev1.Secret)
	if !ok {
		return wrongType("*v1.Secret", obj)
	}
	return validateSecret(sec)
}

// ValidateUpdate is Kubernetes' ValidateSecretUpdate: the type never
// changes, and once immutable is true it stays true and data stays as it
// is (stringData is already merged into data here, so writing it is caught
// as a change of data).
func (secretStrategy) ValidateUpdate(obj, old runtime.Object) field.ErrorList {
	sec, ok := obj.(*corev1.Secret)
	if !ok {
		return wrongType("*v1.Secret", obj)
	}
	oldSec, ok := old.(*corev1.Secret)
	if !ok {
		return wrongType("*v1.Secret", old)
	}
	errs := apivalidation.ValidateObjectMetaUpdate(&sec.ObjectMeta, &oldSec.ObjectMeta, field.NewPath("metadata"))
	errs = append(errs, apivalidation.ValidateImmutableField(sec.Type, oldSec.Type, field.NewPath("type"))...)
	if isTrue(oldSec.Immutable) {
		if !isTrue(sec.Immutable) {
			errs = append(errs, field.Forbidden(field.NewPath("immutable"), "field is immutable when `immutable` is set"))
		}
		// Semantic equality: a client that sends `data: {}` for a secret
		// stored without data changes nothing.
		if !apiequality.Semantic.DeepEqual(sec.Data, oldSec.Data) {
			errs = append(errs, field.Forbidden(field.NewPath("data"), "field is immutable when `immutable` is set"))
		}
	}
	return append(errs, validateSecret(sec)...)
}

// validateSecret is Kubernetes' ValidateSecret: a DNS-1123 subdomain name,
// data keys that are valid config keys, at most MaxSecretSize bytes of
// values in all, and the keys each well-known type requires. Keys are
// checked in sorted order so the causes come out in a stable order.
func validateSecret(sec *corev1.Secret) field.ErrorList {
	errs := apivalidation.ValidateObjectMeta(&sec.ObjectMeta, true, apivalidation.NameIsDNSSubdomain, field.NewPath("metadata"))
	dataPath := field.NewPath("data")
	total := 0
	for _, key := range sortedKeys(sec.Data) {
		for _, msg := range validation.IsConfigMapKey(key) {
			errs = append(errs, field.Invalid(dataPath.Key(key), key, msg))
		}
		total += len(sec.Data[key])
	}
	if total > corev1.MaxSecretSize {
		errs = append(errs, field.TooLong(dataPath, "", corev1.MaxSecretSize))
	}
	switch sec.Type {
	case corev1.SecretTypeServiceAccountToken:
		// The token controller fills in the uid annotation and the token
		// later; the account's name is all a creator must give.
		if sec.Annotations[corev1.ServiceAccountNameKey] == "" {
			errs = append(errs, field.Required(field.NewPath("metadata", "annotations").Key(corev1.ServiceAccountNameKey), ""))
		}
	case corev1.SecretTypeDockercfg:
		errs = append(errs, requireJSONKey(sec.Data, corev1.DockerConfigKey, dataPath)...)
	case corev1.SecretTypeDockerConfigJson:
		errs = append(errs, requireJSONKey(sec.Data, corev1.DockerConfigJsonKey, dataPath)...)
	case corev1.SecretTypeBasicAuth:
		// Either may be empty, but one of the two keys must be there.
		_, user := sec.Data[corev1.BasicAuthUsernameKey]
		_, pass := sec.Data[corev1.BasicAuthPasswordKey]
		if !user && !pass {
			errs = append(errs,
				field.Required(dataPath.Key(corev1.BasicAuthUsernameKey), ""),
				field.Required(dataPath.Key(corev1.BasicAuthPasswordKey), ""))
		}
	case corev1.SecretTypeSSHAuth:
		if len(sec.Data[corev1.SSHAuthPrivateKey]) == 0 {
			errs = append(errs, field.Required(dataPath.Key(corev1.SSHAuthPrivateKey), ""))
		}
	case corev1.SecretTypeTLS:
		// Both keys must be present (possibly empty); Kubernetes only warns
		// when they do not form a key pair.
		if _, ok := sec.Data[corev1.TLSCertKey]; !ok {
			errs = append(errs, field.Required(dataPath.Key(corev1.TLSCertKey), ""))
		}
		if _, ok := sec.Data[corev1.TLSPrivateKeyKey]; !ok {
			errs = append(errs, field.Required(dataPath.Key(corev1.TLSPrivateKeyKey), ""))
		}
	}
	// Opaque and types Kubernetes does not know carry any data.
	return errs
}

// requireJSONKey requires data[key] to hold a JSON object, as Kubernetes
// checks the docker config of the two docker secret types. The value is
// never repeated in the error.
func requireJSONKey(data map[string][]byte, key string, dataPath *field.Path) field.ErrorList {
	b, ok := data[key]
	if !ok {
		return field.ErrorList{field.Required(dataPath.Key(key), "")}
	}
	if err := json.Unmarshal(b, &map[string]interface{}{}); err != nil {
		return field.ErrorList{field.Invalid(dataPath.Key(key), redacted, err.Error())}
	}
	return nil
}

// Fields returns the secret fields Kubernetes lets a fieldSelector match:
// the metadata ones and type (SelectableFields in pkg/registry/core/secret).
func (secretStrategy) Fields(obj runtime.Object) fields.Set {
	sec, ok := obj.(*corev1.Secret)
	if !ok {
		return nil
	}
	set := objectMetaFields(&sec.ObjectMeta, true)
	set["type"] = string(sec.Type)
	return set
}

// TableColumns returns kubectl's secret columns: NAME TYPE DATA AGE.
func (secretStrategy) TableColumns() []metav1.TableColumnDefinition {
	return []metav1.TableColumnDefinition{
		nameColumn(),
		{Name: "Type", Type: "string", Description: corev1.Secret{}.SwaggerDoc()["type"]},
		{Name: "Data", Type: "string", Description: corev1.Secret{}.SwaggerDoc()["data"]},
		ageColumn(),
	}
}

// TableRow returns a secret's cells as Kubernetes' printSecret does: the
// DATA column counts the keys, never showing a value.
func (s secretStrategy) TableRow(obj runtime.Object) []interface{} {
	sec, ok := obj.(*corev1.Secret)
	if !ok {
		return nil
	}
	return []interface{}{sec.Name, string(sec.Type), int64(len(sec.Data)), HumanAge(sec.CreationTimestamp, s.now())}
}

// isTrue reports whether an optional bool is set and true.
func isTrue(b *bool) bool { return b != nil && *b }

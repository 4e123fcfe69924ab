package api

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// fieldValidation is the fieldValidation query parameter.
type fieldValidation string

const (
	validationStrict fieldValidation = "Strict"
	validationWarn   fieldValidation = "Warn"
	validationIgnore fieldValidation = "Ignore"
)

// parseFieldValidation reads fieldValidation; Kubernetes' default is Warn.
func parseFieldValidation(r *http.Request) (fieldValidation, error) {
	switch v := r.URL.Query().Get("fieldValidation"); v {
	case "":
		return validationWarn, nil
	case string(validationStrict), string(validationWarn), string(validationIgnore):
		return fieldValidation(v), nil
	default:
		return "", apierrors.NewBadRequest(fmt.Sprintf("fieldValidation: unsupported value %q: supported values are \"Ignore\", \"Warn\", \"Strict\"", v))
	}
}

// readBody reads the request body up to the configured limit.
func (s *Server) readBody(r *http.Request) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r.Body, s.cfg.MaxBodyBytes+1))
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("reading the request body: %v", err))
	}
	if int64(len(data)) > s.cfg.MaxBodyBytes {
		return nil, apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("limit is %d bytes", s.cfg.MaxBodyBytes))
	}
	return data, nil
}

// bodyMediaType is the base media type of a request body (JSON when the
// client sends none).
func bodyMediaType(r *http.Request) (string, error) {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return "application/json", nil
	}
	base, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return "", errUnsupportedMediaType(fmt.Sprintf("the Content-Type %q could not be parsed: %v", ct, err))
	}
	return base, nil
}

// bodyJSON returns a JSON or YAML body as JSON. A YAML body with duplicate
// keys is returned with its strict error.
func bodyJSON(base string, data []byte) (js []byte, strictErr error, err error) {
	switch base {
	case "application/json", "*/*":
		return data, nil, nil
	case "application/yaml", "application/x-yaml", "text/yaml":
		js, err := yaml.YAMLToJSONStrict(data)
		if err == nil {
			return js, nil, nil
		}
		js, err2 := yaml.YAMLToJSON(data)
		if err2 != nil {
			return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("the body is not valid YAML: %v", err2))
		}
		return js, err, nil
	default:
		return nil, nil, errUnsupportedMediaType(fmt.Sprintf("the body of the request was in an unknown format %q - accepted media types include: "+
			"application/json, application/yaml, application/vnd.kubernetes.protobuf", base))
	}
}

// decodeBody decodes a create or update body of any accepted media type.
func decodeBody(r *http.Request, res *resource, data []byte, fv fieldValidation) (runtime.Object, []string, error) {
	base, err := bodyMediaType(r)
	if err != nil {
		return nil, nil, err
	}
	if base == contentTypeProtobuf {
		obj := res.New()
		if err := decodeProtobuf(data, obj, res.gvk.GroupVersion().String(), res.Kind); err != nil {
			return nil, nil, err
		}
		obj.GetObjectKind().SetGroupVersionKind(res.gvk)
		return obj, nil, nil
	}
	js, strictErr, err := bodyJSON(base, data)
	if err != nil {
		return nil, nil, err
	}
	return decodeInto(res, js, strictErr, fv)
}

// decodeInto decodes JSON into a fresh object of res, checking apiVersion
// and kind against the URL and applying fieldValidation. It returns the
// warnings to send (fieldValidation=Warn).
func decodeInto(res *resource, js []byte, extraStrict error, fv fieldValidation) (runtime.Object, []string, error) {
	var tm metav1.TypeMeta
	if err := json.Unmarshal(js, &tm); err != nil {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("the body of the request could not be decoded: %v", err))
	}
	if tm.APIVersion != "" || tm.Kind != "" {
		if tm.APIVersion != res.gvk.GroupVersion().String() || tm.Kind != res.Kind {
			return nil, nil, apierrors.NewBadRequest(fmt.Sprintf(
				"the object in the body (apiVersion %q, kind %q) does not match the URL, which expects apiVersion %q, kind %q",
				tm.APIVersion, tm.Kind, res.gvk.GroupVersion().String(), res.Kind))
		}
	}
	obj := res.New()
	strictErrs, err := sigsjson.UnmarshalStrict(js, obj, sigsjson.DisallowDuplicateFields, sigsjson.DisallowUnknownFields)
	if err != nil {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("the body of the request could not be decoded as %s: %v", res.Kind, err))
	}
	if extraStrict != nil {
		strictErrs = append([]error{extraStrict}, strictErrs...)
	}
	obj.GetObjectKind().SetGroupVersionKind(res.gvk)
	warnings, err := strictOutcome(strictErrs, fv)
	if err != nil {
		return nil, nil, err
	}
	return obj, warnings, nil
}

// strictOutcome applies fieldValidation to strict decoding errors (unknown
// and duplicate fields): Strict rejects with 400, Warn returns warnings.
func strictOutcome(errs []error, fv fieldValidation) ([]string, error) {
	if len(errs) == 0 || fv == validationIgnore {
		return nil, nil
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = strings.TrimPrefix(e.Error(), "error converting YAML to JSON: ")
	}
	if fv == validationStrict {
		return nil, apierrors.NewBadRequest("strict decoding error: " + strings.Join(msgs, ", "))
	}
	return msgs, nil
}

// addWarnings sends warnings as Warning headers, which kubectl prints.
func addWarnings(w http.ResponseWriter, warnings []string) {
	for _, m := range warnings {
		w.Header().Add("Warning", "299 - "+strconvQuote(m))
	}
}

// strconvQuote quotes a warning text the way RFC 7234 wants it.
func strconvQuote(s string) string {
	s = strings.NewReplacer("\\", "\\\\", `"`, `\"`, "\n", " ").Replace(s)
	return `"` + s + `"`
}

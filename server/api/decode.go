package api

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
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
	data, err := readAllSized(io.LimitReader(r.Body, s.cfg.MaxBodyBytes+1), r.ContentLength, s.cfg.MaxBodyBytes)
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("reading the request body: %v", err))
	}
	if int64(len(data)) > s.cfg.MaxBodyBytes {
		return nil, apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("limit is %d bytes", s.cfg.MaxBodyBytes))
	}
	return data, nil
}

// readAllSized is io.ReadAll starting with room for the announced length
// (when it is within limit), so a body is read into one buffer instead of
// one that doubles from 512 bytes.
func readAllSized(rd io.Reader, announced, limit int64) ([]byte, error) {
	size := int64(512)
	if announced > 0 && announced <= limit {
		size = announced + 1 // +1: room to read EOF without growing
	}
	b := make([]byte, 0, size)
	for {
		n, err := rd.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
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
		var unmarshal func([]byte) error
		if res.UnmarshalProtobuf != nil {
			unmarshal = func(b []byte) error { return res.UnmarshalProtobuf(obj, b) }
		}
		if err := decodeProtobuf(data, unmarshal, res.gvk.GroupVersion().String(), res.Kind); err != nil {
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
	if extraStrict == nil {
		if obj, ok := decodeClean(res, js); ok {
			return obj, nil, nil
		}
	}
	return decodeGeneral(res, js, extraStrict, fv)
}

// decodeGeneral is decodeInto for any body: it checks apiVersion and kind
// first, then decodes strictly and applies fieldValidation.
func decodeGeneral(res *resource, js []byte, extraStrict error, fv fieldValidation) (runtime.Object, []string, error) {
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

// decodeClean is decodeInto for the common body: one that decodes strictly
// without any unknown or duplicate field. For such a body the apiVersion and
// kind the typed object received are what a decode into TypeMeta alone
// reads (no other member can match them, even case-insensitively: it would
// be an unknown field), so the body is parsed once instead of twice. Any
// other body returns false and takes the general path, which reports
// problems in its order.
func decodeClean(res *resource, js []byte) (runtime.Object, bool) {
	obj := res.New()
	strictErrs, err := sigsjson.UnmarshalStrict(js, obj, sigsjson.DisallowDuplicateFields, sigsjson.DisallowUnknownFields)
	if err != nil || len(strictErrs) > 0 {
		return nil, false
	}
	tm, err := meta.TypeAccessor(obj)
	if err != nil {
		return nil, false
	}
	if apiVersion, kind := tm.GetAPIVersion(), tm.GetKind(); (apiVersion != "" || kind != "") &&
		(apiVersion != res.gvk.GroupVersion().String() || kind != res.Kind) {
		return nil, false // the general path answers the mismatch
	}
	obj.GetObjectKind().SetGroupVersionKind(res.gvk)
	return obj, true
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

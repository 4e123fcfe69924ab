package builder

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"

	"k8s.io/kube-openapi/pkg/common"
)

// param implements common.Parameter.
type param struct {
	name     string
	desc     string
	required bool
	kind     common.ParameterKind
	dataType string
}

var _ common.Parameter = param{}

func (p param) Name() string               { return p.name }
func (p param) Description() string        { return p.desc }
func (p param) Required() bool             { return p.required }
func (p param) Kind() common.ParameterKind { return p.kind }
func (p param) DataType() string           { return p.dataType }
func (p param) AllowMultiple() bool        { return false }

// MarshalJSON names the parameter in the builders' error messages.
func (p param) MarshalJSON() ([]byte, error) { return json.Marshal(p.kindName() + " " + p.name) }

func (p param) kindName() string {
	switch p.kind {
	case common.PathParameterKind:
		return "path"
	case common.BodyParameterKind:
		return "body"
	default:
		return "query"
	}
}

// Descriptions kube-apiserver v1.34 gives the parameters it adds itself
// rather than taking from an options struct.
const (
	prettyDescription    = "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget)."
	namespaceDescription = "object name and auth scope, such as for teams and projects"
)

func queryParam(name, desc, dataType string) param {
	return param{name: name, desc: desc, kind: common.QueryParameterKind, dataType: dataType}
}

func pathParam(name, desc string) param {
	return param{name: name, desc: desc, required: true, kind: common.PathParameterKind, dataType: "string"}
}

// bodyParam is the request body; its schema comes from the route's
// RequestPayloadSample, as go-restful's Reads does for kube-apiserver.
func bodyParam(required bool) param {
	return param{name: "body", required: required, kind: common.BodyParameterKind, dataType: "object"}
}

var prettyParam = queryParam("pretty", prettyDescription, "string")

// documented is what the generated *_swagger_doc_generated.go files give
// every options struct: its fields' descriptions by JSON name.
type documented interface {
	SwaggerDoc() map[string]string
}

// objectParams turns an options struct (metav1.ListOptions, CreateOptions,
// corev1.PodLogOptions...) into query parameters the way k8s.io/apiserver's
// AddObjectParams does: one parameter per top-level field with a JSON name,
// skipping embedded structs, struct-valued fields and pointers to structs
// (so TypeMeta, Preconditions and sinceTime are left out, as upstream),
// described by the type's SwaggerDoc. Fields named in exclude are skipped.
// A field of a type a query string cannot carry panics: the options types
// are fixed upstream types, so that is a programming error caught by tests.
func objectParams(obj any, exclude ...string) []param {
	t := reflect.TypeOf(obj)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var docs map[string]string
	if d, ok := obj.(documented); ok {
		docs = d.SwaggerDoc()
	}
	var out []param
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct || ft.Kind() == reflect.Interface {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" || slices.Contains(exclude, name) {
			continue
		}
		out = append(out, queryParam(name, docs[name], jsonType(t.Name()+"."+f.Name, ft)))
	}
	return out
}

// jsonType maps a Go field type to the OpenAPI type of its query parameter,
// as k8s.io/apiserver's typeToJSON: slices are repeated scalars.
func jsonType(field string, t reflect.Type) string {
	if t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.String:
		return "string"
	}
	panic("openapi: options field " + field + " has a type a query parameter cannot carry: " + t.String())
}

package openapi

import (
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	_ "embed" // for the generated documents
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Documents holds the serialized OpenAPI documents of the served resources.
// It is immutable and safe for concurrent use; it serves them as an
// http.Handler (see ServeHTTP).
//
// Every form is kept gzip-compressed: the documents are megabytes of JSON
// that a server keeps for its whole life and serves rarely (kubectl caches
// them by hash). The embedded documents stay in the binary's read-only data
// and are served from there without a copy; clients that accept gzip, as
// every Go client does, get the compressed bytes as they are, the others
// get them expanded per request.
type Documents struct {
	modTime   time.Time
	v2        *document
	v3        map[string]*document // by group version path: "api/v1", "apis/apps/v1", "version"...
	discovery *document            // /openapi/v3, JSON only
}

// document is one document: its JSON form and, if it has one, its protobuf
// form, both gzip-compressed, and the ETag of the JSON form. The ETag is
// shared by both forms, as kube-apiserver does: responses carry Vary: Accept.
type document struct {
	gz      string
	protoGz string // "": no protobuf form
	etag    string // unquoted, upper-case hex SHA-512 of the JSON form
}

// Source is one document as a builder made it: the JSON form and, unless
// nil, the protobuf form (gnostic's message, as kube-openapi encodes it).
type Source struct {
	JSON, Proto []byte
}

// New returns the documents serving v2 at /openapi/v2 and each of v3 at
// /openapi/v3/<key>, with the v3 discovery document listing them.
func New(v2 Source, v3 map[string]Source) (*Documents, error) {
	d := &Documents{modTime: time.Now(), v3: make(map[string]*document, len(v3))}
	var err error
	if d.v2, err = newDocument(v2); err != nil {
		return nil, fmt.Errorf("openapi v2 document: %w", err)
	}
	paths := map[string]discoveryPath{}
	for key, src := range v3 {
		doc, err := newDocument(src)
		if err != nil {
			return nil, fmt.Errorf("openapi v3 document of %s: %w", key, err)
		}
		d.v3[key] = doc
		paths[key] = discoveryPath{ServerRelativeURL: v3URL(key, doc.etag)}
	}
	j, err := json.Marshal(struct {
		Paths map[string]discoveryPath `json:"paths"`
	}{paths})
	if err != nil {
		return nil, fmt.Errorf("encode openapi v3 discovery: %w", err)
	}
	if d.discovery, err = newDocument(Source{JSON: j}); err != nil {
		return nil, fmt.Errorf("openapi v3 discovery: %w", err)
	}
	return d, nil
}

func newDocument(src Source) (*document, error) {
	if len(src.JSON) == 0 {
		return nil, errors.New("no JSON form")
	}
	gz, err := compress(src.JSON)
	if err != nil {
		return nil, err
	}
	d := &document{gz: gz, etag: fmt.Sprintf("%X", sha512.Sum512(src.JSON))}
	if src.Proto != nil {
		if d.protoGz, err = compress(src.Proto); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// discoveryPath is one entry of the /openapi/v3 discovery document.
type discoveryPath struct {
	ServerRelativeURL string `json:"serverRelativeURL"`
}

// v3URL is the address of a v3 document at a given content hash.
func v3URL(key, etag string) string {
	return "/openapi/v3/" + key + "?" + url.Values{"hash": {etag}}.Encode()
}

func compress(b []byte) (string, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		return "", fmt.Errorf("compress openapi document: %w", err)
	}
	if err := zw.Close(); err != nil {
		return "", fmt.Errorf("compress openapi document: %w", err)
	}
	return buf.String(), nil
}

func expand(gz string) ([]byte, error) {
	zr, err := gzip.NewReader(strings.NewReader(gz))
	if err != nil {
		return nil, fmt.Errorf("expand openapi document: %w", err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("expand openapi document: %w", err)
	}
	return b, nil
}

// A bundle is the documents as two files: an index (JSON) and the
// compressed forms one after the other. The index gives each document's
// ETag and where its forms are.
type (
	bundleIndex struct {
		V2        bundleEntry            `json:"v2"`
		V3        map[string]bundleEntry `json:"v3"`
		Discovery bundleEntry            `json:"discovery"`
	}
	bundleEntry struct {
		ETag  string `json:"etag"`
		JSON  span   `json:"json"`
		Proto *span  `json:"proto,omitempty"`
	}
	span struct {
		Offset int `json:"offset"`
		Length int `json:"length"`
	}
)

// MarshalBundle returns the documents as a bundle: the index and the data
// LoadBundle reads back. Both are the same for the same documents.
func (d *Documents) MarshalBundle() (index, data []byte, err error) {
	var buf bytes.Buffer
	add := func(s string) span {
		sp := span{Offset: buf.Len(), Length: len(s)}
		buf.WriteString(s)
		return sp
	}
	entry := func(doc *document) bundleEntry {
		e := bundleEntry{ETag: doc.etag, JSON: add(doc.gz)}
		if doc.protoGz != "" {
			p := add(doc.protoGz)
			e.Proto = &p
		}
		return e
	}
	idx := bundleIndex{V2: entry(d.v2), V3: map[string]bundleEntry{}}
	keys := make([]string, 0, len(d.v3))
	for k := range d.v3 {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		idx.V3[k] = entry(d.v3[k])
	}
	idx.Discovery = entry(d.discovery)
	index, err = json.MarshalIndent(idx, "", "\t")
	if err != nil {
		return nil, nil, fmt.Errorf("encode openapi bundle index: %w", err)
	}
	return append(index, '\n'), buf.Bytes(), nil
}

// LoadBundle returns the documents of a bundle. The documents refer to
// data; they do not copy it.
func LoadBundle(index, data string) (*Documents, error) {
	var idx bundleIndex
	if err := json.Unmarshal([]byte(index), &idx); err != nil {
		return nil, fmt.Errorf("decode openapi bundle index: %w", err)
	}
	slice := func(sp span) (string, error) {
		if sp.Offset < 0 || sp.Length <= 0 || sp.Offset+sp.Length > len(data) {
			return "", fmt.Errorf("openapi bundle: span %d+%d outside the %d bytes of data", sp.Offset, sp.Length, len(data))
		}
		return data[sp.Offset : sp.Offset+sp.Length], nil
	}
	doc := func(e bundleEntry) (*document, error) {
		gz, err := slice(e.JSON)
		if err != nil {
			return nil, err
		}
		d := &document{gz: gz, etag: e.ETag}
		if e.Proto != nil {
			if d.protoGz, err = slice(*e.Proto); err != nil {
				return nil, err
			}
		}
		return d, nil
	}
	d := &Documents{modTime: time.Now(), v3: make(map[string]*document, len(idx.V3))}
	var err error
	if d.v2, err = doc(idx.V2); err != nil {
		return nil, err
	}
	if d.discovery, err = doc(idx.Discovery); err != nil {
		return nil, err
	}
	for k, e := range idx.V3 {
		if d.v3[k], err = doc(e); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// The documents of kedge's served resources, written by ./gen (go generate).
var (
	//go:embed zz_generated.openapi.json
	embeddedIndex string
	//go:embed zz_generated.openapi.bin
	embeddedData string
)

// Embedded returns the documents of the resources kedge serves
// (registry.Core), built with kube-openapi when kedge was built: see
// package builder and ./gen.
func Embedded() (*Documents, error) {
	d, err := LoadBundle(embeddedIndex, embeddedData)
	if err != nil {
		return nil, fmt.Errorf("embedded openapi documents: %w", err)
	}
	return d, nil
}

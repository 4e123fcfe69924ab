package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"kedge.dev/kedge/raftstore"
)

// continueToken is the decoded form of an opaque continue parameter: the
// revision the first page was read at (-1: read the latest) and the last key
// returned, relative to the collection's prefix.
type continueToken struct {
	V     string `json:"v"`
	RV    int64  `json:"rv"`
	Start string `json:"start"`
}

const continueVersion = "meta.k8s.io/v1"

func encodeContinue(rv int64, start string) string {
	data, _ := json.Marshal(continueToken{V: continueVersion, RV: rv, Start: start})
	return base64.RawURLEncoding.EncodeToString(data)
}

func decodeContinue(s string) (continueToken, error) {
	var t continueToken
	data, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(data, &t)
	}
	if err == nil && (t.V != continueVersion || t.RV == 0 || t.RV < -1 || t.Start == "") {
		err = errors.New("unknown token format")
	}
	if err != nil {
		return t, apierrors.NewBadRequest(fmt.Sprintf("continue key is not valid: %v", err))
	}
	return t, nil
}

// listRequest is a parsed list (or the list part of a watch).
type listRequest struct {
	filter *filter
	limit  int64
	// rev is the revision to read at (0: latest); minRev the revision the
	// result must not be older than.
	rev, minRev int64
	// start is the key to continue after; fromContinue says it came from
	// a continue token.
	start        string
	fromContinue bool
	rvParam      string
}

// parseList applies Kubernetes' resourceVersion, resourceVersionMatch,
// limit and continue rules.
func parseList(res *resource, prefix string, q url.Values) (*listRequest, error) {
	f, err := parseFilter(res, q)
	if err != nil {
		return nil, err
	}
	lr := &listRequest{filter: f, rvParam: q.Get("resourceVersion")}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("limit: invalid value %q", s))
		}
		if n > 0 {
			lr.limit = n
		}
	}
	rv, match, cont := lr.rvParam, metav1.ResourceVersionMatch(q.Get("resourceVersionMatch")), q.Get("continue")
	rvNum, err := parseRV(rv)
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("resourceVersion: %v", err))
	}
	switch match {
	case "", metav1.ResourceVersionMatchExact, metav1.ResourceVersionMatchNotOlderThan:
	default:
		return nil, apierrors.NewBadRequest(fmt.Sprintf("resourceVersionMatch: unsupported value %q: supported values are \"Exact\", \"NotOlderThan\"", match))
	}
	if match != "" && rv == "" {
		return nil, apierrors.NewBadRequest("resourceVersionMatch is forbidden unless resourceVersion is provided")
	}
	if match == metav1.ResourceVersionMatchExact && rvNum == 0 {
		return nil, apierrors.NewBadRequest(`resourceVersionMatch "Exact" is forbidden for resourceVersion "0"`)
	}
	if cont != "" {
		if rvNum != 0 || match != "" {
			return nil, apierrors.NewBadRequest("specifying resource version is not allowed when using continue")
		}
		tok, err := decodeContinue(cont)
		if err != nil {
			return nil, err
		}
		if tok.RV > 0 {
			lr.rev = tok.RV
		}
		lr.start, lr.fromContinue = prefix+tok.Start, true
		return lr, nil
	}
	switch {
	case match == metav1.ResourceVersionMatchExact:
		lr.rev = rvNum
	case match == metav1.ResourceVersionMatchNotOlderThan:
		lr.minRev = rvNum
	case rvNum == 0:
	case lr.limit > 0:
		// A resourceVersion with a limit and no match is an exact read
		// (Kubernetes' legacy paging semantics).
		lr.rev = rvNum
	default:
		lr.minRev = rvNum
	}
	return lr, nil
}

// listResult is one page of matching objects.
type listResult struct {
	items     []runtime.Object
	rev       int64
	cont      string
	remaining *int64
}

// list reads one page: it keeps reading store pages until limit objects
// match or the collection ends.
func (s *Server) list(ctx context.Context, res *resource, prefix string, lr *listRequest) (*listResult, error) {
	out := &listResult{}
	start, rev := lr.start, lr.rev
	for {
		page, err := s.cfg.Store.List(ctx, prefix, raftstore.ListOptions{Revision: rev, Limit: lr.limit, StartAfter: start})
		if err != nil {
			return nil, s.listError(err, lr, prefix)
		}
		rev = page.Revision
		if lr.minRev > 0 && page.Revision < lr.minRev {
			return nil, tooLargeRV(fmt.Errorf("%d is newer than the store's revision %d", lr.minRev, page.Revision))
		}
		for i, kv := range page.KVs {
			obj, err := res.decode(kv)
			if err != nil {
				return nil, err
			}
			if lr.filter.matches(obj) {
				out.items = append(out.items, obj)
			}
			if lr.limit > 0 && int64(len(out.items)) == lr.limit {
				left := int64(len(page.KVs)-1-i) + page.Remaining
				if i < len(page.KVs)-1 || page.More {
					out.cont = encodeContinue(rev, strings.TrimPrefix(kv.Key, prefix))
					if lr.filter.empty() {
						out.remaining = &left
					}
				}
				out.rev = rev
				return out, nil
			}
		}
		if lr.limit == 0 || !page.More || len(page.KVs) == 0 {
			out.rev = rev
			return out, nil
		}
		start = page.KVs[len(page.KVs)-1].Key
	}
}

// listError maps store errors of a list to Kubernetes' answers.
func (s *Server) listError(err error, lr *listRequest, prefix string) error {
	switch {
	case errors.Is(err, raftstore.ErrCompacted) && lr.fromContinue:
		e := apierrors.NewResourceExpired("The provided continue parameter is too old to display a consistent list result. " +
			"You can start a new list without the continue parameter, or use the continue token in this response to retrieve " +
			"the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that " +
			"were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.")
		e.ErrStatus.ListMeta.Continue = encodeContinue(-1, strings.TrimPrefix(lr.start, prefix))
		return e
	case errors.Is(err, raftstore.ErrCompacted):
		return apierrors.NewResourceExpired(fmt.Sprintf("too old resource version: %d (%v)", lr.rev, err))
	case errors.Is(err, raftstore.ErrFutureRevision):
		return tooLargeRV(err)
	}
	return fmt.Errorf("list %s: %w", prefix, err)
}

// serveList answers GET of a collection.
func (s *Server) serveList(w http.ResponseWriter, r *http.Request, t target) {
	out, ok := negotiate(r.Header.Get("Accept"), capabilities{table: true, partial: true})
	if !ok {
		s.writeError(w, r, errNotAcceptable(r.Header.Get("Accept")), t.res.gr, "")
		return
	}
	prefix := t.res.key(t.namespace, "")
	lr, err := parseList(t.res, prefix, r.URL.Query())
	if err == nil && out.kind == outTable {
		_, err = parseTableOptions(r.URL.Query())
	}
	if err != nil {
		s.writeError(w, r, err, t.res.gr, "")
		return
	}
	result, err := s.list(r.Context(), t.res, prefix, lr)
	if err != nil {
		s.writeError(w, r, err, t.res.gr, "")
		return
	}
	lm := metav1.ListMeta{
		ResourceVersion:    strconv.FormatInt(result.rev, 10),
		Continue:           result.cont,
		RemainingItemCount: result.remaining,
	}
	switch out.kind {
	case outTable:
		opts, _ := parseTableOptions(r.URL.Query())
		table, err := t.res.toTable(result.items, out.version, opts, true)
		if err != nil {
			s.writeError(w, r, err, t.res.gr, "")
			return
		}
		table.ListMeta = lm
		s.writeOut(w, out, http.StatusOK, table, true)
	case outPartial:
		pl := &metav1.PartialObjectMetadataList{
			TypeMeta: metav1.TypeMeta{Kind: "PartialObjectMetadataList", APIVersion: "meta.k8s.io/" + out.version},
			ListMeta: lm,
			Items:    []metav1.PartialObjectMetadata{},
		}
		for _, obj := range result.items {
			pm := partialMeta(obj, out.version)
			pm.TypeMeta = metav1.TypeMeta{}
			pl.Items = append(pl.Items, *pm)
		}
		s.writeOut(w, out, http.StatusOK, pl, true)
	default:
		list, err := t.res.newList(result.items, lm)
		if err != nil {
			s.writeError(w, r, err, t.res.gr, "")
			return
		}
		s.writeOut(w, out, http.StatusOK, list, true)
	}
}

// newList builds the kind's typed list; items carry no apiVersion/kind, as
// in Kubernetes' responses.
func (res *resource) newList(items []runtime.Object, lm metav1.ListMeta) (runtime.Object, error) {
	list := res.NewList()
	for _, obj := range items {
		obj.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{})
	}
	if err := meta.SetList(list, items); err != nil {
		return nil, fmt.Errorf("build %s list: %w", res.Kind, err)
	}
	la, err := meta.ListAccessor(list)
	if err != nil {
		return nil, fmt.Errorf("build %s list: %w", res.Kind, err)
	}
	la.SetResourceVersion(lm.ResourceVersion)
	la.SetContinue(lm.Continue)
	la.SetRemainingItemCount(lm.RemainingItemCount)
	list.GetObjectKind().SetGroupVersionKind(res.listGVK)
	return list, nil
}

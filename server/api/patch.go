package api

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"kedge.dev/kedge/internal/strategicpatch"
)

// servePatch answers PATCH of an object or of its status. The patch is
// applied to the current object on every attempt of the update loop, so a
// concurrent write makes it apply again instead of failing, unless the
// patch pins a resourceVersion.
func (s *Server) servePatch(w http.ResponseWriter, r *http.Request, t target) {
	q := r.URL.Query()
	dryRun, err := parseDryRun(q)
	if err != nil {
		s.writeError(w, r, err, t.res.gr, t.name)
		return
	}
	fv, err := parseFieldValidation(r)
	if err != nil {
		s.writeError(w, r, err, t.res.gr, t.name)
		return
	}
	pt, err := patchType(r.Header.Get("Content-Type"))
	if err != nil {
		s.writeError(w, r, err, t.res.gr, t.name)
		return
	}
	patch, err := s.readBody(r)
	if err != nil {
		s.writeError(w, r, err, t.res.gr, t.name)
		return
	}
	var jp jsonpatch.Patch
	if pt == types.JSONPatchType {
		if jp, err = jsonpatch.DecodePatch(patch); err != nil {
			s.writeError(w, r, apierrors.NewBadRequest(fmt.Sprintf("the JSON patch could not be decoded: %v", err)), t.res.gr, t.name)
			return
		}
	} else if !json.Valid(patch) {
		s.writeError(w, r, apierrors.NewBadRequest("the patch is not valid JSON"), t.res.gr, t.name)
		return
	}
	kind := updateMain
	if t.sub == "status" {
		kind = updateStatus
	}
	var warnings []string
	out, err := s.update(r.Context(), t.res, t.namespace, t.name, kind, func(cur runtime.Object) (runtime.Object, error) {
		next, w, err := applyPatch(t, pt, patch, jp, cur, fv)
		warnings = w
		return next, err
	}, dryRun)
	if err != nil {
		s.writeError(w, r, err, t.res.gr, t.name)
		return
	}
	addWarnings(w, warnings)
	s.respondStored(w, r, t.res, http.StatusOK, out.obj, out.stored)
}

// patchType maps the Content-Type of a PATCH to its kind; server-side apply
// is not served yet.
func patchType(ct string) (types.PatchType, error) {
	base, _, err := mime.ParseMediaType(ct)
	if err != nil {
		base = ct
	}
	switch pt := types.PatchType(base); pt {
	case types.JSONPatchType, types.MergePatchType, types.StrategicMergePatchType:
		return pt, nil
	case types.ApplyYAMLPatchType, types.ApplyCBORPatchType:
		return "", errUnsupportedMediaType("server-side apply is not supported by kedge yet; " +
			"use client-side apply (kubectl apply without --server-side) or a merge or strategic merge patch")
	default:
		return "", errUnsupportedMediaType(fmt.Sprintf("the body of the request was in an unknown format %q - accepted media types include: "+
			"application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json", ct))
	}
}

// applyPatch applies one patch to the current object and decodes the
// result with fieldValidation, so unknown fields a patch adds are caught
// as in a create.
func applyPatch(t target, pt types.PatchType, patch []byte, jp jsonpatch.Patch, cur runtime.Object, fv fieldValidation) (runtime.Object, []string, error) {
	cur.GetObjectKind().SetGroupVersionKind(t.res.gvk)
	original, err := json.Marshal(cur)
	if err != nil {
		return nil, nil, fmt.Errorf("encode %s %s to patch: %w", t.res.gr, t.name, err)
	}
	var patched []byte
	switch pt {
	case types.JSONPatchType:
		patched, err = jp.Apply(original)
	case types.MergePatchType:
		patched, err = jsonpatch.MergePatch(original, patch)
	case types.StrategicMergePatchType:
		patched, err = strategicpatch.StrategicMergePatch(original, patch, t.res.New())
	}
	if err != nil && pt == types.JSONPatchType {
		// Kubernetes answers a JSON patch that does not apply with 422.
		return nil, nil, errWithCode(http.StatusUnprocessableEntity, fmt.Sprintf("the JSON patch could not be applied: %v", err))
	}
	if err != nil {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("the patch could not be applied: %v", err))
	}
	next, warnings, err := decodeInto(t.res, patched, nil, fv)
	if err != nil {
		return nil, nil, err
	}
	if err := checkIdentity(t, next); err != nil {
		return nil, nil, err
	}
	return next, warnings, nil
}

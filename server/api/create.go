package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/api/validation/path"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"kedge.dev/kedge/raftstore"
)

// generateNameAttempts is how many random names a create with
// generateName tries before giving up on collisions.
const generateNameAttempts = 8

// parseDryRun reads dryRun; "All" is the only value Kubernetes defines.
func parseDryRun(q url.Values) (bool, error) {
	for _, v := range q["dryRun"] {
		if v != metav1.DryRunAll {
			return false, apierrors.NewBadRequest(fmt.Sprintf("dryRun: Unsupported value: %q: supported values: \"All\"", v))
		}
	}
	return len(q["dryRun"]) > 0, nil
}

// decodeRequest reads, decodes and checks the body of a create or update.
func (s *Server) decodeRequest(r *http.Request, res *resource) (runtime.Object, []string, error) {
	fv, err := parseFieldValidation(r)
	if err != nil {
		return nil, nil, err
	}
	data, err := s.readBody(r)
	if err != nil {
		return nil, nil, err
	}
	if len(data) == 0 {
		return nil, nil, apierrors.NewBadRequest("the request has no body; send the object to write")
	}
	return decodeBody(r, res, data, fv)
}

// serveCreate answers POST to a collection.
func (s *Server) serveCreate(w http.ResponseWriter, r *http.Request, t target) {
	dryRun, err := parseDryRun(r.URL.Query())
	if err != nil {
		s.writeError(w, r, err, t.res.gr, "")
		return
	}
	obj, warnings, err := s.decodeRequest(r, t.res)
	if err != nil {
		s.writeError(w, r, err, t.res.gr, "")
		return
	}
	created, stored, err := s.create(r.Context(), t.res, t.namespace, obj, dryRun)
	if err != nil {
		s.writeError(w, r, err, t.res.gr, accessor(obj).GetName())
		return
	}
	addWarnings(w, warnings)
	s.respondStored(w, r, t.res, http.StatusCreated, created, stored)
}

// create runs the create pipeline: namespace from the URL, system fields,
// Strategy.PrepareForCreate, validation, namespace checks, then the store.
// It returns the object for a dry run, else what the store holds.
func (s *Server) create(ctx context.Context, res *resource, namespace string, obj runtime.Object, dryRun bool) (runtime.Object, *raftstore.KeyValue, error) {
	m := accessor(obj)
	if res.Namespaced {
		switch {
		case m.GetNamespace() == "":
			m.SetNamespace(namespace)
		case m.GetNamespace() != namespace:
			return nil, nil, apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
		}
	} else {
		m.SetNamespace("")
	}
	m.SetDeletionTimestamp(nil)
	m.SetDeletionGracePeriodSeconds(nil)
	m.SetResourceVersion("")
	m.SetSelfLink("")
	m.SetManagedFields(nil)
	// Only kinds whose strategy keeps a generation have one (pods here;
	// not namespaces, nodes, events, secrets or configmaps), as in
	// Kubernetes; what a client sent is not kept.
	m.SetGeneration(0)
	res.Strategy.PrepareForCreate(obj)
	generated := m.GetName() == "" && m.GetGenerateName() != ""
	if generated {
		m.SetName(generateName(m.GetGenerateName()))
	}
	m.SetUID(uuid.NewUUID())
	m.SetCreationTimestamp(metav1.NewTime(s.cfg.Now()))

	errs := validateMetaCreate(obj, res.Namespaced)
	errs = append(errs, res.Strategy.ValidateCreate(obj)...)
	if errs = dedupe(errs); len(errs) > 0 {
		return nil, nil, apierrors.NewInvalid(res.gvk.GroupKind(), m.GetName(), errs)
	}
	if err := s.checkNamespace(ctx, res, m.GetNamespace(), m.GetName()); err != nil {
		return nil, nil, err
	}
	for attempt := 1; ; attempt++ {
		data, err := res.encode(obj)
		if err != nil {
			return nil, nil, err
		}
		if dryRun {
			return obj, nil, nil
		}
		kv, err := s.cfg.Store.Create(ctx, res.key(m.GetNamespace(), m.GetName()), data)
		if errors.Is(err, raftstore.ErrKeyExists) && generated && attempt < generateNameAttempts {
			m.SetName(generateName(m.GetGenerateName()))
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("create %s %s: %w", res.gr, m.GetName(), err)
		}
		s.encoded.add(kv)
		return nil, &kv, nil
	}
}

// generateName appends five random characters, as Kubernetes does.
func generateName(base string) string {
	const maxBase = 63 - 5
	if len(base) > maxBase {
		base = base[:maxBase]
	}
	return base + utilrand.String(5)
}

// validateMetaCreate checks what storage itself needs and what every kind
// shares: a name usable as a path segment, labels, annotations, finalizers,
// owner references. Kind-specific name rules are the strategy's.
func validateMetaCreate(obj runtime.Object, namespaced bool) field.ErrorList {
	return apivalidation.ValidateObjectMetaAccessor(accessor(obj), namespaced, pathSegmentName, field.NewPath("metadata"))
}

func pathSegmentName(name string, prefix bool) []string {
	if prefix {
		return path.IsValidPathSegmentPrefix(name)
	}
	return path.IsValidPathSegmentName(name)
}

// dedupe drops repeated errors (the generic and the kind's metadata checks
// may report the same problem).
func dedupe(errs field.ErrorList) field.ErrorList {
	seen := map[string]bool{}
	var out field.ErrorList
	for _, e := range errs {
		if k := e.Error(); !seen[k] {
			seen[k] = true
			out = append(out, e)
		}
	}
	return out
}

// checkNamespace refuses content in a namespace that does not exist (404)
// or is terminating (403), as Kubernetes' NamespaceLifecycle admission does.
func (s *Server) checkNamespace(ctx context.Context, res *resource, namespace, name string) error {
	if !res.Namespaced || s.namespaces == nil {
		return nil
	}
	obj, _, err := s.getObject(ctx, s.namespaces, "", namespace)
	if errors.Is(err, raftstore.ErrNotFound) {
		return apierrors.NewNotFound(s.namespaces.gr, namespace)
	}
	if err != nil {
		return err
	}
	terminating := accessor(obj).GetDeletionTimestamp() != nil
	if ns, ok := obj.(*corev1.Namespace); ok && ns.Status.Phase == corev1.NamespaceTerminating {
		terminating = true
	}
	if terminating {
		e := apierrors.NewForbidden(res.gr, name, fmt.Errorf("unable to create new content in namespace %s because it is being terminated", namespace))
		e.ErrStatus.Details.Causes = append(e.ErrStatus.Details.Causes, metav1.StatusCause{
			Type:    corev1.NamespaceTerminatingCause,
			Message: fmt.Sprintf("namespace %s is being terminated", namespace),
			Field:   "metadata.namespace",
		})
		return e
	}
	return nil
}

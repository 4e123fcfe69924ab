package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"kedge.dev/kedge/raftstore"
	"kedge.dev/kedge/server/registry"
)

// updateKind says which preparation an update gets.
type updateKind int

const (
	updateMain     updateKind = iota // PUT/PATCH of the resource
	updateStatus                     // PUT/PATCH of the status subresource
	updateFinalize                   // PUT of a namespace's finalize subresource
	updateSystem                     // a write the server decided (deletion marks, finalize, binding)
)

// maxUpdateAttempts bounds retries of an update on store conflicts the
// client did not ask for (Kubernetes' GuaranteedUpdate loop).
const maxUpdateAttempts = 10

// mutation returns the object to write given the current one (a copy the
// mutation may change). A resourceVersion on the returned object that
// differs from the current one is a precondition that fails with 409.
type mutation func(cur runtime.Object) (runtime.Object, error)

// updateOutcome is what an update did.
type updateOutcome struct {
	// obj is the object after the update; nil when stored is set: the
	// response is then written from the stored bytes (respondStored).
	obj runtime.Object
	// stored is what the store now holds when the update wrote.
	stored  *raftstore.KeyValue
	deleted bool // the update removed the last finalizer of a deleted object
}

// localReader is a store that can also read the state this server has
// applied, without confirming it with the raft leader (raftkv). Such a
// copy may miss a write acknowledged through another server.
type localReader interface {
	GetLocal(ctx context.Context, key string) (raftstore.KeyValue, error)
}

// update reads, mutates, prepares, validates and writes one object with
// the read's mod revision, retrying on conflicts. Nothing is written when
// any step fails, when dryRun is set, or when the object is unchanged.
//
// As Kubernetes' GuaranteedUpdate starts from its watch cache, the first
// read is of the local state when the store has one: the write's compare
// on the mod revision, which the leader checks, catches a stale copy, and
// every answer that a stale copy could make wrong (not found, a
// resourceVersion precondition that fails, no change) is decided again
// on a linearizable read; so is a dry run, which writes nothing for a
// compare to check. On a follower this saves a round trip to the leader
// and a quorum check per update.
func (s *Server) update(ctx context.Context, res *resource, namespace, name string, kind updateKind, mutate mutation, dryRun bool) (updateOutcome, error) {
	key := res.key(namespace, name)
	local, _ := s.cfg.Store.(localReader)
	for attempt := 1; ; attempt++ {
		// A conflict retries on a linearizable read; a dry run writes
		// nothing, so no compare would catch a stale copy.
		fresh := local == nil || attempt > 1 || dryRun
		var cur runtime.Object
		var kv raftstore.KeyValue
		var err error
		if fresh {
			cur, kv, err = s.getObject(ctx, res, namespace, name)
		} else if kv, err = local.GetLocal(ctx, key); err == nil {
			cur, err = res.decode(kv)
		} else if errors.Is(err, raftstore.ErrNotFound) {
			continue // created through another server, maybe
		} else {
			err = fmt.Errorf("get %s %s/%s: %w", res.gr, namespace, name, err)
		}
		if err != nil {
			return updateOutcome{}, err
		}
		curRV := strconv.FormatInt(kv.ModRevision, 10)
		next, err := mutate(cur.DeepCopyObject())
		if err != nil {
			return updateOutcome{}, err
		}
		nm := accessor(next)
		if rv := nm.GetResourceVersion(); rv != "" && rv != curRV {
			if !fresh {
				continue
			}
			return updateOutcome{}, apierrors.NewConflict(res.gr, name, errModified)
		}
		nm.SetResourceVersion(curRV)
		if kind != updateSystem {
			if err := s.prepareUpdate(res, kind, next, cur); err != nil {
				return updateOutcome{}, err
			}
		}
		data, err := res.encode(next)
		if err != nil {
			return updateOutcome{}, err
		}
		if bytes.Equal(data, kv.Value) {
			if !fresh {
				continue
			}
			// Kubernetes skips no-op writes: no new revision, no event.
			return updateOutcome{obj: cur}, nil
		}
		if shouldDeleteOnUpdate(next, cur) {
			if dryRun {
				return updateOutcome{obj: next, deleted: true}, nil
			}
			gone, err := s.cfg.Store.Delete(ctx, key, kv.ModRevision)
			if errors.Is(err, raftstore.ErrConflict) && attempt < maxUpdateAttempts {
				continue
			}
			if err != nil {
				return updateOutcome{}, fmt.Errorf("delete finalized %s %s: %w", res.gr, name, err)
			}
			obj, err := res.decode(gone)
			return updateOutcome{obj: obj, deleted: true}, err
		}
		if dryRun {
			return updateOutcome{obj: next}, nil
		}
		nkv, err := s.cfg.Store.Update(ctx, key, data, kv.ModRevision)
		if errors.Is(err, raftstore.ErrConflict) && attempt < maxUpdateAttempts {
			continue
		}
		if err != nil {
			return updateOutcome{}, fmt.Errorf("update %s %s: %w", res.gr, name, err)
		}
		s.encoded.add(nkv)
		return updateOutcome{stored: &nkv}, nil
	}
}

// prepareUpdate applies the generic metadata rules, the strategy's
// preparation and validation of a client's update.
func (s *Server) prepareUpdate(res *resource, kind updateKind, next, cur runtime.Object) error {
	nm, cm := accessor(next), accessor(cur)
	// Fields only the server sets are kept from the stored object when the
	// client leaves them out, so a client may send what it last read or a
	// fresh object.
	if nm.GetUID() == "" {
		nm.SetUID(cm.GetUID())
	}
	nm.SetCreationTimestamp(cm.GetCreationTimestamp())
	if nm.GetDeletionTimestamp() == nil {
		nm.SetDeletionTimestamp(cm.GetDeletionTimestamp())
	}
	if nm.GetDeletionGracePeriodSeconds() == nil {
		nm.SetDeletionGracePeriodSeconds(cm.GetDeletionGracePeriodSeconds())
	}
	nm.SetGeneration(cm.GetGeneration())
	nm.SetSelfLink("")
	nm.SetManagedFields(nil)
	switch kind {
	case updateStatus:
		res.Strategy.PrepareForStatusUpdate(next, cur)
	case updateFinalize:
		ns, ok1 := next.(*corev1.Namespace)
		old, ok2 := cur.(*corev1.Namespace)
		if !ok1 || !ok2 {
			return fmt.Errorf("finalize of %T", next)
		}
		registry.PrepareNamespaceForFinalize(ns, old)
	default:
		res.Strategy.PrepareForUpdate(next, cur)
		// Kinds without a generation (it stayed 0 at create) keep none.
		if cm.GetGeneration() > 0 && nm.GetGeneration() == cm.GetGeneration() && specChanged(next, cur) {
			nm.SetGeneration(cm.GetGeneration() + 1)
		}
	}
	errs := apivalidation.ValidateObjectMetaAccessorUpdate(nm, cm, field.NewPath("metadata"))
	errs = append(errs, res.Strategy.ValidateUpdate(next, cur)...)
	if errs = dedupe(errs); len(errs) > 0 {
		return apierrors.NewInvalid(res.gvk.GroupKind(), nm.GetName(), errs)
	}
	return nil
}

// specChanged reports whether anything but metadata and status differs:
// Kubernetes bumps metadata.generation on such changes.
func specChanged(a, b runtime.Object) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	if errA == nil && errB == nil {
		// Both encodings are compact and deterministic: comparing their
		// members is what decoding into maps and encoding again compares,
		// at a fraction of the cost (this runs on every update).
		if changed, ok := specMembersDiffer(ja, jb); ok {
			return changed
		}
	}
	return specChangedSlow(a, b)
}

// specChangedSlow is specChanged by decoding into maps: the reference
// definition, used when the fast comparison cannot read the JSON.
func specChangedSlow(a, b runtime.Object) bool {
	strip := func(o runtime.Object) string {
		data, err := json.Marshal(o)
		if err != nil {
			return ""
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(data, &m) != nil {
			return ""
		}
		delete(m, "metadata")
		delete(m, "status")
		delete(m, "apiVersion")
		delete(m, "kind")
		out, _ := json.Marshal(m)
		return string(out)
	}
	return strip(a) != strip(b)
}

// shouldDeleteOnUpdate is true when an update of an object marked for
// deletion removed what held it: its last finalizer (and for a Namespace,
// its last spec finalizer). A pod still in its grace period waits for its
// node to delete it.
func shouldDeleteOnUpdate(next, cur runtime.Object) bool {
	nm, cm := accessor(next), accessor(cur)
	if cm.GetDeletionTimestamp() == nil || len(nm.GetFinalizers()) > 0 {
		return false
	}
	if ns, ok := next.(*corev1.Namespace); ok {
		return len(ns.Spec.Finalizers) == 0
	}
	if len(cm.GetFinalizers()) == 0 {
		return false
	}
	g := cm.GetDeletionGracePeriodSeconds()
	return g == nil || *g == 0
}

// serveUpdate answers PUT of an object, of its status, or of a namespace's
// finalize subresource (only spec.finalizers changes; when the last one goes
// from a namespace being deleted, the namespace is removed).
func (s *Server) serveUpdate(w http.ResponseWriter, r *http.Request, t target) {
	dryRun, err := parseDryRun(r.URL.Query())
	if err != nil {
		s.writeError(w, r, err, t.res.gr, t.name)
		return
	}
	obj, warnings, err := s.decodeRequest(r, t.res)
	if err == nil {
		err = checkIdentity(t, obj)
	}
	if err != nil {
		s.writeError(w, r, err, t.res.gr, t.name)
		return
	}
	kind := updateMain
	switch t.sub {
	case "status":
		kind = updateStatus
	case "finalize":
		kind = updateFinalize
	}
	out, err := s.update(r.Context(), t.res, t.namespace, t.name, kind, func(runtime.Object) (runtime.Object, error) {
		return obj.DeepCopyObject(), nil
	}, dryRun)
	if err != nil {
		s.writeError(w, r, err, t.res.gr, t.name)
		return
	}
	addWarnings(w, warnings)
	s.respondStored(w, r, t.res, http.StatusOK, out.obj, out.stored)
}

// checkIdentity makes the body's name and namespace agree with the URL,
// filling them in when the body leaves them out.
func checkIdentity(t target, obj runtime.Object) error {
	m := accessor(obj)
	switch m.GetName() {
	case "":
		m.SetName(t.name)
	case t.name:
	default:
		return apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", m.GetName(), t.name))
	}
	if !t.res.Namespaced {
		m.SetNamespace("")
		return nil
	}
	switch m.GetNamespace() {
	case "":
		m.SetNamespace(t.namespace)
	case t.namespace:
	default:
		return apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
	}
	return nil
}

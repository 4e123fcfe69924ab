package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"kedge.dev/kedge/raftstore"
)

// defaultPodGrace is the grace period of a pod without
// spec.terminationGracePeriodSeconds, as Kubernetes' defaulting sets it.
const defaultPodGrace = 30

// parseDeleteOptions reads DeleteOptions from the body (if any) and the
// query, which wins.
func (s *Server) parseDeleteOptions(r *http.Request) (*metav1.DeleteOptions, error) {
	opts := &metav1.DeleteOptions{}
	data, err := s.readBody(r)
	if err != nil {
		return nil, err
	}
	if len(data) > 0 {
		if err := decodeDeleteOptions(r, data, opts); err != nil {
			return nil, err
		}
	}
	q := r.URL.Query()
	if v := q.Get("gracePeriodSeconds"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("gracePeriodSeconds: invalid value %q", v))
		}
		opts.GracePeriodSeconds = &n
	}
	if v := q.Get("propagationPolicy"); v != "" {
		p := metav1.DeletionPropagation(v)
		opts.PropagationPolicy = &p
	}
	if v := q.Get("orphanDependents"); v != "" {
		b := isTrue(v)
		opts.OrphanDependents = &b //nolint:staticcheck // still part of the API
	}
	if dr := q["dryRun"]; len(dr) > 0 {
		opts.DryRun = dr
	}
	if _, err := parseDryRun(url.Values{"dryRun": opts.DryRun}); err != nil {
		return nil, err
	}
	if p := opts.PropagationPolicy; p != nil {
		switch *p {
		case metav1.DeletePropagationOrphan, metav1.DeletePropagationBackground, metav1.DeletePropagationForeground:
		default:
			return nil, apierrors.NewBadRequest(fmt.Sprintf("propagationPolicy: unsupported value %q: supported values are Orphan, Background, Foreground", *p))
		}
		if opts.OrphanDependents != nil { //nolint:staticcheck // still part of the API
			return nil, apierrors.NewBadRequest("orphanDependents and propagationPolicy cannot both be set")
		}
	}
	return opts, nil
}

// decodeDeleteOptions reads a DeleteOptions body in JSON, YAML or
// protobuf (which kubectl sends).
func decodeDeleteOptions(r *http.Request, data []byte, opts *metav1.DeleteOptions) error {
	base, err := bodyMediaType(r)
	if err != nil {
		return err
	}
	if base == contentTypeProtobuf {
		// Clients send meta.k8s.io/v1 or the legacy v1.
		err := decodeProtobuf(data, opts.Unmarshal, "meta.k8s.io/v1", "DeleteOptions")
		if err != nil {
			err = decodeProtobuf(data, opts.Unmarshal, "v1", "DeleteOptions")
		}
		return err
	}
	js, _, err := bodyJSON(base, data)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(js, opts); err != nil {
		return apierrors.NewBadRequest(fmt.Sprintf("the DeleteOptions in the body could not be decoded: %v", err))
	}
	if opts.Kind != "" && opts.Kind != "DeleteOptions" {
		return apierrors.NewBadRequest(fmt.Sprintf("the body must be DeleteOptions, not %s", opts.Kind))
	}
	return nil
}

// deleteAction is what a delete request does to the stored object.
type deleteAction int

const (
	deleteNone   deleteAction = iota // nothing: deletion already pending
	deleteMark                       // write the object back marked for deletion
	deleteRemove                     // remove it from the store
)

// deleteDecision decides a delete as Kubernetes' generic store does: pods
// bound to a node get a grace period; objects with finalizers are only
// marked; a namespace is first marked Terminating; a pending grace period
// may only be shortened. cur may be modified (it becomes the marked object).
func (s *Server) deleteDecision(cur runtime.Object, opts *metav1.DeleteOptions) deleteAction {
	m := accessor(cur)
	now := s.cfg.Now()
	hasFinalizers := len(m.GetFinalizers()) > 0
	if ns, ok := cur.(*corev1.Namespace); ok {
		if m.GetDeletionTimestamp() == nil {
			t := metav1.NewTime(now)
			m.SetDeletionTimestamp(&t)
			ns.Status.Phase = corev1.NamespaceTerminating
			return deleteMark
		}
		if len(ns.Spec.Finalizers) > 0 {
			return deleteNone
		}
	}
	if dt := m.GetDeletionTimestamp(); dt != nil {
		g := m.GetDeletionGracePeriodSeconds()
		if g == nil || *g == 0 {
			if hasFinalizers {
				return deleteNone
			}
			return deleteRemove
		}
		if opts.GracePeriodSeconds == nil || *opts.GracePeriodSeconds >= *g {
			return deleteNone
		}
		period := max(*opts.GracePeriodSeconds, 0)
		if period == 0 && !hasFinalizers {
			return deleteRemove
		}
		t := metav1.NewTime(dt.Add(time.Duration(period-*g) * time.Second))
		m.SetDeletionTimestamp(&t)
		m.SetDeletionGracePeriodSeconds(&period)
		return deleteMark
	}
	period := gracePeriod(cur, opts)
	if period == 0 && !hasFinalizers {
		return deleteRemove
	}
	t := metav1.NewTime(now.Add(time.Duration(period) * time.Second))
	m.SetDeletionTimestamp(&t)
	m.SetDeletionGracePeriodSeconds(&period)
	return deleteMark
}

// gracePeriod is the grace period of a first delete: only pods running on
// a node get one (Kubernetes' pod CheckGracefulDelete).
func gracePeriod(obj runtime.Object, opts *metav1.DeleteOptions) int64 {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return 0
	}
	period := int64(defaultPodGrace)
	switch {
	case opts.GracePeriodSeconds != nil:
		period = *opts.GracePeriodSeconds
	case pod.Spec.TerminationGracePeriodSeconds != nil:
		period = *pod.Spec.TerminationGracePeriodSeconds
	}
	if pod.Spec.NodeName == "" || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return 0
	}
	if period < 0 {
		period = 1
	}
	return period
}

// checkPreconditions applies DeleteOptions.preconditions.
func checkPreconditions(res *resource, cur runtime.Object, opts *metav1.DeleteOptions) error {
	p, m := opts.Preconditions, accessor(cur)
	if p == nil {
		return nil
	}
	if p.UID != nil && *p.UID != m.GetUID() {
		return apierrors.NewConflict(res.gr, m.GetName(), fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", *p.UID, m.GetUID()))
	}
	if p.ResourceVersion != nil && *p.ResourceVersion != m.GetResourceVersion() {
		return apierrors.NewConflict(res.gr, m.GetName(), fmt.Errorf("Precondition failed: ResourceVersion in precondition: %v, ResourceVersion in object meta: %v", *p.ResourceVersion, m.GetResourceVersion()))
	}
	return nil
}

// deleteOne deletes or marks one object and returns it with whether it is
// gone from the store.
func (s *Server) deleteOne(ctx context.Context, res *resource, namespace, name string, opts *metav1.DeleteOptions) (runtime.Object, bool, error) {
	key := res.key(namespace, name)
	dryRun := len(opts.DryRun) > 0
	for attempt := 1; ; attempt++ {
		cur, kv, err := s.getObject(ctx, res, namespace, name)
		if err != nil {
			return nil, false, err
		}
		if err := checkPreconditions(res, cur, opts); err != nil {
			return nil, false, err
		}
		var out raftstore.KeyValue
		switch s.deleteDecision(cur, opts) {
		case deleteNone:
			return cur, false, nil
		case deleteMark:
			if dryRun {
				return cur, false, nil
			}
			data, err := res.encode(cur)
			if err != nil {
				return nil, false, err
			}
			out, err = s.cfg.Store.Update(ctx, key, data, kv.ModRevision)
			if errors.Is(err, raftstore.ErrConflict) && attempt < maxUpdateAttempts {
				continue
			}
			if err != nil {
				return nil, false, fmt.Errorf("mark %s %s deleted: %w", res.gr, name, err)
			}
			s.encoded.add(out)
			obj, err := res.decode(out)
			return obj, false, err
		default:
			if dryRun {
				return cur, true, nil
			}
			out, err = s.cfg.Store.Delete(ctx, key, kv.ModRevision)
			if errors.Is(err, raftstore.ErrConflict) && attempt < maxUpdateAttempts {
				continue
			}
			if err != nil {
				return nil, false, fmt.Errorf("delete %s %s: %w", res.gr, name, err)
			}
			obj, err := res.decode(out)
			return obj, true, err
		}
	}
}

// serveDelete answers DELETE of one object: the object when it stays
// (marked) or for pods, else a Success Status, as Kubernetes does.
func (s *Server) serveDelete(w http.ResponseWriter, r *http.Request, t target) {
	opts, err := s.parseDeleteOptions(r)
	if err != nil {
		s.writeError(w, r, err, t.res.gr, t.name)
		return
	}
	obj, gone, err := s.deleteOne(r.Context(), t.res, t.namespace, t.name, opts)
	if err != nil {
		s.writeError(w, r, err, t.res.gr, t.name)
		return
	}
	if !gone || t.res.returnsDeletedObject() {
		s.respond(w, r, t.res, http.StatusOK, obj)
		return
	}
	s.writeObject(w, r, http.StatusOK, &metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusSuccess,
		Details: &metav1.StatusDetails{
			Name:  t.name,
			Group: t.res.Group,
			Kind:  t.res.Resource.Resource, // Kubernetes puts the resource here.
			UID:   accessor(obj).GetUID(),
		},
	})
}

// returnsDeletedObject: pods answer a delete with the deleted object.
func (res *resource) returnsDeletedObject() bool {
	return res.Group == "" && res.Resource.Resource == "pods"
}

// serveDeleteCollection deletes every object matching the selectors and
// answers with the list of what it deleted or marked.
func (s *Server) serveDeleteCollection(w http.ResponseWriter, r *http.Request, t target) {
	opts, err := s.parseDeleteOptions(r)
	if err != nil {
		s.writeError(w, r, err, t.res.gr, "")
		return
	}
	prefix := t.res.key(t.namespace, "")
	q := r.URL.Query()
	for _, k := range []string{"limit", "continue", "resourceVersion", "resourceVersionMatch"} {
		q.Del(k)
	}
	lr, err := parseList(t.res, prefix, q)
	if err != nil {
		s.writeError(w, r, err, t.res.gr, "")
		return
	}
	result, err := s.list(r.Context(), t.res, prefix, lr)
	if err != nil {
		s.writeError(w, r, err, t.res.gr, "")
		return
	}
	var done []runtime.Object
	for _, item := range result.items {
		m := accessor(item)
		obj, _, err := s.deleteOne(r.Context(), t.res, m.GetNamespace(), m.GetName(), opts)
		if errors.Is(err, raftstore.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			s.writeError(w, r, err, t.res.gr, m.GetName())
			return
		}
		done = append(done, obj)
	}
	rev, err := s.cfg.Store.Revision(r.Context())
	if err != nil {
		s.writeError(w, r, err, t.res.gr, "")
		return
	}
	list, err := t.res.newList(done, metav1.ListMeta{ResourceVersion: strconv.FormatInt(rev, 10)})
	if err != nil {
		s.writeError(w, r, err, t.res.gr, "")
		return
	}
	s.writeObject(w, r, http.StatusOK, list)
}

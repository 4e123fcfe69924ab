package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"kedge.dev/kedge/raftstore"
)

// errModified is the reason Kubernetes gives for an optimistic-concurrency
// conflict; clients (kubectl edit, controllers) recognise the whole message.
var errModified = errors.New("the object has been modified; please apply your changes to the latest version and try again")

// statusFor is the one place where an error becomes the metav1.Status a
// client reads. API errors built by the handlers pass through; store
// sentinels are mapped like the Kubernetes API server maps etcd's, for the
// resource and name being served; anything else is a 500.
func statusFor(err error, gr schema.GroupResource, name string) metav1.Status {
	var st metav1.Status
	var apiStatus apierrors.APIStatus
	switch {
	case errors.As(err, &apiStatus):
		st = apiStatus.Status()
	case errors.Is(err, raftstore.ErrNotFound):
		st = apierrors.NewNotFound(gr, name).ErrStatus
	case errors.Is(err, raftstore.ErrKeyExists):
		st = apierrors.NewAlreadyExists(gr, name).ErrStatus
	case errors.Is(err, raftstore.ErrConflict):
		st = apierrors.NewConflict(gr, name, errModified).ErrStatus
	case errors.Is(err, raftstore.ErrCompacted):
		st = apierrors.NewResourceExpired(fmt.Sprintf("too old resource version: %v", err)).ErrStatus
	case errors.Is(err, raftstore.ErrFutureRevision):
		st = tooLargeRV(err).ErrStatus
	case errors.Is(err, raftstore.ErrClosed):
		st = apierrors.NewServiceUnavailable("the store is shutting down; retry against another server").ErrStatus
	case errors.Is(err, context.DeadlineExceeded):
		st = apierrors.NewTimeoutError(fmt.Sprintf("request did not complete in time: %v", err), 1).ErrStatus
	case errors.Is(err, context.Canceled):
		// The client went away; the status is for the log only.
		st = apierrors.NewTimeoutError("request canceled", 0).ErrStatus
	default:
		st = apierrors.NewInternalError(err).ErrStatus
	}
	st.Kind, st.APIVersion = "Status", "v1"
	if st.Status == "" {
		st.Status = metav1.StatusFailure
	}
	if st.Code == 0 {
		st.Code = http.StatusInternalServerError
	}
	return st
}

// tooLargeRV is Kubernetes' answer to a resourceVersion newer than the
// store's: a 504 that clients retry.
func tooLargeRV(err error) *apierrors.StatusError {
	e := apierrors.NewTimeoutError(fmt.Sprintf("Too large resource version: %v", err), 1)
	e.ErrStatus.Details.Causes = []metav1.StatusCause{{
		Type:    metav1.CauseTypeResourceVersionTooLarge,
		Message: "Too large resource version",
	}}
	return e
}

// errNotServed is the 404 for paths and resources that do not exist.
func errNotServed() *apierrors.StatusError {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status:  metav1.StatusFailure,
		Code:    http.StatusNotFound,
		Reason:  metav1.StatusReasonNotFound,
		Message: "the server could not find the requested resource",
		Details: &metav1.StatusDetails{},
	}}
}

// errNotAcceptable is the 406 when the client accepts nothing we produce.
func errNotAcceptable(accept string) *apierrors.StatusError {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status:  metav1.StatusFailure,
		Code:    http.StatusNotAcceptable,
		Reason:  metav1.StatusReasonNotAcceptable,
		Message: fmt.Sprintf("only the following media types are accepted: application/json, application/yaml (asked for %q)", accept),
	}}
}

// errUnsupportedMediaType is the 415 for a body we cannot read.
func errUnsupportedMediaType(msg string) *apierrors.StatusError {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status:  metav1.StatusFailure,
		Code:    http.StatusUnsupportedMediaType,
		Reason:  metav1.StatusReasonUnsupportedMediaType,
		Message: msg,
	}}
}

// writeError sends err as a Status and logs server-side failures.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error, gr schema.GroupResource, name string) {
	st := statusFor(err, gr, name)
	if st.Code >= 500 {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "code", st.Code, "err", err)
	} else {
		s.log.Debug("request rejected", "method", r.Method, "path", r.URL.Path, "code", st.Code, "reason", st.Reason, "msg", st.Message)
	}
	s.writeJSONObject(w, int(st.Code), &st, "")
}

// emptyGR is used where no resource is involved.
var emptyGR schema.GroupResource

// errWithCode is a Status with the reason Kubernetes gives code and msg as
// its message (used for upstream kubelet errors and patch failures).
func errWithCode(code int, msg string) *apierrors.StatusError {
	e := apierrors.NewGenericServerResponse(code, "", emptyGR, "", msg, 0, false)
	e.ErrStatus.Message = msg
	e.ErrStatus.Details = nil
	return e
}

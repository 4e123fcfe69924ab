// Package client is a small typed REST client for kedge's Kubernetes API.
//
// It speaks the Kubernetes wire protocol (JSON bodies of k8s.io/api types,
// metav1.Status errors, newline-delimited JSON watch streams) without linking
// client-go, which is too heavy for the kedge binary. Objects are addressed by
// a Resource descriptor (group, version, plural, namespace) and encoded with
// encoding/json, so any k8s.io/api type works.
//
// Errors returned by the server are *apierrors.StatusError values, so the
// helpers of k8s.io/apimachinery/pkg/api/errors (IsNotFound, IsConflict,
// IsAlreadyExists, IsGone, ...) work on them. Transport failures are returned
// wrapped with the request that failed.
//
// A Client is safe for concurrent use by many goroutines.
package client

package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Object is what Create and Update send: any k8s.io/api object (they all
// implement metav1.Object through their ObjectMeta).
type Object interface {
	GetName() string
	GetNamespace() string
}

// Get reads the object name of r into out (a pointer, e.g. *corev1.Pod).
func (c *Client) Get(ctx context.Context, r Resource, name string, out any) error {
	return c.do(ctx, request{verb: "get", method: http.MethodGet, res: r, name: name}, out)
}

// List reads the collection r into out (a pointer to a list type, e.g.
// *corev1.PodList). opts carries labelSelector, fieldSelector, limit,
// continue and resourceVersion.
func (c *Client) List(ctx context.Context, r Resource, opts metav1.ListOptions, out any) error {
	return c.do(ctx, request{verb: "list", method: http.MethodGet, res: r, query: listQuery(opts, false)}, out)
}

// Create posts obj to r and decodes the created object into out (nil to
// discard). When r has no namespace, obj's namespace is used.
func (c *Client) Create(ctx context.Context, r Resource, obj Object, out any) error {
	r = withObjectNamespace(r, obj)
	return c.do(ctx, request{verb: "create", method: http.MethodPost, res: r, name: "", body: obj}, out)
}

// Update replaces obj (PUT); obj's resourceVersion makes it a compare-and-swap
// (a stale one yields a Conflict error).
func (c *Client) Update(ctx context.Context, r Resource, obj Object, out any) error {
	r = withObjectNamespace(r, obj)
	return c.do(ctx, request{verb: "update", method: http.MethodPut, res: r, name: obj.GetName(), body: obj}, out)
}

// UpdateStatus replaces obj's status through the status subresource.
func (c *Client) UpdateStatus(ctx context.Context, r Resource, obj Object, out any) error {
	r = withObjectNamespace(r, obj)
	return c.do(ctx, request{verb: "update", method: http.MethodPut, res: r, name: obj.GetName(), sub: "status", body: obj}, out)
}

// Put replaces a subresource of the object name with body, for example
// namespaces/<name>/finalize.
func (c *Client) Put(ctx context.Context, r Resource, name, subresource string, body, out any) error {
	return c.do(ctx, request{verb: "update", method: http.MethodPut, res: r, name: name, sub: subresource, body: body}, out)
}

// Patch applies data, of patch type pt (types.MergePatchType,
// types.StrategicMergePatchType or types.JSONPatchType), to the object name
// or to its subresource when one is given (at most one).
func (c *Client) Patch(ctx context.Context, r Resource, name string, pt types.PatchType, data []byte, out any, subresource ...string) error {
	if len(subresource) > 1 {
		return fmt.Errorf("patch %s %q: at most one subresource, got %v", r, name, subresource)
	}
	req := request{verb: "patch", method: http.MethodPatch, res: r, name: name, body: data, contentType: string(pt)}
	if len(subresource) == 1 {
		req.sub = subresource[0]
	}
	return c.do(ctx, req, out)
}

// Delete deletes the object name. opts carries gracePeriodSeconds,
// preconditions (uid, resourceVersion) and propagationPolicy; it is sent as
// the request body, and its scalar fields also as query parameters.
func (c *Client) Delete(ctx context.Context, r Resource, name string, opts metav1.DeleteOptions) error {
	q := url.Values{}
	if opts.GracePeriodSeconds != nil {
		q.Set("gracePeriodSeconds", strconv.FormatInt(*opts.GracePeriodSeconds, 10))
	}
	if opts.PropagationPolicy != nil {
		q.Set("propagationPolicy", string(*opts.PropagationPolicy))
	}
	opts.Kind, opts.APIVersion = "DeleteOptions", "v1"
	return c.do(ctx, request{verb: "delete", method: http.MethodDelete, res: r, name: name, query: q, body: &opts}, nil)
}

// Post sends body to a subresource of the object name (for example
// pods/<name>/binding with a corev1.Binding) and decodes the answer into out.
func (c *Client) Post(ctx context.Context, r Resource, name, subresource string, body, out any) error {
	return c.do(ctx, request{verb: "create", method: http.MethodPost, res: r, name: name, sub: subresource, body: body}, out)
}

func withObjectNamespace(r Resource, obj Object) Resource {
	if r.Namespace == "" {
		r.Namespace = obj.GetNamespace()
	}
	return r
}

// listQuery encodes the list and watch parameters Kubernetes servers read.
func listQuery(opts metav1.ListOptions, watch bool) url.Values {
	q := url.Values{}
	if opts.LabelSelector != "" {
		q.Set("labelSelector", opts.LabelSelector)
	}
	if opts.FieldSelector != "" {
		q.Set("fieldSelector", opts.FieldSelector)
	}
	if opts.ResourceVersion != "" {
		q.Set("resourceVersion", opts.ResourceVersion)
	}
	if opts.ResourceVersionMatch != "" {
		q.Set("resourceVersionMatch", string(opts.ResourceVersionMatch))
	}
	if opts.TimeoutSeconds != nil {
		q.Set("timeoutSeconds", strconv.FormatInt(*opts.TimeoutSeconds, 10))
	}
	if watch {
		q.Set("watch", "true")
		if opts.AllowWatchBookmarks {
			q.Set("allowWatchBookmarks", "true")
		}
		return q
	}
	if opts.Limit > 0 {
		q.Set("limit", strconv.FormatInt(opts.Limit, 10))
	}
	if opts.Continue != "" {
		q.Set("continue", opts.Continue)
	}
	return q
}

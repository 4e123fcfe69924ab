package client

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
)

// recorded is what the fake server saw of one request.
type recorded struct {
	Method, Path, Query, ContentType, Auth, UserAgent string
	Body                                              []byte
}

// fakeServer answers every request with code and body and records it.
func fakeServer(t testing.TB, code int, body string) (*Client, *recorded) {
	t.Helper()
	rec := &recorded{}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		*rec = recorded{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Content-Type"),
			r.Header.Get("Authorization"), r.Header.Get("User-Agent"), data}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	c, err := New(Config{Server: srv.URL, Token: "tok", CAData: caPEM(t, srv), UserAgent: "test/1"})
	if err != nil {
		t.Fatal(err)
	}
	return c, rec
}

func caPEM(t testing.TB, srv *httptest.Server) []byte {
	t.Helper()
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
}

const podJSON = `{"kind":"Pod","apiVersion":"v1","metadata":{"name":"web","namespace":"default","uid":"u1","resourceVersion":"7"},"spec":{"nodeName":"n1","containers":[{"name":"c","image":"nginx"}]}}`

func statusJSON(code int, reason metav1.StatusReason, msg string) string {
	return fmt.Sprintf(`{"kind":"Status","apiVersion":"v1","status":"Failure","message":%q,"reason":%q,"code":%d}`, msg, reason, code)
}

func TestRequests(t *testing.T) {
	grace := int64(0)
	uid := types.UID("u1")
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}}
	tests := []struct {
		name       string
		call       func(ctx context.Context, c *Client) error
		wantMethod string
		wantPath   string
		wantQuery  string
		wantCT     string
		wantBody   string // substring
	}{
		{"get", func(ctx context.Context, c *Client) error {
			var p corev1.Pod
			if err := c.Get(ctx, Pods.In("default"), "web", &p); err != nil {
				return err
			}
			if p.Spec.NodeName != "n1" || p.ResourceVersion != "7" {
				return fmt.Errorf("decoded %+v", p)
			}
			return nil
		}, "GET", "/api/v1/namespaces/default/pods/web", "", "", ""},
		{"list with selectors", func(ctx context.Context, c *Client) error {
			var l corev1.PodList
			return c.List(ctx, Pods, metav1.ListOptions{LabelSelector: "app=web", FieldSelector: "spec.nodeName=n1", Limit: 5, Continue: "abc"}, &l)
		}, "GET", "/api/v1/pods", "continue=abc&fieldSelector=spec.nodeName%3Dn1&labelSelector=app%3Dweb&limit=5", "", ""},
		{"create uses object namespace", func(ctx context.Context, c *Client) error {
			return c.Create(ctx, Pods, pod, nil)
		}, "POST", "/api/v1/namespaces/default/pods", "", "application/json", `"name":"web"`},
		{"update", func(ctx context.Context, c *Client) error {
			return c.Update(ctx, Pods, pod, nil)
		}, "PUT", "/api/v1/namespaces/default/pods/web", "", "application/json", `"name":"web"`},
		{"update status", func(ctx context.Context, c *Client) error {
			return c.UpdateStatus(ctx, Pods, pod, nil)
		}, "PUT", "/api/v1/namespaces/default/pods/web/status", "", "application/json", `"name":"web"`},
		{"patch status", func(ctx context.Context, c *Client) error {
			return c.Patch(ctx, Pods.In("default"), "web", types.MergePatchType, []byte(`{"status":{"phase":"Running"}}`), nil, "status")
		}, "PATCH", "/api/v1/namespaces/default/pods/web/status", "", "application/merge-patch+json", `"phase":"Running"`},
		{"delete with preconditions", func(ctx context.Context, c *Client) error {
			return c.Delete(ctx, Pods.In("default"), "web", metav1.DeleteOptions{GracePeriodSeconds: &grace, Preconditions: &metav1.Preconditions{UID: &uid}})
		}, "DELETE", "/api/v1/namespaces/default/pods/web", "gracePeriodSeconds=0", "application/json", `"preconditions":{"uid":"u1"}`},
		{"post binding", func(ctx context.Context, c *Client) error {
			b := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Target: corev1.ObjectReference{Kind: "Node", Name: "n1"}}
			return c.Post(ctx, Pods.In("default"), "web", "binding", b, nil)
		}, "POST", "/api/v1/namespaces/default/pods/web/binding", "", "application/json", `"target":{"kind":"Node","name":"n1"}`},
		{"put finalize", func(ctx context.Context, c *Client) error {
			return c.Put(ctx, Namespaces, "ns1", "finalize", &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns1"}}, nil)
		}, "PUT", "/api/v1/namespaces/ns1/finalize", "", "application/json", `"name":"ns1"`},
		{"group resource", func(ctx context.Context, c *Client) error {
			return c.Get(ctx, Leases.In("kube-node-lease"), "n1", nil)
		}, "GET", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, rec := fakeServer(t, 200, podJSON)
			if err := tt.call(context.Background(), c); err != nil {
				t.Fatal(err)
			}
			if rec.Method != tt.wantMethod || rec.Path != tt.wantPath || rec.Query != tt.wantQuery {
				t.Errorf("got %s %s?%s, want %s %s?%s", rec.Method, rec.Path, rec.Query, tt.wantMethod, tt.wantPath, tt.wantQuery)
			}
			if rec.ContentType != tt.wantCT {
				t.Errorf("content type %q, want %q", rec.ContentType, tt.wantCT)
			}
			if !strings.Contains(string(rec.Body), tt.wantBody) {
				t.Errorf("body %s does not contain %s", rec.Body, tt.wantBody)
			}
			if rec.Auth != "Bearer tok" || rec.UserAgent != "test/1" {
				t.Errorf("auth %q user agent %q", rec.Auth, rec.UserAgent)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name  string
		code  int
		body  string
		check func(error) bool
	}{
		{"not found", 404, statusJSON(404, metav1.StatusReasonNotFound, `pods "web" not found`), apierrors.IsNotFound},
		{"conflict", 409, statusJSON(409, metav1.StatusReasonConflict, "the object has been modified"), apierrors.IsConflict},
		{"already exists", 409, statusJSON(409, metav1.StatusReasonAlreadyExists, "exists"), apierrors.IsAlreadyExists},
		{"gone", 410, statusJSON(410, metav1.StatusReasonExpired, "too old"), apierrors.IsResourceExpired},
		{"forbidden", 403, statusJSON(403, metav1.StatusReasonForbidden, "no"), apierrors.IsForbidden},
		{"plain text 500", 500, "boom", apierrors.IsInternalError},
		{"plain text 404", 404, "404 page not found", apierrors.IsNotFound},
		{"unauthorized", 401, "", apierrors.IsUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := fakeServer(t, tt.code, tt.body)
			err := c.Get(context.Background(), Pods.In("default"), "web", &corev1.Pod{})
			var se *apierrors.StatusError
			if !errors.As(err, &se) {
				t.Fatalf("error %v (%T) is not a StatusError", err, err)
			}
			if !tt.check(err) {
				t.Errorf("check failed for %v (reason %q code %d)", err, se.ErrStatus.Reason, se.ErrStatus.Code)
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	for _, cfg := range []Config{{}, {Server: "ftp://x"}, {Server: "https://x", CAData: []byte("nope")}} {
		if _, err := New(cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("New(%+v) = %v, want ErrInvalidConfig", cfg, err)
		}
	}
}

func TestTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer srv.Close()
	c, err := New(Config{Server: srv.URL, Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := c.Get(context.Background(), Nodes, "n1", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("timeout not applied")
	}
}

func TestWatch(t *testing.T) {
	release := make(chan struct{})
	var gotQuery string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotQuery = r.URL.RawQuery
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Transfer-Encoding", "chunked")
		fl := w.(http.Flusher)
		for _, typ := range []string{"ADDED", "MODIFIED", "DELETED"} {
			fmt.Fprintf(w, `{"type":%q,"object":%s}`+"\n", typ, podJSON)
			fl.Flush()
		}
		fmt.Fprintf(w, `{"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"12"}}}`+"\n")
		fmt.Fprintf(w, `{"type":"ERROR","object":%s}`+"\n", statusJSON(410, metav1.StatusReasonExpired, "too old resource version"))
		fl.Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	c, err := New(Config{Server: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := c.Watch(ctx, Pods, metav1.ListOptions{ResourceVersion: "5", FieldSelector: "spec.nodeName=n1", AllowWatchBookmarks: true},
		func() any { return &corev1.Pod{} })
	if err != nil {
		t.Fatal(err)
	}
	want := []watch.EventType{watch.Added, watch.Modified, watch.Deleted, watch.Bookmark, watch.Error}
	for i, typ := range want {
		ev := <-ch
		if ev.Type != typ {
			t.Fatalf("event %d: type %s, want %s", i, ev.Type, typ)
		}
		switch typ {
		case watch.Error:
			if !apierrors.IsResourceExpired(ev.Err) && !apierrors.IsGone(ev.Err) {
				t.Errorf("error event %v is not Expired/Gone", ev.Err)
			}
		case watch.Bookmark:
			if ev.Object.(*corev1.Pod).ResourceVersion != "12" {
				t.Errorf("bookmark %+v", ev.Object)
			}
		default:
			if p := ev.Object.(*corev1.Pod); p.Name != "web" || p.Spec.NodeName != "n1" {
				t.Errorf("event %d object %+v", i, p)
			}
		}
	}
	if gotQuery != "allowWatchBookmarks=true&fieldSelector=spec.nodeName%3Dn1&resourceVersion=5&watch=true" {
		t.Errorf("query %q", gotQuery)
	}
	cancel()
	select {
	case _, ok := <-ch:
		if ok {
			t.Fatal("unexpected event after cancel")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("channel not closed after cancel")
	}
}

func TestWatchOpenError(t *testing.T) {
	c, _ := fakeServer(t, 403, statusJSON(403, metav1.StatusReasonForbidden, "nodes cannot watch"))
	_, err := c.Watch(context.Background(), Pods, metav1.ListOptions{}, func() any { return &corev1.Pod{} })
	if !apierrors.IsForbidden(err) {
		t.Fatalf("err = %v, want Forbidden", err)
	}
}

func TestWatchEndOfStreamClosesChannel(t *testing.T) {
	c, _ := fakeServer(t, 200, `{"type":"ADDED","object":`+podJSON+"}\n")
	ch, err := c.Watch(context.Background(), Pods, metav1.ListOptions{}, func() any { return &corev1.Pod{} })
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for range ch {
		n++
	}
	if n != 1 {
		t.Fatalf("got %d events, want 1", n)
	}
}

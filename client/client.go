package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// ErrInvalidConfig is returned by New for a Config that cannot work.
var ErrInvalidConfig = errors.New("invalid client config")

// Config describes how to reach and authenticate to the API server.
type Config struct {
	// Server is the base URL of the API server, e.g. https://127.0.0.1:6443.
	// Required. http:// is accepted (tests, local sockets).
	Server string
	// Token is sent as "Authorization: Bearer <Token>" when not empty.
	Token string
	// CAData holds PEM certificates that verify the server; empty means the
	// system roots.
	CAData []byte
	// UserAgent is sent with every request; default "kedge".
	UserAgent string
	// Timeout bounds each non-watch request; default 30 s. Watches are bounded
	// by their context only.
	Timeout time.Duration
}

// Client is a REST client for the Kubernetes API. Safe for concurrent use.
type Client struct {
	base      *url.URL
	token     string
	userAgent string
	timeout   time.Duration
	http      *http.Client
}

// New builds a Client from cfg. It does not contact the server.
func New(cfg Config) (*Client, error) {
	if cfg.Server == "" {
		return nil, fmt.Errorf("%w: Server is empty", ErrInvalidConfig)
	}
	u, err := url.Parse(strings.TrimRight(cfg.Server, "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("%w: Server %q is not an http(s) URL", ErrInvalidConfig, cfg.Server)
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "kedge"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(cfg.CAData) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(cfg.CAData) {
			return nil, fmt.Errorf("%w: CAData holds no PEM certificate", ErrInvalidConfig)
		}
		tlsCfg.RootCAs = pool
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
	tr.Proxy = nil // the API server is local or on the site network, never behind a proxy
	return &Client{
		base:      u,
		token:     cfg.Token,
		userAgent: cfg.UserAgent,
		timeout:   cfg.Timeout,
		http:      &http.Client{Transport: tr},
	}, nil
}

// request is one API call.
type request struct {
	verb        string // for error messages: get, list, create, ...
	method      string
	res         Resource
	name        string
	sub         string
	query       url.Values
	body        any // encoded as JSON unless it is []byte
	contentType string
}

// do sends req and decodes a 2xx body into out (when out is not nil). A
// non-2xx answer becomes a *apierrors.StatusError.
func (c *Client) do(ctx context.Context, req request, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.send(ctx, req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s %q: read response: %w", req.verb, req.res, req.name, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return decodeError(req, resp.StatusCode, data)
	}
	if out == nil || len(data) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s %q: decode response: %w", req.verb, req.res, req.name, err)
	}
	return nil
}

// send builds and sends the HTTP request; the caller closes the body.
func (c *Client) send(ctx context.Context, req request) (*http.Response, error) {
	u := *c.base
	u.Path = strings.TrimRight(c.base.Path, "/") + req.res.path(req.name, req.sub)
	u.RawQuery = req.query.Encode()
	var body io.Reader
	if req.body != nil {
		data, ok := req.body.([]byte)
		if !ok {
			var err error
			if data, err = json.Marshal(req.body); err != nil {
				return nil, fmt.Errorf("%s %s %q: encode body: %w", req.verb, req.res, req.name, err)
			}
		}
		body = bytes.NewReader(data)
	}
	hreq, err := http.NewRequestWithContext(ctx, req.method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("%s %s %q: build request: %w", req.verb, req.res, req.name, err)
	}
	hreq.Header.Set("Accept", "application/json")
	hreq.Header.Set("User-Agent", c.userAgent)
	if body != nil {
		ct := req.contentType
		if ct == "" {
			ct = "application/json"
		}
		hreq.Header.Set("Content-Type", ct)
	}
	if c.token != "" {
		hreq.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("%s %s %q: %w", req.verb, req.res, req.name, err)
	}
	return resp, nil
}

// decodeError turns a non-2xx answer into a *apierrors.StatusError: the
// server's own Status when the body is one, else a generic error built from
// the HTTP code the way client-go does.
func decodeError(req request, code int, body []byte) error {
	var st metav1.Status
	if json.Unmarshal(body, &st) == nil && st.Kind == "Status" && st.Status == metav1.StatusFailure {
		if st.Code == 0 {
			st.Code = int32(code)
		}
		return &apierrors.StatusError{ErrStatus: st}
	}
	gr := schema.GroupResource{Group: req.res.Group, Resource: req.res.Resource}
	msg := strings.TrimSpace(string(body))
	if len(msg) > 512 {
		msg = msg[:512]
	}
	return apierrors.NewGenericServerResponse(code, req.verb, gr, req.name, msg, 0, true)
}

package cluster

import (
	"bytes"
	"context"
	"crypto/subtle"
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

	"kedge.dev/kedge/raftstore/raftkv"
)

// ErrCAMismatch: the server's CA is not the one the join token pins.
var ErrCAMismatch = errors.New("the server's CA does not match the join token")

// ErrNotFound: the member named does not exist.
var ErrNotFound = errors.New("not found")

// Client calls a server's cluster endpoints, verifying the server with the
// cluster CA. It is safe for concurrent use.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// NewClient returns a client of the server at serverURL (https://host:port)
// that trusts caCertPEM and presents token.
func NewClient(serverURL string, caCertPEM []byte, token string) (*Client, error) {
	u, err := url.Parse(serverURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("server URL %q: want https://host:port", serverURL)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caCertPEM) {
		return nil, errors.New("CA certificate: no PEM certificate found")
	}
	return &Client{base: strings.TrimSuffix(serverURL, "/"), token: token, http: &http.Client{
		Timeout:   60 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
	}}, nil
}

// Discover fetches the CA certificate from the server at serverURL and
// checks it against the hash the join token pins; it returns the CA and a
// Client that verifies the server with it and presents the join secret.
// Until the hash matched nothing secret has been sent.
func Discover(ctx context.Context, serverURL, joinToken string) ([]byte, *Client, error) {
	want, secret, err := ParseToken(joinToken)
	if err != nil {
		return nil, nil, err
	}
	// The CA is public; the connection is not trusted yet, the hash decides.
	insecure := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(serverURL, "/")+pathCA, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("discover cluster CA: %w", err)
	}
	resp, err := insecure.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("discover cluster CA at %s: %w", serverURL, err)
	}
	defer resp.Body.Close()
	caPEM, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("discover cluster CA at %s: status %s: %v", serverURL, resp.Status, err)
	}
	got, err := caHash(caPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("discover cluster CA at %s: %w", serverURL, err)
	}
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return nil, nil, fmt.Errorf("%w (server %s); Try: copy the token again from <data-dir>/tokens/join of a server of this cluster", ErrCAMismatch, serverURL)
	}
	c, err := NewClient(serverURL, caPEM, secret)
	if err != nil {
		return nil, nil, err
	}
	return caPEM, c, nil
}

// Bundle fetches what a joining server needs (join secret).
func (c *Client) Bundle(ctx context.Context) (Bundle, error) {
	var b Bundle
	err := c.do(ctx, http.MethodGet, pathBundle, nil, &b)
	return b, err
}

// Join asks the cluster to add server id at raftAddr (join secret) and
// returns its suffrage.
func (c *Client) Join(ctx context.Context, id, raftAddr string) (string, error) {
	var resp JoinResponse
	err := c.do(ctx, http.MethodPost, pathMembers, JoinRequest{ID: id, RaftAddress: raftAddr}, &resp)
	return resp.Suffrage, err
}

// Agent fetches the credentials of agent-only node nodeName at addrs
// (join secret).
func (c *Client) Agent(ctx context.Context, nodeName string, addrs []string) (AgentCredentials, error) {
	var cr AgentCredentials
	err := c.do(ctx, http.MethodPost, pathAgents, AgentRequest{NodeName: nodeName, Addresses: addrs}, &cr)
	return cr, err
}

// Members lists the cluster's servers (admin token).
func (c *Client) Members(ctx context.Context) ([]raftkv.Member, error) {
	var m []raftkv.Member
	err := c.do(ctx, http.MethodGet, pathMembers, nil, &m)
	return m, err
}

// Remove takes a server out of the cluster (admin token).
func (c *Client) Remove(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, pathMembers+"/"+url.PathEscape(id), nil, nil)
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, c.base+path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var e errorBody
		json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&e)
		err := fmt.Errorf("%s %s: %s: %s", method, c.base+path, resp.Status, e.Error)
		if resp.StatusCode == http.StatusNotFound {
			err = fmt.Errorf("%w: %w", ErrNotFound, err)
		}
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, c.base+path, err)
	}
	return nil
}

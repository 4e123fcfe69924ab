package cluster

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"kedge.dev/kedge/raftstore/raftkv"
	"kedge.dev/kedge/server/auth"
)

// Endpoint paths, under the API port.
const (
	// PathPrefix is what the API server routes to Handler.
	PathPrefix  = "/kedge/v1/cluster/"
	pathCA      = PathPrefix + "ca"
	pathBundle  = PathPrefix + "bundle"
	pathMembers = PathPrefix + "members"
	pathAgents  = PathPrefix + "agents"
)

// Membership is what the endpoints need from the store; raftkv.Store has it.
// Each call may wait for the raft leader and honours ctx.
type Membership interface {
	Join(ctx context.Context, id, addr string) (string, error)
	Remove(ctx context.Context, id string) error
	Members(ctx context.Context) ([]raftkv.Member, error)
}

var _ Membership = (*raftkv.Store)(nil)

// Bundle is what a joining server copies from the cluster: the CA (so its
// certificates chain to the same root and kubeconfigs work against every
// server) and the tokens (admin, node, kubelet, join), by name.
type Bundle struct {
	CACert []byte            `json:"caCert"`
	CAKey  []byte            `json:"caKey"`
	Tokens map[string]string `json:"tokens"`
}

// Config configures the Handler. Every field is required.
type Config struct {
	Membership Membership
	// JoinSecret authorizes the bundle and join calls (the part of the join
	// token after "::").
	JoinSecret string
	// AdminToken authorizes listing and removing members.
	AdminToken string
	// Bundle is handed to joining servers.
	Bundle Bundle
	// IssueKubeletCert signs the kubelet serving certificate of an
	// agent-only node (pki.CA.IssueLeaf); nil serves no agent endpoint.
	IssueKubeletCert func(nodeName string, ips []net.IP) (certPEM, keyPEM []byte, err error)
	Logger           *slog.Logger
}

// Handler serves the cluster endpoints. It is safe for concurrent use.
type Handler struct {
	cfg Config
	mux *http.ServeMux
}

// NewHandler builds the handler.
func NewHandler(cfg Config) (*Handler, error) {
	if cfg.Membership == nil || cfg.JoinSecret == "" || cfg.AdminToken == "" || len(cfg.Bundle.CACert) == 0 || cfg.Logger == nil {
		return nil, errors.New("cluster handler: Membership, JoinSecret, AdminToken, Bundle.CACert and Logger are required")
	}
	h := &Handler{cfg: cfg, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET "+pathCA, h.ca)
	h.mux.HandleFunc("GET "+pathBundle, h.auth(cfg.JoinSecret, h.bundle))
	h.mux.HandleFunc("POST "+pathMembers, h.auth(cfg.JoinSecret, h.join))
	h.mux.HandleFunc("GET "+pathMembers, h.auth(cfg.AdminToken, h.members))
	h.mux.HandleFunc("DELETE "+pathMembers+"/{id}", h.auth(cfg.AdminToken, h.remove))
	if cfg.IssueKubeletCert != nil {
		h.mux.HandleFunc("POST "+pathAgents, h.auth(cfg.JoinSecret, h.agent))
	}
	return h, nil
}

// ServeHTTP dispatches to the endpoints.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

func (h *Handler) auth(want string, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
			h.cfg.Logger.Warn("cluster endpoint: refused request without the right token", "path", r.URL.Path, "remote", r.RemoteAddr)
			writeErr(w, http.StatusUnauthorized, errors.New("unauthorized: wrong or missing token"))
			return
		}
		next(w, r)
	}
}

// ca is public: the joiner checks it against the hash in its token.
func (h *Handler) ca(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Write(h.cfg.Bundle.CACert)
}

func (h *Handler) bundle(w http.ResponseWriter, r *http.Request) {
	h.cfg.Logger.Info("cluster bundle handed to a joining server", "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, h.cfg.Bundle)
}

// AgentRequest asks for the credentials of an agent-only node.
type AgentRequest struct {
	NodeName string `json:"nodeName"`
	// Addresses are the node's IP addresses, for its kubelet certificate.
	Addresses []string `json:"addresses"`
}

// AgentCredentials is what an agent-only node needs, and less than a
// server gets (Bundle): no CA key and no admin or join token. The node
// token lets it act as a node on the API; the kubelet token is what the
// API server presents to its kubelet endpoint, whose certificate (signed
// by the cluster CA for the node's name and addresses) is included.
type AgentCredentials struct {
	CACert       []byte `json:"caCert"`
	NodeToken    string `json:"nodeToken"`
	KubeletToken string `json:"kubeletToken"`
	KubeletCert  []byte `json:"kubeletCert"`
	KubeletKey   []byte `json:"kubeletKey"`
}

func (h *Handler) agent(w http.ResponseWriter, r *http.Request) {
	var req AgentRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&req); err != nil || req.NodeName == "" {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("want JSON {nodeName, addresses}: %v", err))
		return
	}
	if errs := validation.IsDNS1123Subdomain(req.NodeName); len(errs) > 0 {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("nodeName %q: %s", req.NodeName, strings.Join(errs, "; ")))
		return
	}
	var ips []net.IP
	for _, a := range req.Addresses {
		ip := net.ParseIP(a)
		if ip == nil {
			writeErr(w, http.StatusBadRequest, fmt.Errorf("address %q is not an IP address", a))
			return
		}
		ips = append(ips, ip)
	}
	cert, key, err := h.cfg.IssueKubeletCert(req.NodeName, ips)
	if err != nil {
		writeErr(w, http.StatusInternalServerError, err)
		return
	}
	h.cfg.Logger.Info("credentials handed to an agent-only node", "node", req.NodeName, "addresses", req.Addresses, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, AgentCredentials{
		CACert: h.cfg.Bundle.CACert, NodeToken: h.cfg.Bundle.Tokens[auth.Node], KubeletToken: h.cfg.Bundle.Tokens[auth.Kubelet],
		KubeletCert: cert, KubeletKey: key,
	})
}

// JoinRequest asks to add a server to raft.
type JoinRequest struct {
	ID          string `json:"id"`
	RaftAddress string `json:"raftAddress"`
}

// JoinResponse says how the server was added.
type JoinResponse struct {
	Suffrage string `json:"suffrage"`
}

func (h *Handler) join(w http.ResponseWriter, r *http.Request) {
	var req JoinRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&req); err != nil || req.ID == "" || req.RaftAddress == "" {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("want JSON {id, raftAddress}: %v", err))
		return
	}
	suf, err := h.cfg.Membership.Join(r.Context(), req.ID, req.RaftAddress)
	if err != nil {
		writeErr(w, http.StatusServiceUnavailable, err)
		return
	}
	writeJSON(w, http.StatusOK, JoinResponse{Suffrage: suf})
}

func (h *Handler) members(w http.ResponseWriter, r *http.Request) {
	m, err := h.cfg.Membership.Members(r.Context())
	if err != nil {
		writeErr(w, http.StatusServiceUnavailable, err)
		return
	}
	writeJSON(w, http.StatusOK, m)
}

func (h *Handler) remove(w http.ResponseWriter, r *http.Request) {
	err := h.cfg.Membership.Remove(r.Context(), r.PathValue("id"))
	switch {
	case errors.Is(err, raftkv.ErrUnknownServer):
		writeErr(w, http.StatusNotFound, err)
	case err != nil:
		writeErr(w, http.StatusServiceUnavailable, err)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

type errorBody struct {
	Error string `json:"error"`
}

func writeErr(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, errorBody{Error: err.Error()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

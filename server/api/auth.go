package api

import (
	"context"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// User is an authenticated client.
type User struct {
	Name   string
	Groups []string
}

// Authenticator checks bearer tokens. Implementations must be safe for
// concurrent use and should not block for long: it is called on every
// request.
type Authenticator interface {
	// AuthenticateToken returns the user a token belongs to, or false.
	AuthenticateToken(ctx context.Context, token string) (User, bool)
}

type userKey struct{}

func withUser(ctx context.Context, u User) context.Context {
	return context.WithValue(ctx, userKey{}, u)
}

// UserFrom returns the authenticated user of a request's context.
func UserFrom(ctx context.Context) (User, bool) {
	u, ok := ctx.Value(userKey{}).(User)
	return u, ok
}

// authenticate accepts "Authorization: Bearer <token>" only.
func (s *Server) authenticate(r *http.Request) (User, error) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return User{}, apierrors.NewUnauthorized("Unauthorized")
	}
	u, ok := s.cfg.Authenticator.AuthenticateToken(r.Context(), strings.TrimSpace(token))
	if !ok {
		return User{}, apierrors.NewUnauthorized("Unauthorized")
	}
	return u, nil
}

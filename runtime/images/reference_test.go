package images

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	d := "sha256:" + strings.Repeat("ab", 32)
	tests := []struct{ in, want string }{
		{"nginx", "docker.io/library/nginx:latest"},
		{"nginx:1.14.2", "docker.io/library/nginx:1.14.2"},
		{"library/nginx", "docker.io/library/nginx:latest"},
		{"docker.io/nginx", "docker.io/library/nginx:latest"},
		{"index.docker.io/library/nginx:stable", "docker.io/library/nginx:stable"},
		{"user/app:v1", "docker.io/user/app:v1"},
		{"registry.k8s.io/busybox", "registry.k8s.io/busybox:latest"},
		{"registry.k8s.io/nginx-slim:0.8", "registry.k8s.io/nginx-slim:0.8"},
		{"localhost:5000/a/b:c", "localhost:5000/a/b:c"},
		{"localhost/app", "localhost/app:latest"},
		{"alpine@" + d, "docker.io/library/alpine@" + d},
		{"alpine:3@" + d, "docker.io/library/alpine@" + d},
	}
	for _, tc := range tests {
		got, err := Normalize(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "NGINX", "nginx:", "nginx@sha256:12", "a//b", "nginx:bad/tag", ":x"} {
		if got, err := Normalize(bad); !errors.Is(err, ErrInvalidReference) {
			t.Errorf("Normalize(%q) = %q, %v; want ErrInvalidReference", bad, got, err)
		}
	}
}

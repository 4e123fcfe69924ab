package images

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
)

// ErrInvalidReference is wrapped when an image reference cannot be parsed.
var ErrInvalidReference = errors.New("invalid image reference")

// The patterns compile on first use, not at package init: every container
// start re-executes this binary as its init (libcontainer), and package
// initialisation is paid there too.
var (
	pathRe = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)
	})
	tagRe    = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`) })
	digestRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^sha256:[a-f0-9]{64}$`) })
	domainRe = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]+)?$`)
	})
)

// Normalize returns the canonical form of an image reference as the
// container runtimes behind kubelet print it: "nginx" becomes
// "docker.io/library/nginx:latest", "user/app:1" becomes
// "docker.io/user/app:1", and a reference with a digest keeps it
// ("repo@sha256:..."; a tag given with a digest is dropped, since the
// digest decides).
func Normalize(ref string) (string, error) {
	if ref == "" {
		return "", fmt.Errorf("%w: empty", ErrInvalidReference)
	}
	rest, digest, hasDigest := strings.Cut(ref, "@")
	if hasDigest && !digestRe().MatchString(digest) {
		return "", fmt.Errorf("%w: %q: bad digest", ErrInvalidReference, ref)
	}
	tag := ""
	if i := strings.LastIndex(rest, ":"); i > strings.LastIndex(rest, "/") {
		rest, tag = rest[:i], rest[i+1:]
		if !tagRe().MatchString(tag) {
			return "", fmt.Errorf("%w: %q: bad tag", ErrInvalidReference, ref)
		}
	}
	domain, path := "docker.io", rest
	if first, remainder, ok := strings.Cut(rest, "/"); ok &&
		(strings.ContainsAny(first, ".:") || first == "localhost" || strings.ToLower(first) != first) {
		domain, path = first, remainder
		if !domainRe().MatchString(domain) {
			return "", fmt.Errorf("%w: %q: bad registry host", ErrInvalidReference, ref)
		}
	}
	if domain == "index.docker.io" {
		domain = "docker.io"
	}
	if domain == "docker.io" && !strings.Contains(path, "/") {
		path = "library/" + path
	}
	if !pathRe().MatchString(path) {
		return "", fmt.Errorf("%w: %q: repository must be lowercase letters, digits and separators", ErrInvalidReference, ref)
	}
	name := domain + "/" + path
	if hasDigest {
		return name + "@" + digest, nil
	}
	if tag == "" {
		tag = "latest"
	}
	return name + ":" + tag, nil
}

// isImageID reports whether ref names an image by its ID ("sha256:<hex>"
// or the bare 64-digit hex).
func isImageID(ref string) (string, bool) {
	if digestRe().MatchString(ref) {
		return ref, true
	}
	if len(ref) == 64 && digestRe().MatchString("sha256:"+ref) {
		return "sha256:" + ref, true
	}
	return "", false
}

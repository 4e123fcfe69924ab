package runtime

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/sys/user"
)

// execUser resolves an image's User ("name", "uid", "uid:gid", "name:group")
// against the container's /etc/passwd and /etc/group; "" is root.
func execUser(rootfs, spec string) (*user.ExecUser, error) {
	defaults := &user.ExecUser{Uid: 0, Gid: 0, Home: "/"}
	if spec == "" {
		return defaults, nil
	}
	passwd, err := securejoin.SecureJoin(rootfs, "/etc/passwd")
	if err != nil {
		return nil, err
	}
	group, err := securejoin.SecureJoin(rootfs, "/etc/group")
	if err != nil {
		return nil, err
	}
	u, err := user.GetExecUserPath(spec, defaults, passwd, group)
	if err != nil {
		return nil, fmt.Errorf("%w: resolve user %q: %v", ErrInvalidSpec, spec, err)
	}
	return u, nil
}

// userSpec returns the user string to resolve for a container: the image's
// User with the security context's runAsUser and runAsGroup applied.
func userSpec(imageUser string, sec Security) string {
	name, group, hasGroup := strings.Cut(imageUser, ":")
	if sec.RunAsUser != nil {
		name = strconv.FormatInt(*sec.RunAsUser, 10)
		if sec.RunAsGroup == nil {
			// The group then comes from the UID's /etc/passwd entry (0 when
			// there is none), not from the image.
			hasGroup = false
		}
	}
	if sec.RunAsGroup != nil {
		group, hasGroup = strconv.FormatInt(*sec.RunAsGroup, 10), true
	}
	if name == "" && hasGroup {
		name = "0"
	}
	if hasGroup {
		return name + ":" + group
	}
	return name
}

// processUser resolves the user a container's process runs as, adding the
// supplemental groups of the security context.
func processUser(rootfs, imageUser string, sec Security) (*user.ExecUser, error) {
	u, err := execUser(rootfs, userSpec(imageUser, sec))
	if err != nil {
		return nil, err
	}
	for _, g := range sec.SupplementalGroups {
		if !slices.Contains(u.Sgids, int(g)) {
			u.Sgids = append(u.Sgids, int(g))
		}
	}
	return u, nil
}

// checkNonRoot enforces runAsNonRoot.
func checkNonRoot(u *user.ExecUser, sec Security) error {
	if !sec.RunAsNonRoot || u.Uid != 0 {
		return nil
	}
	if sec.RunAsUser != nil {
		return fmt.Errorf("%w: runAsUser 0 breaks the non-root policy", ErrRunAsNonRoot)
	}
	return ErrRunAsNonRoot
}

// checkSecurity rejects a spec whose security context cannot be honoured,
// before anything runs: an unknown capability, an unsupported seccomp
// profile, or runAsNonRoot with a root user.
func checkSecurity(spec ContainerSpec, rootfs, imageUser string, host hostFeatures) error {
	caps, err := capabilitySet(spec.Security, host)
	if err != nil {
		return err
	}
	if _, err := seccompConfig(spec.Security, caps); err != nil {
		return err
	}
	u, err := processUser(rootfs, imageUser, spec.Security)
	if err != nil {
		return err
	}
	return checkNonRoot(u, spec.Security)
}

package runtime

import (
	"fmt"

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

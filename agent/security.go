package agent

import (
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"kedge.dev/kedge/runtime"
)

// errLocalhostSeccomp: Localhost seccomp profiles are not supported yet.
var errLocalhostSeccomp = errors.New("seccomp profile type Localhost is not supported yet; use RuntimeDefault or Unconfined")

// containerSecurity resolves the container's security context over the
// pod's, as kubelet does: the container's runAsUser, runAsGroup,
// runAsNonRoot and seccompProfile win over the pod's; supplementalGroups
// and fsGroup come from the pod (fsGroup is added to the groups).
func containerSecurity(pod *corev1.Pod, c *corev1.Container) (runtime.Security, error) {
	var sec runtime.Security
	var seccompProfile *corev1.SeccompProfile
	if psc := pod.Spec.SecurityContext; psc != nil {
		sec.RunAsUser, sec.RunAsGroup = psc.RunAsUser, psc.RunAsGroup
		sec.RunAsNonRoot = psc.RunAsNonRoot != nil && *psc.RunAsNonRoot
		sec.SupplementalGroups = append(sec.SupplementalGroups, psc.SupplementalGroups...)
		if psc.FSGroup != nil {
			sec.SupplementalGroups = append(sec.SupplementalGroups, *psc.FSGroup)
		}
		seccompProfile = psc.SeccompProfile
	}
	if sc := c.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			sec.RunAsUser = sc.RunAsUser
		}
		if sc.RunAsGroup != nil {
			sec.RunAsGroup = sc.RunAsGroup
		}
		if sc.RunAsNonRoot != nil {
			sec.RunAsNonRoot = *sc.RunAsNonRoot
		}
		if sc.SeccompProfile != nil {
			seccompProfile = sc.SeccompProfile
		}
		sec.Privileged = sc.Privileged != nil && *sc.Privileged
		sec.ReadOnlyRootfs = sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem
		if sc.Capabilities != nil {
			for _, cp := range sc.Capabilities.Add {
				sec.CapAdd = append(sec.CapAdd, string(cp))
			}
			for _, cp := range sc.Capabilities.Drop {
				sec.CapDrop = append(sec.CapDrop, string(cp))
			}
		}
		// kubelet sets no_new_privs only for an explicit false (the API
		// rejects false together with privileged or CAP_SYS_ADMIN).
		sec.NoNewPrivileges = sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation
	}
	if seccompProfile != nil {
		switch seccompProfile.Type {
		case corev1.SeccompProfileTypeRuntimeDefault:
			sec.Seccomp = runtime.SeccompRuntimeDefault
		case corev1.SeccompProfileTypeUnconfined:
			sec.Seccomp = runtime.SeccompUnconfined
		case corev1.SeccompProfileTypeLocalhost:
			return sec, errLocalhostSeccomp
		default:
			return sec, fmt.Errorf("unknown seccomp profile type %q", seccompProfile.Type)
		}
	}
	return sec, nil
}

// fsGroup is the pod's fsGroup, -1 when unset.
func fsGroup(pod *corev1.Pod) int {
	if psc := pod.Spec.SecurityContext; psc != nil && psc.FSGroup != nil {
		return int(*psc.FSGroup)
	}
	return -1
}

package agent

import (
	"errors"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"kedge.dev/kedge/runtime"
)

func TestContainerSecurity(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	yes, no := true, false
	pod := &corev1.Pod{Spec: corev1.PodSpec{SecurityContext: &corev1.PodSecurityContext{
		RunAsUser: i64(1000), RunAsGroup: i64(2000), RunAsNonRoot: &yes, SupplementalGroups: []int64{5}, FSGroup: i64(3000),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}}}
	c := &corev1.Container{SecurityContext: &corev1.SecurityContext{
		RunAsUser: i64(7), ReadOnlyRootFilesystem: &yes, AllowPrivilegeEscalation: &no,
		Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN"}, Drop: []corev1.Capability{"ALL"}},
	}}
	sec, err := containerSecurity(pod, c)
	if err != nil {
		t.Fatal(err)
	}
	if *sec.RunAsUser != 7 || *sec.RunAsGroup != 2000 || !sec.RunAsNonRoot || !sec.ReadOnlyRootfs || !sec.NoNewPrivileges ||
		sec.Privileged || sec.Seccomp != runtime.SeccompRuntimeDefault ||
		!slices.Equal(sec.SupplementalGroups, []int64{5, 3000}) ||
		!slices.Equal(sec.CapAdd, []string{"NET_ADMIN"}) || !slices.Equal(sec.CapDrop, []string{"ALL"}) {
		t.Errorf("security %+v", sec)
	}

	c.SecurityContext.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}
	c.SecurityContext.RunAsNonRoot = &no
	if sec, _ = containerSecurity(pod, c); sec.Seccomp != runtime.SeccompUnconfined || sec.RunAsNonRoot {
		t.Errorf("container overrides: %+v", sec)
	}
	c.SecurityContext.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeLocalhost}
	if _, err := containerSecurity(pod, c); !errors.Is(err, errLocalhostSeccomp) {
		t.Errorf("Localhost: err = %v", err)
	}
	if sec, err := containerSecurity(&corev1.Pod{}, &corev1.Container{}); err != nil || sec.Seccomp != "" || sec.RunAsUser != nil || sec.NoNewPrivileges {
		t.Errorf("empty: %+v %v", sec, err)
	}
	if fsGroup(pod) != 3000 || fsGroup(&corev1.Pod{}) != -1 {
		t.Error("fsGroup")
	}
}

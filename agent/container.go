package agent

import (
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"kedge.dev/kedge/agent/podsync"
	"kedge.dev/kedge/runtime"
)

// containerID is the runtime ID of one instance of a pod's container.
func containerID(pod *corev1.Pod, name string, attempt int) string {
	return fmt.Sprintf("%s-%s-%d", pod.UID, name, attempt)
}

// podHostname is the pod's hostname: spec.hostname or the pod name, cut to
// a DNS label.
func podHostname(pod *corev1.Pod) string {
	h := pod.Spec.Hostname
	if h == "" {
		h = pod.Name
	}
	if len(h) > 63 {
		h = strings.TrimRight(h[:63], "-.")
	}
	return h
}

// containerSpec builds the runtime spec of one instance of c. The runtime
// applies the image's entrypoint, cmd, env and working directory under it.
func (a *Agent) containerSpec(pod *corev1.Pod, c *corev1.Container, attempt int, podIP string) (runtime.ContainerSpec, error) {
	env, err := a.containerEnv(pod, c, podIP)
	if err != nil {
		return runtime.ContainerSpec{}, err
	}
	vars := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	mounts, err := a.containerMounts(pod, c, attempt)
	if err != nil {
		return runtime.ContainerSpec{}, err
	}
	sec, err := containerSecurity(pod, c)
	if err != nil {
		return runtime.ContainerSpec{}, err
	}
	oom := oomScoreAdj(pod, c, a.memCapacity())
	sec.OOMScoreAdj = &oom
	spec := runtime.ContainerSpec{
		ID:           containerID(pod, c.Name, attempt),
		Image:        c.Image,
		Command:      expandAll(c.Command, vars),
		Args:         expandAll(c.Args, vars),
		Env:          env,
		WorkingDir:   c.WorkingDir,
		Hostname:     podHostname(pod),
		Mounts:       mounts,
		Resources:    containerResources(c),
		Security:     sec,
		CgroupParent: podCgroup(a.cfg.CgroupRoot, pod),
		LogPath:      a.containerLogPath(pod, c.Name, attempt),
		Stdin:        c.Stdin || c.TTY, // a terminal always has an input
		StdinOnce:    c.Stdin && c.StdinOnce,
		TTY:          c.TTY,
		Labels: map[string]string{
			LabelPodUID:        string(pod.UID),
			LabelPodNamespace:  pod.Namespace,
			LabelPodName:       pod.Name,
			LabelContainerName: c.Name,
			LabelAttempt:       strconv.Itoa(attempt),
			LabelHash:          podsync.HashContainer(c),
		},
	}
	if pod.Spec.HostNetwork {
		spec.Hostname = "" // the host's UTS namespace keeps the host's name
	}
	return spec, nil
}

// containerEnv resolves the container's environment as K=V, in order,
// expanding $(VAR) references to earlier variables like kubelet.
func (a *Agent) containerEnv(pod *corev1.Pod, c *corev1.Container, podIP string) ([]string, error) {
	vars := map[string]string{}
	var out []string
	for _, e := range c.Env {
		v := expand(e.Value, vars)
		if e.ValueFrom != nil {
			var err error
			if v, err = a.envFrom(pod, c, e.ValueFrom, podIP); err != nil {
				return nil, fmt.Errorf("env %s: %w", e.Name, err)
			}
		}
		vars[e.Name] = v
		out = append(out, e.Name+"="+v)
	}
	return out, nil
}

// envFrom resolves a valueFrom source the agent can answer without the API.
func (a *Agent) envFrom(pod *corev1.Pod, c *corev1.Container, src *corev1.EnvVarSource, podIP string) (string, error) {
	switch {
	case src.FieldRef != nil:
		return podField(pod, src.FieldRef.FieldPath, podIP, a.cfg.NodeIP)
	case src.ResourceFieldRef != nil:
		return resourceField(pod, c, src.ResourceFieldRef)
	case src.ConfigMapKeyRef != nil && src.ConfigMapKeyRef.Optional != nil && *src.ConfigMapKeyRef.Optional,
		src.SecretKeyRef != nil && src.SecretKeyRef.Optional != nil && *src.SecretKeyRef.Optional:
		return "", nil
	default:
		return "", fmt.Errorf("configMapKeyRef and secretKeyRef are not supported yet")
	}
}

// podField answers a fieldRef.
func podField(pod *corev1.Pod, field, podIP, hostIP string) (string, error) {
	switch field {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP", "status.podIPs":
		return podIP, nil
	case "status.hostIP", "status.hostIPs":
		return hostIP, nil
	}
	if k, ok := mapField(field, "metadata.labels"); ok {
		return pod.Labels[k], nil
	}
	if k, ok := mapField(field, "metadata.annotations"); ok {
		return pod.Annotations[k], nil
	}
	return "", fmt.Errorf("unsupported fieldRef %q", field)
}

// mapField parses prefix['key'].
func mapField(field, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(field, prefix+"['")
	if !ok || !strings.HasSuffix(rest, "']") {
		return "", false
	}
	return strings.TrimSuffix(rest, "']"), true
}

// resourceField answers a resourceFieldRef: limits.cpu, limits.memory,
// requests.cpu, requests.memory, rounded up by the divisor like kubelet.
func resourceField(pod *corev1.Pod, c *corev1.Container, ref *corev1.ResourceFieldSelector) (string, error) {
	target := c
	if ref.ContainerName != "" {
		if target = specContainer(pod, ref.ContainerName); target == nil {
			return "", fmt.Errorf("resourceFieldRef: no container %q", ref.ContainerName)
		}
	}
	var q resource.Quantity
	var ok bool
	switch ref.Resource {
	case "limits.cpu":
		q, ok = target.Resources.Limits[corev1.ResourceCPU]
	case "limits.memory":
		q, ok = target.Resources.Limits[corev1.ResourceMemory]
	case "requests.cpu":
		q, ok = target.Resources.Requests[corev1.ResourceCPU]
	case "requests.memory":
		q, ok = target.Resources.Requests[corev1.ResourceMemory]
	default:
		return "", fmt.Errorf("unsupported resourceFieldRef %q", ref.Resource)
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	if !ok {
		// Kubernetes reports the node's allocatable for an unset limit; the
		// agent reports 0 (unset) rather than guess.
		return "0", nil
	}
	if strings.HasSuffix(ref.Resource, ".cpu") {
		v := (q.MilliValue() + divisor.MilliValue() - 1) / divisor.MilliValue()
		return strconv.FormatInt(v, 10), nil
	}
	v := (q.Value() + divisor.Value() - 1) / divisor.Value()
	return strconv.FormatInt(v, 10), nil
}

// expand replaces $(VAR) with vars[VAR] (left as is when unknown) and $$(
// with $(, as Kubernetes does for env values, command and args.
func expand(s string, vars map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := vars[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString("$(" + name + ")")
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

func expandAll(in []string, vars map[string]string) []string {
	if in == nil {
		return nil
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = expand(s, vars)
	}
	return out
}

package registry

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func intOrString(port int) intstr.IntOrString { return intstr.FromInt32(int32(port)) }

// validPod is a minimal pod that passes validation once defaulted.
func validPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", ResourceVersion: "5"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox:1.36"}}},
	}
}

// errSummary renders errors as "<field>: <type>", the part of Kubernetes'
// messages ("spec.containers: Required value") tests pin down.
func errSummary(errs field.ErrorList) []string {
	out := []string{}
	for _, e := range errs {
		out = append(out, e.Field+": "+e.Type.String())
	}
	return out
}

func TestPodValidateCreate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*corev1.Pod)
		want   []string
	}{
		{"valid", func(*corev1.Pod) {}, []string{}},
		{"no containers", func(p *corev1.Pod) { p.Spec.Containers = nil }, []string{"spec.containers: Required value"}},
		{"bad pod name", func(p *corev1.Pod) { p.Name = "Bad_Name" }, []string{"metadata.name: Invalid value"}},
		{"no namespace", func(p *corev1.Pod) { p.Namespace = "" }, []string{"metadata.namespace: Required value"}},
		{"bad label", func(p *corev1.Pod) { p.Labels = map[string]string{"a": "not ok!"} }, []string{"metadata.labels: Invalid value"}},
		{"bad annotation key", func(p *corev1.Pod) { p.Annotations = map[string]string{"-x": ""} }, []string{"metadata.annotations: Invalid value"}},
		{"container name not a label", func(p *corev1.Pod) { p.Spec.Containers[0].Name = "C_1" }, []string{"spec.containers[0].name: Invalid value"}},
		{"container name missing", func(p *corev1.Pod) { p.Spec.Containers[0].Name = "" }, []string{"spec.containers[0].name: Required value"}},
		{"duplicate containers", func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "c", Image: "busybox"})
		}, []string{"spec.containers[1].name: Duplicate value"}},
		{"init container named like a container", func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "c", Image: "busybox"}}
		}, []string{"spec.initContainers[0].name: Duplicate value"}},
		{"image missing", func(p *corev1.Pod) { p.Spec.Containers[0].Image = "" }, []string{"spec.containers[0].image: Required value"}},
		{"image with spaces", func(p *corev1.Pod) { p.Spec.Containers[0].Image = "busybox " }, []string{"spec.containers[0].image: Invalid value"}},
		{"port out of range", func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 70000}}
		}, []string{"spec.containers[0].ports[0].containerPort: Invalid value"}},
		{"port missing", func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "http"}}
		}, []string{"spec.containers[0].ports[0].containerPort: Required value"}},
		{"bad protocol", func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, Protocol: "ICMP"}}
		}, []string{"spec.containers[0].ports[0].protocol: Unsupported value"}},
		{"port name too long", func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "a-very-long-name", ContainerPort: 80}}
		}, []string{"spec.containers[0].ports[0].name: Invalid value"}},
		{"duplicate port names", func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 80}, {Name: "http", ContainerPort: 81}}
		}, []string{"spec.containers[0].ports[1].name: Duplicate value"}},
		{"host port twice", func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "d", Image: "busybox"})
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, HostPort: 8080}}
			p.Spec.Containers[1].Ports = []corev1.ContainerPort{{ContainerPort: 81, HostPort: 8080}}
		}, []string{"spec.containers[1].ports[0].hostPort: Duplicate value"}},
		{"env name with =", func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "A=B"}}
		}, []string{"spec.containers[0].env[0].name: Invalid value"}},
		{"env value and valueFrom", func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "A", Value: "x", ValueFrom: &corev1.EnvVarSource{
				FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}
		}, []string{"spec.containers[0].env[0].valueFrom: Invalid value"}},
		{"env unsupported field", func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "A", ValueFrom: &corev1.EnvVarSource{
				FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.containers"}}}}
		}, []string{"spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Unsupported value"}},
		{"request above limit", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources = corev1.ResourceRequirements{Requests: res("cpu", "2"), Limits: res("cpu", "1")}
		}, []string{"spec.containers[0].resources.requests: Invalid value"}},
		{"negative memory", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources = corev1.ResourceRequirements{Requests: res("memory", "-1")}
		}, []string{"spec.containers[0].resources.requests[memory]: Invalid value"}},
		{"unknown resource", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources = corev1.ResourceRequirements{Requests: res("gpus", "1")}
		}, []string{"spec.containers[0].resources.requests[gpus]: Invalid value"}},
		{"extended resource without limit", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources = corev1.ResourceRequirements{Requests: res("example.com/dongle", "1")}
		}, []string{"spec.containers[0].resources.limits: Required value"}},
		{"restart policy", func(p *corev1.Pod) { p.Spec.RestartPolicy = "Sometimes" }, []string{"spec.restartPolicy: Unsupported value"}},
		{"dns policy", func(p *corev1.Pod) { p.Spec.DNSPolicy = "Google" }, []string{"spec.dnsPolicy: Unsupported value"}},
		{"dns none without config", func(p *corev1.Pod) { p.Spec.DNSPolicy = corev1.DNSNone }, []string{"spec.dnsConfig: Required value"}},
		{"duplicate volumes", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "v"}, {Name: "v"}}
		}, []string{"spec.volumes[1].name: Duplicate value"}},
		{"two volume sources", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{
				EmptyDir: &corev1.EmptyDirVolumeSource{}, HostPath: &corev1.HostPathVolumeSource{Path: "/x"}}}}
		}, []string{"spec.volumes[0].emptyDir: Forbidden"}},
		{"hostPath without path", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{}}}}
		}, []string{"spec.volumes[0].hostPath.path: Required value"}},
		{"mount of undeclared volume", func(p *corev1.Pod) {
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
		}, []string{"spec.containers[0].volumeMounts[0].name: Not found"}},
		{"mount path twice", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "a"}, {Name: "b"}}
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "a", MountPath: "/d"}, {Name: "b", MountPath: "/d"}}
		}, []string{"spec.containers[0].volumeMounts[1].mountPath: Invalid value"}},
		{"subPath climbing out", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "a"}}
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "a", MountPath: "/d", SubPath: "../etc"}}
		}, []string{"spec.containers[0].volumeMounts[0].subPath: Invalid value"}},
		{"negative grace period", func(p *corev1.Pod) { p.Spec.TerminationGracePeriodSeconds = ptrTo(int64(-1)) },
			[]string{"spec.terminationGracePeriodSeconds: Invalid value"}},
		{"zero active deadline", func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptrTo(int64(0)) },
			[]string{"spec.activeDeadlineSeconds: Invalid value"}},
		{"bad toleration", func(p *corev1.Pod) {
			p.Spec.Tolerations = []corev1.Toleration{{Key: "k", Operator: corev1.TolerationOpExists, Value: "v"}}
		}, []string{"spec.tolerations[0].operator: Invalid value"}},
		{"liveness probe success threshold", func(p *corev1.Pod) {
			p.Spec.Containers[0].LivenessProbe = &corev1.Probe{SuccessThreshold: 2,
				ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intOrString(80)}}}
		}, []string{"spec.containers[0].livenessProbe.successThreshold: Invalid value"}},
		{"probe on plain init container", func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "i", Image: "busybox", ReadinessProbe: &corev1.Probe{
				ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intOrString(80)}}}}}
		}, []string{"spec.initContainers[0].readinessProbe: Forbidden"}},
		{"unknown priority class", func(p *corev1.Pod) { p.Spec.PriorityClassName = "gold" },
			[]string{"spec.priorityClassName: Not found"}},
		{"priority not from class", func(p *corev1.Pod) { p.Spec.Priority = ptrTo(int32(5)) },
			[]string{"spec.priority: Forbidden"}},
		{"ephemeral containers on create", func(p *corev1.Pod) {
			p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "dbg", Image: "busybox"}}}
		}, []string{"spec.ephemeralContainers: Forbidden"}},
		{"bad node name", func(p *corev1.Pod) { p.Spec.NodeName = "Node_1" }, []string{"spec.nodeName: Invalid value"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newPodStrategy()
			pod := validPod()
			tt.mutate(pod)
			s.PrepareForCreate(pod)
			got := errSummary(s.ValidateCreate(pod))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors = %q, want %q", got, tt.want)
			}
		})
	}
}

// The message of a required container list, as kubectl prints it.
func TestPodValidateCreateMessages(t *testing.T) {
	pod := validPod()
	pod.Spec.Containers = nil
	s := newPodStrategy()
	s.PrepareForCreate(pod)
	errs := s.ValidateCreate(pod)
	if len(errs) != 1 || errs[0].Error() != "spec.containers: Required value" {
		t.Errorf("errors = %v", errs)
	}
	pod = validPod()
	pod.Spec.Containers[0].Name = "C_1"
	s.PrepareForCreate(pod)
	errs = s.ValidateCreate(pod)
	want := `spec.containers[0].name: Invalid value: "C_1": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`
	if len(errs) != 1 || errs[0].Error() != want {
		t.Errorf("errors = %v\nwant %s", errs, want)
	}
}

func TestPodValidateUpdate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*corev1.Pod)
		want   []string
	}{
		{"image", func(p *corev1.Pod) { p.Spec.Containers[0].Image = "busybox:1.37" }, []string{}},
		{"image to latest changes the defaulted pull policy", func(p *corev1.Pod) {
			p.Spec.Containers[0].Image = "busybox"
			p.Spec.Containers[0].ImagePullPolicy = ""
		}, []string{"spec: Forbidden"}},
		{"labels", func(p *corev1.Pod) { p.Labels = map[string]string{"a": "b"} }, []string{}},
		{"added toleration", func(p *corev1.Pod) {
			p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Key: "k", Operator: corev1.TolerationOpExists})
		}, []string{}},
		{"toleration seconds", func(p *corev1.Pod) { p.Spec.Tolerations[0].TolerationSeconds = ptrTo(int64(10)) }, []string{}},
		{"removed default toleration comes back", func(p *corev1.Pod) { p.Spec.Tolerations = p.Spec.Tolerations[1:] }, []string{}},
		{"changed toleration", func(p *corev1.Pod) { p.Spec.Tolerations[0].Operator = corev1.TolerationOpEqual }, []string{"spec.tolerations: Forbidden"}},
		{"set active deadline", func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptrTo(int64(60)) }, []string{}},
		{"node name", func(p *corev1.Pod) { p.Spec.NodeName = "n1" }, []string{"spec: Forbidden"}},
		{"container port", func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, Protocol: corev1.ProtocolTCP}}
		}, []string{"spec: Forbidden"}},
		{"added container", func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "d", Image: "busybox"})
		}, []string{"spec.containers: Forbidden"}},
		{"name", func(p *corev1.Pod) { p.Name = "q" }, []string{"metadata.name: Invalid value"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newPodStrategy()
			old := validPod()
			s.PrepareForCreate(old)
			pod := old.DeepCopy()
			tt.mutate(pod)
			s.PrepareForUpdate(pod, old)
			got := errSummary(s.ValidateUpdate(pod, old))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPodValidateUpdateMessage(t *testing.T) {
	s := newPodStrategy()
	old := validPod()
	s.PrepareForCreate(old)
	pod := old.DeepCopy()
	pod.Spec.NodeName = "n1"
	pod.Spec.Containers[0].Args = []string{"sleep"}
	errs := s.ValidateUpdate(pod, old)
	if len(errs) != 1 {
		t.Fatalf("errors = %v", errs)
	}
	msg := errs[0].Error()
	prefix := "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
	if !strings.HasPrefix(msg, prefix) {
		t.Errorf("message = %q, want prefix %q", msg, prefix)
	}
	if !strings.Contains(msg, "changed: spec.containers[0].args, spec.nodeName") {
		t.Errorf("message does not name the changed fields: %q", msg)
	}
}

func TestPodValidateStatusUpdate(t *testing.T) {
	tests := []struct {
		name   string
		policy corev1.RestartPolicy
		old    corev1.ContainerState
		new    corev1.ContainerState
		ips    []corev1.PodIP
		want   []string
	}{
		{"running to terminated", corev1.RestartPolicyNever, running(), exited(1), nil, []string{}},
		{"never: terminated back to running", corev1.RestartPolicyNever, exited(1), running(), nil,
			[]string{"status.containerStatuses[0].state: Forbidden"}},
		{"onFailure: failed back to running", corev1.RestartPolicyOnFailure, exited(1), running(), nil, []string{}},
		{"onFailure: succeeded back to running", corev1.RestartPolicyOnFailure, exited(0), running(), nil,
			[]string{"status.containerStatuses[0].state: Forbidden"}},
		{"always: anything goes", corev1.RestartPolicyAlways, exited(0), running(), nil, []string{}},
		{"dual stack IPs", corev1.RestartPolicyAlways, running(), running(), []corev1.PodIP{{IP: "10.0.0.1"}, {IP: "fd00::1"}}, []string{}},
		{"bad IP", corev1.RestartPolicyAlways, running(), running(), []corev1.PodIP{{IP: "10.0.0"}}, []string{"status.podIPs[0].ip: Invalid value"}},
		{"two IPv4", corev1.RestartPolicyAlways, running(), running(), []corev1.PodIP{{IP: "10.0.0.1"}, {IP: "10.0.0.2"}}, []string{"status.podIPs: Invalid value"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newPodStrategy()
			old := validPod()
			old.Spec.RestartPolicy = tt.policy
			s.PrepareForCreate(old)
			old.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", State: tt.old}}
			pod := old.DeepCopy()
			pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", State: tt.new}}
			pod.Status.PodIPs = tt.ips
			s.PrepareForStatusUpdate(pod, old)
			got := errSummary(s.ValidateUpdate(pod, old))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors = %q, want %q", got, tt.want)
			}
		})
	}
}

func running() corev1.ContainerState {
	return corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
}

func exited(code int32) corev1.ContainerState {
	return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code}}
}

package registry

import (
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"sigs.k8s.io/yaml"
)

// fixedNow is the clock of the strategies under test.
func fixedNow() time.Time { return time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC) }

func newPodStrategy() podStrategy { return podStrategy{now: fixedNow} }

// specAndStatusYAML renders what a client reads back of a pod, without
// metadata, to compare against Kubernetes' output.
func specAndStatusYAML(t *testing.T, pod *corev1.Pod) string {
	t.Helper()
	out, err := yaml.Marshal(struct {
		Spec   corev1.PodSpec   `json:"spec"`
		Status corev1.PodStatus `json:"status"`
	}{pod.Spec, pod.Status})
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// The expected YAML is what a Kubernetes v1.34 API server returns for the
// pod `kubectl run` creates (minus the service account and its token
// volume, which kedge does not inject).
func TestPodPrepareForCreateMatchesKubernetes(t *testing.T) {
	tests := []struct {
		name string
		pod  *corev1.Pod
		want string
	}{{
		name: "kubectl run nginx --image=nginx",
		pod: &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "nginx", Namespace: "default", Labels: map[string]string{"run": "nginx"}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "nginx", Image: "nginx"}}},
			Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.9", Message: "forged"},
		},
		want: `spec:
  containers:
  - image: nginx
    imagePullPolicy: Always
    name: nginx
    resources: {}
    terminationMessagePath: /dev/termination-log
    terminationMessagePolicy: File
  dnsPolicy: ClusterFirst
  enableServiceLinks: true
  preemptionPolicy: PreemptLowerPriority
  priority: 0
  restartPolicy: Always
  schedulerName: default-scheduler
  securityContext: {}
  terminationGracePeriodSeconds: 30
  tolerations:
  - effect: NoExecute
    key: node.kubernetes.io/not-ready
    operator: Exists
    tolerationSeconds: 300
  - effect: NoExecute
    key: node.kubernetes.io/unreachable
    operator: Exists
    tolerationSeconds: 300
status:
  phase: Pending
  qosClass: BestEffort
`,
	}, {
		name: "limits only, ports, probe, configMap volume",
		pod: &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
			Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyOnFailure,
				Volumes:       []corev1.Volume{{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "web"}}}}, {Name: "scratch"}},
				Containers: []corev1.Container{{
					Name:           "web",
					Image:          "registry.local:5000/web:1.2@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
					Ports:          []corev1.ContainerPort{{ContainerPort: 8080}},
					Resources:      corev1.ResourceRequirements{Limits: res("cpu", "250m", "memory", "64Mi")},
					ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intOrString(8080)}}},
					VolumeMounts:   []corev1.VolumeMount{{Name: "cfg", MountPath: "/etc/web"}, {Name: "scratch", MountPath: "/tmp"}},
				}},
			},
		},
		want: `spec:
  containers:
  - image: registry.local:5000/web:1.2@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
    imagePullPolicy: IfNotPresent
    name: web
    ports:
    - containerPort: 8080
      protocol: TCP
    readinessProbe:
      failureThreshold: 3
      httpGet:
        path: /
        port: 8080
        scheme: HTTP
      periodSeconds: 10
      successThreshold: 1
      timeoutSeconds: 1
    resources:
      limits:
        cpu: 250m
        memory: 64Mi
      requests:
        cpu: 250m
        memory: 64Mi
    terminationMessagePath: /dev/termination-log
    terminationMessagePolicy: File
    volumeMounts:
    - mountPath: /etc/web
      name: cfg
    - mountPath: /tmp
      name: scratch
  dnsPolicy: ClusterFirst
  enableServiceLinks: true
  preemptionPolicy: PreemptLowerPriority
  priority: 0
  restartPolicy: OnFailure
  schedulerName: default-scheduler
  securityContext: {}
  terminationGracePeriodSeconds: 30
  tolerations:
  - effect: NoExecute
    key: node.kubernetes.io/not-ready
    operator: Exists
    tolerationSeconds: 300
  - effect: NoExecute
    key: node.kubernetes.io/unreachable
    operator: Exists
    tolerationSeconds: 300
  volumes:
  - configMap:
      defaultMode: 420
      name: web
    name: cfg
  - emptyDir: {}
    name: scratch
status:
  phase: Pending
  qosClass: Guaranteed
`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newPodStrategy()
			s.PrepareForCreate(tt.pod)
			if got := specAndStatusYAML(t, tt.pod); got != tt.want {
				t.Errorf("prepared pod:\n%s\nwant:\n%s", got, tt.want)
			}
			if tt.pod.Generation != 1 {
				t.Errorf("generation = %d, want 1", tt.pod.Generation)
			}
			if errs := s.ValidateCreate(tt.pod); len(errs) != 0 {
				t.Errorf("prepared pod does not validate: %v", errs)
			}
		})
	}
}

func TestPodPrepareForCreateAdmission(t *testing.T) {
	tests := []struct {
		name            string
		spec            corev1.PodSpec
		wantTolerations int
		wantPriority    int32
	}{
		{"toleration of everything covers both", corev1.PodSpec{Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}}}, 1, 0},
		{"own not-ready toleration kept", corev1.PodSpec{Tolerations: []corev1.Toleration{{
			Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptrTo(int64(5))}}}, 2, 0},
		{"NoSchedule toleration does not count", corev1.PodSpec{Tolerations: []corev1.Toleration{{
			Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}}, 3, 0},
		{"system-node-critical", corev1.PodSpec{PriorityClassName: "system-node-critical"}, 2, 2000001000},
		{"system-cluster-critical", corev1.PodSpec{PriorityClassName: "system-cluster-critical"}, 2, 2000000000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}, Spec: tt.spec}
			pod.Spec.Containers = []corev1.Container{{Name: "c", Image: "busybox"}}
			newPodStrategy().PrepareForCreate(pod)
			if len(pod.Spec.Tolerations) != tt.wantTolerations {
				t.Errorf("tolerations = %v, want %d", pod.Spec.Tolerations, tt.wantTolerations)
			}
			if pod.Spec.Priority == nil || *pod.Spec.Priority != tt.wantPriority {
				t.Errorf("priority = %v, want %d", pod.Spec.Priority, tt.wantPriority)
			}
		})
	}
}

func TestPodSchedulingGatedCondition(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}, Spec: corev1.PodSpec{
		Containers:      []corev1.Container{{Name: "c", Image: "busybox"}},
		SchedulingGates: []corev1.PodSchedulingGate{{Name: "example.com/wait"}},
	}}
	newPodStrategy().PrepareForCreate(pod)
	want := []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "SchedulingGated",
		Message: "Scheduling is blocked due to non-empty scheduling gates"}}
	if !reflect.DeepEqual(pod.Status.Conditions, want) {
		t.Errorf("conditions = %+v, want %+v", pod.Status.Conditions, want)
	}
}

func TestImageTag(t *testing.T) {
	tests := []struct{ image, tag string }{
		{"nginx", "latest"},
		{"nginx:latest", "latest"},
		{"nginx:1.25", "1.25"},
		{"docker.io/library/nginx", "latest"},
		{"localhost:5000/app", "latest"},
		{"localhost:5000/app:v1", "v1"},
		{"nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", ""},
		{"nginx:latest@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "latest"},
		{"Nginx", ""},
		{"", ""},
		{" nginx", ""},
	}
	for _, tt := range tests {
		if got := imageTag(tt.image); got != tt.tag {
			t.Errorf("imageTag(%q) = %q, want %q", tt.image, got, tt.tag)
		}
	}
}

func TestPodPrepareForUpdate(t *testing.T) {
	s := newPodStrategy()
	old := validPod()
	s.PrepareForCreate(old)
	old.Status.Phase = corev1.PodRunning
	old.Status.PodIPs = []corev1.PodIP{{IP: "10.1.0.4"}}

	// A client PUTs back what it once sent, with a new image and a forged
	// status: defaults and admission come back, status stays, generation
	// moves because the spec changed.
	pod := validPod()
	pod.ResourceVersion = "7"
	pod.Spec.Containers[0].Image = "busybox:1.37"
	pod.Status.Phase = corev1.PodSucceeded
	s.PrepareForUpdate(pod, old)
	if !reflect.DeepEqual(pod.Status, old.Status) {
		t.Errorf("status = %+v, want the old one", pod.Status)
	}
	if pod.Generation != 2 {
		t.Errorf("generation = %d, want 2", pod.Generation)
	}
	if errs := s.ValidateUpdate(pod, old); len(errs) != 0 {
		t.Errorf("image update rejected: %v", errs)
	}

	same := validPod()
	s.PrepareForUpdate(same, old)
	if same.Generation != 1 {
		t.Errorf("generation after no-op update = %d, want 1", same.Generation)
	}
	if errs := s.ValidateUpdate(same, old); len(errs) != 0 {
		t.Errorf("no-op update rejected: %v", errs)
	}
}

func TestPodPrepareForStatusUpdate(t *testing.T) {
	s := newPodStrategy()
	old := validPod()
	old.Labels = map[string]string{"app": "x"}
	s.PrepareForCreate(old)
	old.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse, ObservedGeneration: 1}}

	pod := old.DeepCopy()
	pod.ResourceVersion = "9"
	pod.Labels = map[string]string{"app": "changed"}
	pod.Spec.NodeName = "sneaky"
	pod.Status = corev1.PodStatus{
		Phase:      corev1.PodRunning,
		PodIP:      "10.1.0.5",
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
	}
	s.PrepareForStatusUpdate(pod, old)
	if pod.Spec.NodeName != "" || pod.Labels["app"] != "x" {
		t.Errorf("status update changed spec or labels: nodeName=%q labels=%v", pod.Spec.NodeName, pod.Labels)
	}
	if pod.ResourceVersion != "9" {
		t.Errorf("resourceVersion = %q, want the client's", pod.ResourceVersion)
	}
	if pod.Status.QOSClass != corev1.PodQOSBestEffort {
		t.Errorf("qosClass not backfilled: %q", pod.Status.QOSClass)
	}
	if pod.Status.Conditions[0].ObservedGeneration != 1 {
		t.Errorf("observedGeneration not preserved: %+v", pod.Status.Conditions[0])
	}
	if len(pod.Status.PodIPs) != 1 || pod.Status.PodIPs[0].IP != "10.1.0.5" {
		t.Errorf("podIPs not filled from podIP: %+v", pod.Status.PodIPs)
	}
	if errs := s.ValidateUpdate(pod, old); len(errs) != 0 {
		t.Errorf("status update rejected: %v", errs)
	}
}

func TestPodFields(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"},
		Spec: corev1.PodSpec{NodeName: "n1", RestartPolicy: corev1.RestartPolicyAlways, SchedulerName: "default-scheduler",
			ServiceAccountName: "sa", HostNetwork: true},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.1", NominatedNodeName: "n2"},
	}
	want := fields.Set{
		"metadata.name": "p", "metadata.namespace": "ns", "spec.nodeName": "n1", "spec.restartPolicy": "Always",
		"spec.schedulerName": "default-scheduler", "spec.serviceAccountName": "sa", "spec.hostNetwork": "true",
		"status.phase": "Running", "status.podIP": "10.0.0.1", "status.nominatedNodeName": "n2",
	}
	if got := newPodStrategy().Fields(pod); !reflect.DeepEqual(got, want) {
		t.Errorf("Fields = %v, want %v", got, want)
	}
	sel := fields.ParseSelectorOrDie("spec.nodeName=n1,status.phase!=Failed")
	if !sel.Matches(newPodStrategy().Fields(pod)) {
		t.Errorf("selector %s does not match", sel)
	}
}

func TestPodColumnsMatchKubectl(t *testing.T) {
	var names []string
	for _, c := range newPodStrategy().TableColumns() {
		name := strings.ToUpper(c.Name)
		if c.Priority > 0 {
			name = "(wide)" + name
		}
		names = append(names, name)
	}
	want := "NAME READY STATUS RESTARTS AGE (wide)IP (wide)NODE (wide)NOMINATED NODE (wide)READINESS GATES"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("columns = %s, want %s", got, want)
	}
}

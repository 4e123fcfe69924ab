package agent

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kedge.dev/kedge/runtime"
)

func TestContainerResources(t *testing.T) {
	rl := func(kv ...string) corev1.ResourceList {
		l := corev1.ResourceList{}
		for i := 0; i < len(kv); i += 2 {
			l[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
		}
		return l
	}
	tests := []struct {
		name     string
		req, lim corev1.ResourceList
		want     runtime.Resources
	}{
		{"best effort", nil, nil, runtime.Resources{CPUShares: 2}},
		{"request 250m", rl("cpu", "250m"), nil, runtime.Resources{CPUShares: 256}},
		{"tiny request", rl("cpu", "1m"), nil, runtime.Resources{CPUShares: 2}},
		{"limit only defaults request", nil, rl("cpu", "500m", "memory", "64Mi"),
			runtime.Resources{CPUShares: 512, CPUQuota: 50000, CPUPeriod: 100000, MemoryLimit: 64 << 20}},
		{"two cpus", rl("cpu", "2"), rl("cpu", "2"), runtime.Resources{CPUShares: 2048, CPUQuota: 200000, CPUPeriod: 100000}},
		{"minimum quota", nil, rl("cpu", "5m"), runtime.Resources{CPUShares: 5, CPUQuota: 1000, CPUPeriod: 100000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &corev1.Container{Resources: corev1.ResourceRequirements{Requests: tt.req, Limits: tt.lim}}
			if got := containerResources(c); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestExpand(t *testing.T) {
	vars := map[string]string{"A": "1", "B": "two"}
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"$(A)", "1"},
		{"x$(A)y$(B)z", "x1ytwoz"},
		{"$(C)", "$(C)"},
		{"$$(A)", "$(A)"},
		{"$A", "$A"},
		{"cost $", "cost $"},
		{"$(A", "$(A"},
	}
	for _, tt := range tests {
		if got := expand(tt.in, vars); got != tt.want {
			t.Errorf("expand(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func testAgent(t testing.TB) *Agent {
	t.Helper()
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.NodeName, cfg.DataDir, cfg.PodLogDir, cfg.NodeIP, cfg.DisableEndpoint = "n1", dir, filepath.Join(dir, "logs"), "192.0.2.10", true
	cfg.ResolvConf = filepath.Join(dir, "resolv.conf")
	os.WriteFile(cfg.ResolvConf, []byte("nameserver 192.0.2.53\n"), 0o644)
	return &Agent{cfg: cfg.withDefaults()}
}

func TestContainerSpec(t *testing.T) {
	burstableNoMemoryRequest := 999 // a memory limit without a request: Burstable
	a := testAgent(t)
	grace := int64(1)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "prod", UID: "uid-1", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{NodeName: "n1", TerminationGracePeriodSeconds: &grace,
			Volumes: []corev1.Volume{
				{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: filepath.Join(a.cfg.DataDir, "hp"),
					Type: ptrTo(corev1.HostPathDirectoryOrCreate)}}},
			},
			Containers: []corev1.Container{{
				Name: "app", Image: "busybox", Command: []string{"sh", "-c"}, Args: []string{"echo $(GREETING) $(POD)"},
				WorkingDir: "/w",
				Env: []corev1.EnvVar{
					{Name: "POD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
					{Name: "NS", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
					{Name: "UID", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.uid"}}},
					{Name: "IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
					{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
					{Name: "APP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}}},
					{Name: "MEM", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory",
						Divisor: resource.MustParse("1Mi")}}},
					{Name: "GREETING", Value: "hi-$(POD)"},
				},
				Resources:    corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")}},
				VolumeMounts: []corev1.VolumeMount{{Name: "scratch", MountPath: "/scratch"}, {Name: "host", MountPath: "/host", ReadOnly: true}},
			}},
		},
	}
	if err := a.preparePodDir(pod, "10.42.0.7"); err != nil {
		t.Fatal(err)
	}
	spec, err := a.containerSpec(pod, &pod.Spec.Containers[0], 3, "10.42.0.7")
	if err != nil {
		t.Fatal(err)
	}
	podDir := filepath.Join(a.cfg.DataDir, "agent", "pods", "uid-1")
	want := runtime.ContainerSpec{
		ID: "uid-1-app-3", Image: "busybox", Command: []string{"sh", "-c"}, Args: []string{"echo hi-web web"},
		Env:        []string{"POD=web", "NS=prod", "UID=uid-1", "IP=10.42.0.7", "NODE=n1", "APP=web", "MEM=64", "GREETING=hi-web"},
		WorkingDir: "/w", Hostname: "web",
		Mounts: []runtime.Mount{
			{Source: podDir + "/etc-hosts", Destination: "/etc/hosts"},
			{Source: podDir + "/etc-hostname", Destination: "/etc/hostname"},
			{Source: podDir + "/resolv.conf", Destination: "/etc/resolv.conf"},
			{Source: podDir + "/containers/app/3-termination-log", Destination: "/dev/termination-log"},
			{Source: podDir + "/volumes/kubernetes.io~empty-dir/scratch", Destination: "/scratch"},
			{Source: filepath.Join(a.cfg.DataDir, "hp"), Destination: "/host", ReadOnly: true},
		},
		Resources:    runtime.Resources{CPUShares: 2, MemoryLimit: 64 << 20},
		Security:     runtime.Security{OOMScoreAdj: &burstableNoMemoryRequest},
		CgroupParent: "/kedge/kubepods/burstable/poduid-1",
		LogPath:      filepath.Join(a.cfg.PodLogDir, "prod_web_uid-1", "app", "3.log"),
		Labels: map[string]string{LabelPodUID: "uid-1", LabelPodNamespace: "prod", LabelPodName: "web",
			LabelContainerName: "app", LabelAttempt: "3", LabelHash: spec.Labels[LabelHash]},
	}
	if !reflect.DeepEqual(spec, want) {
		t.Errorf("spec\n got %+v\nwant %+v", spec, want)
	}
	hosts, _ := os.ReadFile(podDir + "/etc-hosts")
	if !strings.Contains(string(hosts), "10.42.0.7\tweb\n") || !strings.Contains(string(hosts), "127.0.0.1\tlocalhost") {
		t.Errorf("hosts file:\n%s", hosts)
	}
	if resolv, _ := os.ReadFile(podDir + "/resolv.conf"); string(resolv) != "nameserver 192.0.2.53\n" {
		t.Errorf("resolv.conf %q", resolv)
	}
	if st, err := os.Stat(filepath.Join(a.cfg.DataDir, "hp")); err != nil || !st.IsDir() {
		t.Errorf("hostPath DirectoryOrCreate not created: %v", err)
	}
	if _, err := os.Stat(filepath.Dir(want.LogPath)); err != nil {
		t.Errorf("log directory missing: %v", err)
	}
	if err := a.removePodFiles(pod); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{podDir, filepath.Join(a.cfg.PodLogDir, "prod_web_uid-1")} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left after removal", p)
		}
	}
}

func TestContainerSpecErrors(t *testing.T) {
	a := testAgent(t)
	tests := []struct {
		name string
		c    corev1.Container
		vols []corev1.Volume
	}{
		{"missing volume", corev1.Container{Name: "c", VolumeMounts: []corev1.VolumeMount{{Name: "nope", MountPath: "/x"}}}, nil},
		{"secret env", corev1.Container{Name: "c", Env: []corev1.EnvVar{{Name: "S", ValueFrom: &corev1.EnvVarSource{
			SecretKeyRef: &corev1.SecretKeySelector{Key: "k"}}}}}, nil},
		{"bad field", corev1.Container{Name: "c", Env: []corev1.EnvVar{{Name: "S", ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nope"}}}}}, nil},
		{"hostPath not a directory", corev1.Container{Name: "c", VolumeMounts: []corev1.VolumeMount{{Name: "h", MountPath: "/h"}}},
			[]corev1.Volume{{Name: "h", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{
				Path: "/nonexistent/kedge", Type: ptrTo(corev1.HostPathDirectory)}}}}},
		{"escaping subPath", corev1.Container{Name: "c", VolumeMounts: []corev1.VolumeMount{{Name: "e", MountPath: "/e", SubPath: "../x"}}},
			[]corev1.Volume{{Name: "e", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "d", UID: "u"},
				Spec: corev1.PodSpec{Volumes: tt.vols, Containers: []corev1.Container{tt.c}}}
			if _, err := a.containerSpec(pod, &pod.Spec.Containers[0], 0, "10.0.0.1"); err == nil {
				t.Error("no error")
			}
		})
	}
}

func TestOnlyLoopbackNameservers(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"nameserver 127.0.0.53\noptions edns0\n", true},
		{"nameserver 127.0.0.53\nnameserver 192.0.2.1\n", false},
		{"search lan\n", false},
	}
	for _, tt := range tests {
		if got := onlyLoopbackNameservers([]byte(tt.in)); got != tt.want {
			t.Errorf("%q: %v", tt.in, got)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	ok.NodeName, ok.DataDir, ok.NodeIP, ok.KubeletCertFile, ok.KubeletKeyFile, ok.KubeletToken = "n", "/var/lib/kedge", "10.0.0.1", "c", "k", "t"
	if err := ok.withDefaults().Validate(); err != nil {
		t.Fatal(err)
	}
	tests := []func(c *Config){
		func(c *Config) { c.NodeName = "" },
		func(c *Config) { c.DataDir = "rel" },
		func(c *Config) { c.NodeIP = "nope" },
		func(c *Config) { c.KubeletToken = "" },
		func(c *Config) { c.KubeletAddr = "nope" },
		func(c *Config) { c.CgroupRoot = "kedge" },
	}
	for i, mut := range tests {
		c := ok
		mut(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%d: accepted", i)
		}
	}
}

func ptrTo[T any](v T) *T { return &v }

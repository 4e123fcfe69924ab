package scheduler

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func node(name string, cpu, mem string, ready bool, mutate ...func(*corev1.Node)) *corev1.Node {
	st := corev1.ConditionTrue
	if !ready {
		st = corev1.ConditionFalse
	}
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}},
		Status: corev1.NodeStatus{
			Allocatable: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse(cpu),
				corev1.ResourceMemory: resource.MustParse(mem),
				corev1.ResourcePods:   resource.MustParse("110"),
			},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: st}},
		},
	}
	for _, m := range mutate {
		m(n)
	}
	return n
}

func pod(cpu, mem string, mutate ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default"}}
	c := corev1.Container{Name: "c", Image: "busybox"}
	if cpu != "" || mem != "" {
		c.Resources.Requests = corev1.ResourceList{}
		if cpu != "" {
			c.Resources.Requests[corev1.ResourceCPU] = resource.MustParse(cpu)
		}
		if mem != "" {
			c.Resources.Requests[corev1.ResourceMemory] = resource.MustParse(mem)
		}
	}
	p.Spec.Containers = []corev1.Container{c}
	for _, m := range mutate {
		m(p)
	}
	return p
}

func TestDecide(t *testing.T) {
	tests := []struct {
		name    string
		pod     *corev1.Pod
		nodes   []NodeInfo
		want    string
		message string
	}{
		{
			name:  "single ready node",
			pod:   pod("100m", "64Mi"),
			nodes: []NodeInfo{{Node: node("a", "2", "2Gi", true)}},
			want:  "a",
		},
		{
			name:    "no nodes",
			pod:     pod("", ""),
			message: "0/0 nodes are available: no nodes registered.",
		},
		{
			name:    "not ready node",
			pod:     pod("", ""),
			nodes:   []NodeInfo{{Node: node("a", "2", "2Gi", false)}},
			message: "0/1 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }.",
		},
		{
			name: "insufficient cpu counts pods already bound",
			pod:  pod("1500m", ""),
			nodes: []NodeInfo{
				{Node: node("a", "2", "2Gi", true), Pods: []*corev1.Pod{pod("700m", "")}},
			},
			message: "0/1 nodes are available: 1 Insufficient cpu.",
		},
		{
			name: "finished pods free their requests",
			pod:  pod("1500m", ""),
			nodes: []NodeInfo{
				{Node: node("a", "2", "2Gi", true), Pods: []*corev1.Pod{pod("700m", "", func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded })}},
			},
			want: "a",
		},
		{
			name: "least allocated wins",
			pod:  pod("500m", "128Mi"),
			nodes: []NodeInfo{
				{Node: node("a", "2", "2Gi", true), Pods: []*corev1.Pod{pod("1", "1Gi")}},
				{Node: node("b", "2", "2Gi", true)},
			},
			want: "b",
		},
		{
			name: "node selector",
			pod:  pod("", "", func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"disk": "ssd"} }),
			nodes: []NodeInfo{
				{Node: node("a", "2", "2Gi", true)},
				{Node: node("b", "2", "2Gi", true, func(n *corev1.Node) { n.Labels["disk"] = "ssd" })},
			},
			want: "b",
		},
		{
			name: "taint without toleration",
			pod:  pod("", ""),
			nodes: []NodeInfo{{Node: node("a", "2", "2Gi", true, func(n *corev1.Node) {
				n.Spec.Taints = []corev1.Taint{{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}}
			})}},
			message: "0/1 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}.",
		},
		{
			name: "taint with toleration",
			pod: pod("", "", func(p *corev1.Pod) {
				p.Spec.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "gpu", Effect: corev1.TaintEffectNoSchedule}}
			}),
			nodes: []NodeInfo{{Node: node("a", "2", "2Gi", true, func(n *corev1.Node) {
				n.Spec.Taints = []corev1.Taint{{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}}
			})}},
			want: "a",
		},
		{
			name:    "cordoned node",
			pod:     pod("", ""),
			nodes:   []NodeInfo{{Node: node("a", "2", "2Gi", true, func(n *corev1.Node) { n.Spec.Unschedulable = true })}},
			message: "0/1 nodes are available: 1 node(s) were unschedulable.",
		},
		{
			name: "required node affinity NotIn",
			pod: pod("", "", func(p *corev1.Pod) {
				p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
					RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
						MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "kubernetes.io/hostname", Operator: corev1.NodeSelectorOpNotIn, Values: []string{"a"}}},
					}}},
				}}
			}),
			nodes: []NodeInfo{{Node: node("a", "2", "2Gi", true)}, {Node: node("b", "2", "2Gi", true)}},
			want:  "b",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Decide(tc.pod, tc.nodes)
			if got.Node != tc.want || got.Message != tc.message {
				t.Fatalf("Decide = %+v, want node %q message %q", got, tc.want, tc.message)
			}
		})
	}
}

package registry

import (
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
)

func newNodeStrategy() nodeStrategy { return nodeStrategy{now: fixedNow} }

// The rows follow Kubernetes' TestPrintNodeStatus, TestPrintNodeRole,
// TestPrintNodeOSImage and friends (pkg/printers/internalversion).
func TestNodeTableRow(t *testing.T) {
	ready := corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue}
	notReady := corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionFalse}
	tests := []struct {
		name string
		node corev1.Node
		want []interface{}
	}{{
		name: "ready",
		node: corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "foo1"}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{ready}}},
		want: []interface{}{"foo1", "Ready", "<none>", "<unknown>", "", "<none>", "<none>", "<unknown>", "<unknown>", "<unknown>"},
	}, {
		name: "ready, cordoned",
		node: corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "foo2"}, Spec: corev1.NodeSpec{Unschedulable: true},
			Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{ready}}},
		want: []interface{}{"foo2", "Ready,SchedulingDisabled", "<none>", "<unknown>", "", "<none>", "<none>", "<unknown>", "<unknown>", "<unknown>"},
	}, {
		name: "not ready",
		node: corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "foo4"}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{notReady}}},
		want: []interface{}{"foo4", "NotReady", "<none>", "<unknown>", "", "<none>", "<none>", "<unknown>", "<unknown>", "<unknown>"},
	}, {
		name: "no conditions, cordoned",
		node: corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "foo7"}, Spec: corev1.NodeSpec{Unschedulable: true}},
		want: []interface{}{"foo7", "Unknown,SchedulingDisabled", "<none>", "<unknown>", "", "<none>", "<none>", "<unknown>", "<unknown>", "<unknown>"},
	}, {
		name: "roles and wide columns",
		node: corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: "edge-1", CreationTimestamp: metav1.NewTime(fixedNow().Add(-49 * time.Hour)), Labels: map[string]string{
				"node-role.kubernetes.io/worker": "", "node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "edge", "node-role.kubernetes.io/": ""}},
			Status: corev1.NodeStatus{
				Conditions: []corev1.NodeCondition{ready},
				Addresses: []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: "edge-1"},
					{Type: corev1.NodeInternalIP, Address: "192.168.1.10"}, {Type: corev1.NodeExternalIP, Address: "203.0.113.7"}},
				NodeInfo: corev1.NodeSystemInfo{KubeletVersion: "v1.34.2-kedge", OSImage: "Debian GNU/Linux 12 (bookworm)",
					KernelVersion: "6.1.0-18-amd64", ContainerRuntimeVersion: "kedge://0.1.0"},
			},
		},
		want: []interface{}{"edge-1", "Ready", "control-plane,edge,worker", "2d1h", "v1.34.2-kedge", "192.168.1.10", "203.0.113.7",
			"Debian GNU/Linux 12 (bookworm)", "6.1.0-18-amd64", "kedge://0.1.0"},
	}}
	s := newNodeStrategy()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.TableRow(&tt.node); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("cells = %#v\nwant    %#v", got, tt.want)
			}
		})
	}
}

func TestNodePrepareAndValidate(t *testing.T) {
	s := newNodeStrategy()
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "edge-1", Namespace: "default"},
		Spec:       corev1.NodeSpec{PodCIDR: "10.42.1.0/24"},
		Status:     corev1.NodeStatus{Capacity: res("cpu", "4", "memory", "4Gi", "pods", "110"), Phase: corev1.NodeRunning},
	}
	s.PrepareForCreate(node)
	if node.Namespace != "" {
		t.Errorf("namespace not cleared: %q", node.Namespace)
	}
	if !reflect.DeepEqual(node.Status.Allocatable, node.Status.Capacity) {
		t.Errorf("allocatable = %v, want capacity %v", node.Status.Allocatable, node.Status.Capacity)
	}
	if !reflect.DeepEqual(node.Spec.PodCIDRs, []string{"10.42.1.0/24"}) {
		t.Errorf("podCIDRs = %v", node.Spec.PodCIDRs)
	}
	if node.Status.Phase != corev1.NodeRunning {
		t.Errorf("status dropped on create: %+v", node.Status)
	}
	if errs := s.ValidateCreate(node); len(errs) != 0 {
		t.Fatalf("valid node rejected: %v", errs)
	}
	node.ResourceVersion = "3"

	bad := []struct {
		name   string
		mutate func(*corev1.Node)
		want   []string
	}{
		{"bad name", func(n *corev1.Node) { n.Name = "Edge_1" }, []string{"metadata.name: Invalid value"}},
		{"taint without effect", func(n *corev1.Node) { n.Spec.Taints = []corev1.Taint{{Key: "k"}} }, []string{"spec.taints[0].effect: Required value"}},
		{"duplicate taint", func(n *corev1.Node) {
			n.Spec.Taints = []corev1.Taint{{Key: "k", Effect: corev1.TaintEffectNoSchedule}, {Key: "k", Value: "v", Effect: corev1.TaintEffectNoSchedule}}
		}, []string{"spec.taints[1]: Duplicate value"}},
		{"bad cidr", func(n *corev1.Node) { n.Spec.PodCIDRs = []string{"10.42.1.0/33"}; n.Spec.PodCIDR = "" }, []string{"spec.podCIDRs[0]: Invalid value"}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "edge-1"}}
			tt.mutate(n)
			s.PrepareForCreate(n)
			if got := errSummary(s.ValidateCreate(n)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors = %q, want %q", got, tt.want)
			}
		})
	}

	upd := node.DeepCopy()
	upd.Spec.Unschedulable = true
	upd.Status = corev1.NodeStatus{}
	s.PrepareForUpdate(upd, node)
	if upd.Status.Phase != corev1.NodeRunning {
		t.Errorf("update replaced status: %+v", upd.Status)
	}
	if errs := s.ValidateUpdate(upd, node); len(errs) != 0 {
		t.Errorf("cordon rejected: %v", errs)
	}
	upd.Spec.PodCIDRs = []string{"10.42.2.0/24"}
	if got := errSummary(s.ValidateUpdate(upd, node)); !reflect.DeepEqual(got, []string{"spec.podCIDRs: Forbidden"}) {
		t.Errorf("podCIDR change: errors = %q", got)
	}

	st := node.DeepCopy()
	st.Spec.Unschedulable = true
	st.Labels = map[string]string{"x": "y"}
	st.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	s.PrepareForStatusUpdate(st, node)
	if st.Spec.Unschedulable || st.Labels != nil || len(st.Status.Conditions) != 1 {
		t.Errorf("status update: spec=%+v labels=%v conditions=%v", st.Spec, st.Labels, st.Status.Conditions)
	}
}

func TestNodeFields(t *testing.T) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Spec: corev1.NodeSpec{Unschedulable: true}}
	want := fields.Set{"metadata.name": "n1", "spec.unschedulable": "true"}
	if got := newNodeStrategy().Fields(node); !reflect.DeepEqual(got, want) {
		t.Errorf("Fields = %v, want %v", got, want)
	}
}

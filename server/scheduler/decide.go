package scheduler

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"
)

// NodeInfo is a node with the pods already bound to it.
type NodeInfo struct {
	Node *corev1.Node
	Pods []*corev1.Pod
}

// Decision is the outcome of scheduling one pod.
type Decision struct {
	// Node is the chosen node's name, "" when no node fits.
	Node string
	// Message explains a failure the way kube-scheduler does:
	// "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match Pod's node affinity/selector."
	Message string
}

// Decide picks a node for pod. It is pure: the same inputs give the same
// answer, which is what lets the table tests pin kube-scheduler's behaviour.
// Among fitting nodes the one with the smallest share of its allocatable CPU
// and memory requested wins (kube-scheduler's LeastAllocated), ties broken by
// name.
func Decide(pod *corev1.Pod, nodes []NodeInfo) Decision {
	reasons := map[string]int{}
	type cand struct {
		name  string
		score float64
	}
	var fit []cand
	for _, ni := range nodes {
		if why := unfit(pod, ni); why != "" {
			reasons[why]++
			continue
		}
		fit = append(fit, cand{ni.Node.Name, requestedShare(pod, ni)})
	}
	if len(fit) == 0 {
		return Decision{Message: failureMessage(len(nodes), reasons)}
	}
	sort.Slice(fit, func(i, j int) bool {
		if fit[i].score != fit[j].score {
			return fit[i].score < fit[j].score
		}
		return fit[i].name < fit[j].name
	})
	return Decision{Node: fit[0].name}
}

func failureMessage(total int, reasons map[string]int) string {
	if total == 0 {
		return "0/0 nodes are available: no nodes registered."
	}
	parts := make([]string, 0, len(reasons))
	for why, n := range reasons {
		parts = append(parts, fmt.Sprintf("%d %s", n, why))
	}
	sort.Strings(parts)
	return fmt.Sprintf("0/%d nodes are available: %s.", total, strings.Join(parts, ", "))
}

// unfit returns why pod cannot go to the node, or "" when it can.
func unfit(pod *corev1.Pod, ni NodeInfo) string {
	node := ni.Node
	if !nodeReady(node) {
		return "node(s) had untolerated taint {node.kubernetes.io/not-ready: }"
	}
	if node.Spec.Unschedulable && !tolerates(pod.Spec.Tolerations, corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule}) {
		return "node(s) were unschedulable"
	}
	for _, taint := range node.Spec.Taints {
		if taint.Effect == corev1.TaintEffectPreferNoSchedule {
			continue
		}
		if !tolerates(pod.Spec.Tolerations, taint) {
			return fmt.Sprintf("node(s) had untolerated taint {%s: %s}", taint.Key, taint.Value)
		}
	}
	if !labels.SelectorFromSet(pod.Spec.NodeSelector).Matches(labels.Set(node.Labels)) || !matchesRequiredAffinity(pod, node) {
		return "node(s) didn't match Pod's node affinity/selector"
	}
	maxPods := node.Status.Allocatable.Pods().Value()
	if node.Status.Allocatable.Pods().IsZero() {
		maxPods = 110
	}
	if int64(len(activePods(ni.Pods))+1) > maxPods {
		return "Too many pods"
	}
	req := podRequests(pod)
	used := corev1.ResourceList{}
	for _, p := range activePods(ni.Pods) {
		addTo(used, podRequests(p))
	}
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage} {
		want, ok := req[name]
		if !ok || want.IsZero() {
			continue
		}
		alloc, ok := node.Status.Allocatable[name]
		if !ok {
			continue
		}
		total := used[name]
		total.Add(want)
		if total.Cmp(alloc) > 0 {
			return "Insufficient " + string(name)
		}
	}
	return ""
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func tolerates(tols []corev1.Toleration, taint corev1.Taint) bool {
	for i := range tols {
		if tols[i].ToleratesTaint(&taint) {
			return true
		}
	}
	return false
}

// matchesRequiredAffinity checks requiredDuringSchedulingIgnoredDuringExecution
// node affinity: the terms are ORed, the expressions inside a term ANDed.
func matchesRequiredAffinity(pod *corev1.Pod, node *corev1.Node) bool {
	aff := pod.Spec.Affinity
	if aff == nil || aff.NodeAffinity == nil || aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return true
	}
	for _, term := range aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		if termMatches(term, node) {
			return true
		}
	}
	return false
}

func termMatches(term corev1.NodeSelectorTerm, node *corev1.Node) bool {
	if len(term.MatchExpressions) == 0 && len(term.MatchFields) == 0 {
		return false
	}
	for _, e := range term.MatchExpressions {
		if !exprMatches(e, node.Labels[e.Key], hasKey(node.Labels, e.Key)) {
			return false
		}
	}
	for _, e := range term.MatchFields {
		if e.Key != "metadata.name" || !exprMatches(e, node.Name, true) {
			return false
		}
	}
	return true
}

func hasKey(m map[string]string, k string) bool { _, ok := m[k]; return ok }

func exprMatches(e corev1.NodeSelectorRequirement, value string, present bool) bool {
	in := func() bool {
		for _, v := range e.Values {
			if v == value {
				return true
			}
		}
		return false
	}
	switch e.Operator {
	case corev1.NodeSelectorOpIn:
		return present && in()
	case corev1.NodeSelectorOpNotIn:
		return !present || !in()
	case corev1.NodeSelectorOpExists:
		return present
	case corev1.NodeSelectorOpDoesNotExist:
		return !present
	case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
		if !present || len(e.Values) != 1 {
			return false
		}
		a, err1 := resource.ParseQuantity(value)
		b, err2 := resource.ParseQuantity(e.Values[0])
		if err1 != nil || err2 != nil {
			return false
		}
		if e.Operator == corev1.NodeSelectorOpGt {
			return a.Cmp(b) > 0
		}
		return a.Cmp(b) < 0
	}
	return false
}

func activePods(pods []*corev1.Pod) []*corev1.Pod {
	out := pods[:0:0]
	for _, p := range pods {
		if p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			out = append(out, p)
		}
	}
	return out
}

// podRequests is the pod's effective request: the sum over containers, or
// the largest init container when that is larger (init containers run one
// at a time), plus overhead — as kube-scheduler computes it.
func podRequests(pod *corev1.Pod) corev1.ResourceList {
	sum := corev1.ResourceList{}
	for _, c := range pod.Spec.Containers {
		addTo(sum, containerRequests(c))
	}
	for _, c := range pod.Spec.InitContainers {
		for name, q := range containerRequests(c) {
			if cur, ok := sum[name]; !ok || q.Cmp(cur) > 0 {
				sum[name] = q.DeepCopy()
			}
		}
	}
	addTo(sum, pod.Spec.Overhead)
	return sum
}

// containerRequests falls back to limits where a request is missing, as
// API defaulting does for pods created before defaulting ran.
func containerRequests(c corev1.Container) corev1.ResourceList {
	out := corev1.ResourceList{}
	for name, q := range c.Resources.Limits {
		out[name] = q.DeepCopy()
	}
	for name, q := range c.Resources.Requests {
		out[name] = q.DeepCopy()
	}
	return out
}

func addTo(dst, src corev1.ResourceList) {
	for name, q := range src {
		cur := dst[name]
		cur.Add(q)
		dst[name] = cur
	}
}

// requestedShare is the mean fraction of allocatable CPU and memory that
// would be requested on the node with pod added.
func requestedShare(pod *corev1.Pod, ni NodeInfo) float64 {
	used := podRequests(pod)
	for _, p := range activePods(ni.Pods) {
		addTo(used, podRequests(p))
	}
	share := 0.0
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		alloc := ni.Node.Status.Allocatable[name]
		if alloc.IsZero() {
			continue
		}
		u := used[name]
		share += float64(u.MilliValue()) / float64(alloc.MilliValue())
	}
	return share / 2
}

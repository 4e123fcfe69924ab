package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	goruntime "runtime"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"kedge.dev/kedge/client"
	"kedge.dev/kedge/client/record"
)

// Well-known node labels.
const (
	LabelHostname     = "kubernetes.io/hostname"
	LabelOS           = "kubernetes.io/os"
	LabelArch         = "kubernetes.io/arch"
	LabelControlPlane = "node-role.kubernetes.io/control-plane"
)

// nodeLabels returns the labels the agent puts on its Node.
func (a *Agent) nodeLabels() map[string]string {
	l := map[string]string{
		LabelHostname: a.cfg.NodeName,
		LabelOS:       goruntime.GOOS,
		LabelArch:     goruntime.GOARCH,
	}
	if a.cfg.ServerNode {
		l[LabelControlPlane] = ""
	}
	for k, v := range a.cfg.NodeLabels {
		l[k] = v
	}
	return l
}

// nodeStatus builds the node status posted at each heartbeat.
func (a *Agent) nodeStatus(now time.Time) corev1.NodeStatus {
	capacity := hostCapacity(a.cfg.DataDir, a.cfg.Capacity)
	port := 0
	if !a.cfg.DisableEndpoint {
		_, p, _ := net.SplitHostPort(a.cfg.KubeletAddr)
		port, _ = strconv.Atoi(p)
	}
	hb := metav1.NewTime(now.UTC().Truncate(time.Second))
	since := metav1.NewTime(a.readySince)
	cond := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: t, Status: s, LastHeartbeatTime: hb, LastTransitionTime: since, Reason: reason, Message: msg}
	}
	return corev1.NodeStatus{
		Capacity:    capacity,
		Allocatable: capacity.DeepCopy(),
		Phase:       corev1.NodeRunning,
		Conditions: []corev1.NodeCondition{
			cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
			cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
			cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
			cond(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status"),
		},
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: a.cfg.NodeIP},
			{Type: corev1.NodeHostName, Address: a.cfg.NodeName},
		},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(port)}},
		NodeInfo:        a.sysInfo,
	}
}

// registerNode creates the Node, or brings an existing one's labels up to
// date, then posts its status.
func (a *Agent) registerNode(ctx context.Context) error {
	node := &corev1.Node{
		TypeMeta:   metav1.TypeMeta{Kind: "Node", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Name: a.cfg.NodeName, Labels: a.nodeLabels()},
		Status:     a.nodeStatus(time.Now()),
	}
	err := a.api.Create(ctx, client.Nodes, node, nil)
	switch {
	case err == nil:
		a.log.Info("registered node", "node", a.cfg.NodeName)
		a.events.Event(record.NodeRef(a.cfg.NodeName), corev1.EventTypeNormal, "RegisteredNode",
			fmt.Sprintf("Node %s event: Registered Node %s", a.cfg.NodeName, a.cfg.NodeName))
	case apierrors.IsAlreadyExists(err):
		if err := a.updateNodeLabels(ctx); err != nil {
			return err
		}
	default:
		return fmt.Errorf("register node %s: %w", a.cfg.NodeName, err)
	}
	if err := a.postNodeStatus(ctx); err != nil {
		return err
	}
	a.events.Event(record.NodeRef(a.cfg.NodeName), corev1.EventTypeNormal, "NodeReady",
		fmt.Sprintf("Node %s status is now: NodeReady", a.cfg.NodeName))
	return nil
}

// updateNodeLabels sets the agent's labels on an existing Node, retrying on
// write conflicts.
func (a *Agent) updateNodeLabels(ctx context.Context) error {
	for try := 0; ; try++ {
		var node corev1.Node
		if err := a.api.Get(ctx, client.Nodes, a.cfg.NodeName, &node); err != nil {
			return fmt.Errorf("get node %s: %w", a.cfg.NodeName, err)
		}
		changed := false
		if node.Labels == nil {
			node.Labels = map[string]string{}
		}
		for k, v := range a.nodeLabels() {
			if old, ok := node.Labels[k]; !ok || old != v {
				node.Labels[k] = v
				changed = true
			}
		}
		if !changed {
			return nil
		}
		err := a.api.Update(ctx, client.Nodes, &node, nil)
		if err == nil || !apierrors.IsConflict(err) || try >= 5 {
			if err != nil {
				return fmt.Errorf("update node %s labels: %w", a.cfg.NodeName, err)
			}
			return nil
		}
	}
}

// postNodeStatus patches the node status (heartbeat).
func (a *Agent) postNodeStatus(ctx context.Context) error {
	st := a.nodeStatus(time.Now())
	data, err := json.Marshal(map[string]any{"status": st})
	if err != nil {
		return fmt.Errorf("encode node status: %w", err)
	}
	if err := a.api.Patch(ctx, client.Nodes, a.cfg.NodeName, types.MergePatchType, data, nil, "status"); err != nil {
		return fmt.Errorf("post node status: %w", err)
	}
	return nil
}

// runNode registers the node (retrying until it works) and then posts its
// status every HeartbeatPeriod, re-registering if the Node was deleted.
func (a *Agent) runNode(ctx context.Context) {
	registered := false
	retry := time.Second
	for {
		var err error
		if !registered {
			if err = a.registerNode(ctx); err == nil {
				registered = true
			}
		} else if err = a.postNodeStatus(ctx); apierrors.IsNotFound(err) {
			registered = false
		}
		wait := a.cfg.HeartbeatPeriod
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			a.logLimited("node", "node status not posted", "err", err)
			if !registered {
				wait, retry = retry, min(2*retry, a.cfg.HeartbeatPeriod)
			}
		} else {
			retry = time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

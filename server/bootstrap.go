package server

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kedge.dev/kedge/client"
)

// systemNamespaces exist in every Kubernetes cluster; manifests and tools
// assume them.
var systemNamespaces = []string{metav1.NamespaceDefault, metav1.NamespaceSystem, metav1.NamespacePublic, corev1.NamespaceNodeLease}

// namespaceCreator is what bootstrapping needs from the API client.
type namespaceCreator interface {
	Create(ctx context.Context, r client.Resource, obj client.Object, out any) error
}

// ensureSystemNamespaces creates the well-known namespaces, retrying while
// the API server is still coming up.
func ensureSystemNamespaces(ctx context.Context, c namespaceCreator) error {
	for _, name := range systemNamespaces {
		ns := &corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}, ObjectMeta: metav1.ObjectMeta{Name: name}}
		for attempt := 0; ; attempt++ {
			err := c.Create(ctx, client.Namespaces, ns, nil)
			if err == nil || apierrors.IsAlreadyExists(err) {
				break
			}
			if ctx.Err() != nil || attempt == 50 {
				return fmt.Errorf("create namespace %s: %w", name, err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

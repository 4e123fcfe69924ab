package api

import (
	"context"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// TestClientGo drives the server with client-go's typed clientset (JSON and
// protobuf request bodies, as kubectl sends) and a shared informer.
func TestClientGo(t *testing.T) {
	for _, ct := range []string{"", "application/vnd.kubernetes.protobuf"} {
		t.Run("contentType="+ct, func(t *testing.T) {
			env := newTestEnv(t)
			cs, err := kubernetes.NewForConfig(&rest.Config{Host: env.http.URL, BearerToken: testToken, ContentConfig: rest.ContentConfig{ContentType: ct}})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns"}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}

			factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace("ns"))
			inf := factory.Core().V1().Pods().Informer()
			var mu sync.Mutex
			var seen []string
			record := func(s string) { mu.Lock(); seen = append(seen, s); mu.Unlock() }
			_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
				AddFunc:    func(obj any) { record("add " + obj.(*corev1.Pod).Name) },
				UpdateFunc: func(_, obj any) { record("update " + obj.(*corev1.Pod).Name + " " + obj.(*corev1.Pod).Labels["v"]) },
				DeleteFunc: func(obj any) {
					if p, ok := obj.(*corev1.Pod); ok {
						record("delete " + p.Name)
					}
				},
			})
			stop := make(chan struct{})
			factory.Start(stop)
			defer func() { close(stop); factory.Shutdown() }()
			if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
				t.Fatal("informer did not sync")
			}

			pods := cs.CoreV1().Pods("ns")
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}}}
			created, err := pods.Create(ctx, pod, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			created.Labels = map[string]string{"v": "1"}
			updated, err := pods.Update(ctx, created, metav1.UpdateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := pods.Update(ctx, created, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
				t.Fatalf("stale update: %v", err)
			}
			if _, err := pods.Patch(ctx, "p", types.StrategicMergePatchType, []byte(`{"metadata":{"labels":{"v":"2"}}}`), metav1.PatchOptions{}); err != nil {
				t.Fatal(err)
			}
			updated.Status.Phase = corev1.PodRunning
			updated.ResourceVersion = ""
			if _, err := pods.UpdateStatus(ctx, updated, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			list, err := pods.List(ctx, metav1.ListOptions{LabelSelector: "v=2"})
			if err != nil || len(list.Items) != 1 || list.Items[0].Status.Phase != corev1.PodRunning {
				t.Fatalf("list %v %+v", err, list)
			}
			if _, err := pods.Get(ctx, "missing", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Fatalf("get missing: %v", err)
			}
			if err := pods.Delete(ctx, "p", metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0))}); err != nil {
				t.Fatal(err)
			}

			want := []string{"add p", "update p 1", "update p 2", "update p 2", "delete p"}
			deadline := time.Now().Add(10 * time.Second)
			for {
				mu.Lock()
				got := append([]string(nil), seen...)
				mu.Unlock()
				if len(got) == len(want) {
					for i := range want {
						if got[i] != want[i] {
							t.Fatalf("informer saw %q, want %q", got, want)
						}
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("informer saw %q, want %q", got, want)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

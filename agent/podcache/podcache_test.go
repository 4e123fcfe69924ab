package podcache

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
)

func pod(uid, ns, name, rv, image string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{UID: corev1UID("u" + uid), Namespace: ns, Name: name, ResourceVersion: rv},
		Spec:       corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Image: image}}},
	}
}

func corev1UID(s string) k8stypes.UID { return k8stypes.UID(s) }

func TestCacheSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "agent", "pods.db")
	c, err := Open(ctx, DefaultConfig(path))
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		put    *corev1.Pod
		delete string
	}{
		{put: pod("1", "default", "web", "5", "nginx")},
		{put: pod("2", "default", "db", "6", "postgres")},
		{put: pod("1", "default", "web", "9", "nginx:2")}, // update replaces
		{put: pod("3", "kube-system", "dns", "7", "coredns")},
		{delete: "u3"},
		{delete: "u404"}, // unknown: no error
	}
	for _, s := range steps {
		if s.put != nil {
			if err := c.Put(ctx, s.put); err != nil {
				t.Fatal(err)
			}
		} else if err := c.Delete(ctx, corev1UID(s.delete)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c, err = Open(ctx, DefaultConfig(path))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pods, err := c.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(pods) != 2 || pods[0].Name != "db" || pods[1].Name != "web" {
		t.Fatalf("pods %v", pods)
	}
	if pods[1].ResourceVersion != "9" || pods[1].Spec.Containers[0].Image != "nginx:2" || pods[1].Spec.NodeName != "n1" {
		t.Fatalf("web not updated: %+v", pods[1])
	}
}

func TestValidate(t *testing.T) {
	for _, cfg := range []Config{{}, {Path: "x", Synchronous: "OFF"}} {
		if _, err := Open(context.Background(), cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("Open(%+v) = %v", cfg, err)
		}
	}
}

package podnet

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

func mustAddr(t testing.TB, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func newTestIPAM(t testing.TB, path, cidr string) *ipam {
	t.Helper()
	a, err := loadIPAM(path, netip.MustParsePrefix(cidr), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestIPAMAllocation(t *testing.T) {
	// Each step is "+uid" (allocate, want address or "full") or "-uid" (release).
	tests := []struct {
		name  string
		cidr  string
		steps [][2]string
	}{
		{"first address after gateway", "10.199.0.0/24", [][2]string{
			{"+a", "10.199.0.2"}, {"+b", "10.199.0.3"}, {"+a", "10.199.0.2"},
		}},
		{"slash 30 holds one pod", "10.199.0.4/30", [][2]string{
			{"+a", "10.199.0.6"}, {"+b", "full"}, {"-a", ""}, {"+b", "10.199.0.6"},
		}},
		{"next fit does not reuse at once", "10.199.0.0/29", [][2]string{
			{"+a", "10.199.0.2"}, {"+b", "10.199.0.3"}, {"-a", ""}, {"+c", "10.199.0.4"},
			{"+d", "10.199.0.5"}, {"+e", "10.199.0.6"}, {"+f", "10.199.0.2"}, {"+g", "full"},
		}},
		{"release unknown is fine", "10.199.0.0/24", [][2]string{
			{"-nobody", ""}, {"+a", "10.199.0.2"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTestIPAM(t, filepath.Join(t.TempDir(), "ipam.json"), tt.cidr)
			for i, s := range tt.steps {
				op, uid, want := s[0][0], s[0][1:], s[1]
				if op == '-' {
					if err := a.release(uid); err != nil {
						t.Fatalf("step %d: release(%s) = %v", i, uid, err)
					}
					continue
				}
				got, err := a.allocate(uid)
				if want == "full" {
					if !errors.Is(err, ErrExhausted) {
						t.Fatalf("step %d: allocate(%s) = %v, %v; want ErrExhausted", i, uid, got, err)
					}
					continue
				}
				if err != nil || got.String() != want {
					t.Fatalf("step %d: allocate(%s) = %v, %v; want %s", i, uid, got, err, want)
				}
			}
		})
	}
}

func TestIPAMPersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "ipam.json")
	a := newTestIPAM(t, path, "10.199.1.0/24")
	for i := range 5 {
		if _, err := a.allocate(fmt.Sprintf("pod-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.release("pod-1"); err != nil {
		t.Fatal(err)
	}

	b := newTestIPAM(t, path, "10.199.1.0/24")
	for i, want := range map[int]string{0: "10.199.1.2", 2: "10.199.1.4", 4: "10.199.1.6"} {
		if got, ok := b.lookup(fmt.Sprintf("pod-%d", i)); !ok || got.String() != want {
			t.Errorf("after reload pod-%d = %v, %v; want %s", i, got, ok, want)
		}
	}
	if _, ok := b.lookup("pod-1"); ok {
		t.Error("released pod-1 came back after reload")
	}
	// next-fit position survives too.
	if got, err := b.allocate("pod-new"); err != nil || got.String() != "10.199.1.7" {
		t.Errorf("allocate after reload = %v, %v; want 10.199.1.7", got, err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("state dir holds %d files, want only ipam.json (no temporary files)", len(entries))
	}
}

func TestIPAMLoad(t *testing.T) {
	tests := []struct {
		name    string
		content string
		cidr    string
		wantErr error
		want    map[string]string // uid → address after load; missing = dropped
	}{
		{"corrupt", "{not json", "10.199.2.0/24", ErrCorruptState, nil},
		{"future version", `{"version":2,"cidr":"10.199.2.0/24","pods":{}}`, "10.199.2.0/24", ErrCorruptState, nil},
		{"cidr changed", `{"version":1,"cidr":"10.199.2.0/24","pods":{"a":"10.199.2.5","b":"10.199.3.5"}}`,
			"10.199.3.0/24", nil, map[string]string{"b": "10.199.3.5"}},
		{"gateway and broadcast dropped", `{"version":1,"cidr":"10.199.2.0/24","pods":{"a":"10.199.2.1","b":"10.199.2.255","c":"10.199.2.9"}}`,
			"10.199.2.0/24", nil, map[string]string{"c": "10.199.2.9"}},
		{"duplicate dropped", `{"version":1,"cidr":"10.199.2.0/24","pods":{"a":"10.199.2.9","b":"10.199.2.9"}}`,
			"10.199.2.0/24", nil, map[string]string{"a": "10.199.2.9"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ipam.json")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			a, err := loadIPAM(path, netip.MustParsePrefix(tt.cidr), slog.New(slog.DiscardHandler))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("loadIPAM = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(a.pods) != len(tt.want) {
				t.Errorf("loaded %d pods, want %d", len(a.pods), len(tt.want))
			}
			for uid, want := range tt.want {
				if got, ok := a.lookup(uid); !ok || got.String() != want {
					t.Errorf("pod %s = %v, %v; want %s", uid, got, ok, want)
				}
			}
		})
	}
}

package sandbox

import (
	"errors"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"default", DefaultConfig(), true},
		{"empty dir", Config{}, false},
		{"relative dir", Config{Dir: "run/sandboxes"}, false},
		{"absolute dir", Config{Dir: "/tmp/x"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.ok && err != nil {
				t.Fatalf("Validate() = %v, want nil", err)
			}
			if !tt.ok && !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Validate() = %v, want ErrInvalidConfig", err)
			}
		})
	}
	if _, err := New(Config{}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("New(Config{}) = %v, want ErrInvalidConfig", err)
	}
}

func TestValidUID(t *testing.T) {
	tests := []struct {
		uid string
		ok  bool
	}{
		{"0d6b1a52-3c1e-4b0e-9a57-5b8e2f1c9d10", true},
		{"static_pod.node-1", true},
		{"", false},
		{".", false},
		{"..", false},
		{"a/b", false},
		{"../etc", false},
		{"a b", false},
		{"ä", false},
	}
	for _, tt := range tests {
		err := validUID(tt.uid)
		if tt.ok != (err == nil) {
			t.Errorf("validUID(%q) = %v, want ok=%v", tt.uid, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidSpec) {
			t.Errorf("validUID(%q) = %v, want ErrInvalidSpec", tt.uid, err)
		}
	}
}

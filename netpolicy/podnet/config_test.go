package podnet

import (
	"errors"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	with := func(f func(*Config)) Config {
		c := DefaultConfig()
		f(&c)
		return c
	}
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"default", DefaultConfig(), true},
		{"empty bridge", with(func(c *Config) { c.BridgeName = "" }), false},
		{"long bridge", with(func(c *Config) { c.BridgeName = "a-very-long-bridge" }), false},
		{"slash bridge", with(func(c *Config) { c.BridgeName = "br/0" }), false},
		{"15-byte bridge", with(func(c *Config) { c.BridgeName = "abcdefghijklmno" }), true},
		{"ipv6 cidr", with(func(c *Config) { c.PodCIDR = "fd00::/64" }), false},
		{"host bits", with(func(c *Config) { c.PodCIDR = "10.42.0.1/24" }), false},
		{"too small", with(func(c *Config) { c.PodCIDR = "10.42.0.0/31" }), false},
		{"too large", with(func(c *Config) { c.PodCIDR = "10.0.0.0/7" }), false},
		{"slash 30", with(func(c *Config) { c.PodCIDR = "10.42.0.4/30" }), true},
		{"garbage cidr", with(func(c *Config) { c.PodCIDR = "ten" }), false},
		{"relative state", with(func(c *Config) { c.StateDir = "var/lib" }), false},
		{"no state", with(func(c *Config) { c.StateDir = "" }), false},
		{"tiny mtu", with(func(c *Config) { c.MTU = 100 }), false},
		{"zero mtu", with(func(c *Config) { c.MTU = 0 }), false},
		{"jumbo mtu", with(func(c *Config) { c.MTU = 9000 }), true},
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
}

func TestNames(t *testing.T) {
	a, b := hostVethName("0d6b1a52-3c1e-4b0e-9a57-5b8e2f1c9d10"), hostVethName("0d6b1a52-3c1e-4b0e-9a57-5b8e2f1c9d11")
	if a == b {
		t.Fatalf("two UIDs map to %s", a)
	}
	if a != hostVethName("0d6b1a52-3c1e-4b0e-9a57-5b8e2f1c9d10") {
		t.Fatal("hostVethName is not deterministic")
	}
	if err := validIfName(a); err != nil {
		t.Fatal(err)
	}
	mac := macFor(mustAddr(t, "10.42.3.7"))
	if got, want := mac.String(), "0a:58:0a:2a:03:07"; got != want {
		t.Fatalf("macFor = %s, want %s", got, want)
	}
	if mac[0]&1 != 0 || mac[0]&2 == 0 {
		t.Fatalf("MAC %s is not locally administered unicast", mac)
	}
}

package seccomp

import (
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestDefaultProfile(t *testing.T) {
	names := func(p *specs.LinuxSeccomp, action specs.LinuxSeccompAction, withArgs bool) []string {
		var out []string
		for _, s := range p.Syscalls {
			if s.Action == action && (len(s.Args) > 0) == withArgs {
				out = append(out, s.Names...)
			}
		}
		return out
	}
	plain := DefaultProfile([]string{"CAP_CHOWN", "CAP_KILL"}, "amd64")
	if plain.DefaultAction != specs.ActErrno || *plain.DefaultErrnoRet != 1 {
		t.Errorf("default action %s errno %v, want EPERM", plain.DefaultAction, plain.DefaultErrnoRet)
	}
	allowed := names(plain, specs.ActAllow, false)
	for _, s := range []string{"read", "write", "execve", "arch_prctl", "rseq", "openat"} {
		if !slices.Contains(allowed, s) {
			t.Errorf("%s not allowed", s)
		}
	}
	for _, s := range []string{"mount", "unshare", "setns", "ptrace", "reboot", "kexec_load", "add_key", "keyctl", "clone", "clone3", "chroot"} {
		if slices.Contains(allowed, s) {
			t.Errorf("%s allowed without its capability", s)
		}
	}
	if !slices.Contains(names(plain, specs.ActAllow, true), "clone") {
		t.Error("clone without namespace flags must be allowed")
	}
	if !slices.Contains(names(plain, specs.ActErrno, false), "clone3") {
		t.Error("clone3 must fail (ENOSYS) without CAP_SYS_ADMIN")
	}

	admin := DefaultProfile([]string{"CAP_SYS_ADMIN", "CAP_SYS_CHROOT"}, "arm64")
	allowed = names(admin, specs.ActAllow, false)
	for _, s := range []string{"mount", "unshare", "setns", "clone", "clone3", "chroot", "set_tls"} {
		if !slices.Contains(allowed, s) {
			t.Errorf("%s not allowed with CAP_SYS_ADMIN/CAP_SYS_CHROOT on arm64", s)
		}
	}
	if slices.Contains(allowed, "arch_prctl") {
		t.Error("amd64-only syscall allowed on arm64")
	}
	if got := architectures("arm"); len(got) != 1 || got[0] != specs.ArchARM {
		t.Errorf("arm architectures %v", got)
	}
}

// TestConfig converts the profile with libcontainer's converter; it runs
// in every build (the conversion is pure Go). Supported says whether this
// build can load it.
func TestConfig(t *testing.T) {
	cfg, err := Config([]string{"CAP_CHOWN"})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Syscalls) < 300 || len(cfg.Architectures) == 0 {
		t.Errorf("config has %d syscall rules, %d architectures", len(cfg.Syscalls), len(cfg.Architectures))
	}
	t.Logf("seccomp supported by this build: %v", Supported())
}

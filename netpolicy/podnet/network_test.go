package podnet

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"kedge.dev/kedge/runtime/sandbox"
)

// env is one test's private pod network: its own bridge, a free 10.199.x.0/24, a state
// dir and a sandbox manager, all removed by t.Cleanup even when the test fails.
type env struct {
	cfg  Config
	net  *Network
	sb   *sandbox.Manager
	sdir string
}

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: needs root to create bridges, veths and namespaces (CI runs as root)")
	}
	for _, tool := range []string{"nsenter", "busybox"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed (Debian packages util-linux and busybox-static): %v", tool, err)
		}
	}
}

// freeCIDR picks a 10.199.x.0/24 that no address or route of the host overlaps.
func freeCIDR(t testing.TB) string {
	t.Helper()
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	start, _ := rand.Int(rand.Reader, big.NewInt(200))
	for i := range 200 {
		p := netip.MustParsePrefix(fmt.Sprintf("10.199.%d.0/24", 20+(int(start.Int64())+i)%200))
		used := false
		for _, r := range routes {
			if ones, _ := maskOf(r.Dst); ones > 0 && overlaps(p, r.Dst) { // not the default route
				used = true
			}
		}
		for _, a := range addrs {
			if overlaps(p, a.IPNet) {
				used = true
			}
		}
		if !used {
			return p.String()
		}
	}
	t.Fatal("no free 10.199.x.0/24 on this host")
	return ""
}

func maskOf(n *net.IPNet) (int, int) {
	if n == nil {
		return 0, 0
	}
	return n.Mask.Size()
}

func overlaps(p netip.Prefix, n *net.IPNet) bool {
	q, err := netip.ParsePrefix(n.String())
	return err == nil && p.Overlaps(q.Masked())
}

func newEnv(t *testing.T) *env {
	t.Helper()
	requireRoot(t)
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	cfg := DefaultConfig()
	cfg.BridgeName = "ktb" + hex.EncodeToString(suffix)
	cfg.PodCIDR = freeCIDR(t)
	cfg.StateDir = filepath.Join(t.TempDir(), "podnet")
	cfg.MTU = 1400 // not the default, to see that it is applied
	e := &env{cfg: cfg, sdir: filepath.Join(t.TempDir(), "sandboxes")}

	var err error
	if e.sb, err = sandbox.New(sandbox.Config{Dir: e.sdir}); err != nil {
		t.Fatal(err)
	}
	if e.net, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		uids, _ := e.sb.List(ctx)
		for _, uid := range uids {
			_ = e.net.Detach(ctx, uid, filepath.Join(e.sdir, uid, "net"))
			_ = e.sb.Remove(ctx, uid)
		}
		// A second Network in case the test closed its own.
		if n, err := New(cfg); err == nil {
			if err := n.Teardown(ctx); err != nil {
				t.Errorf("cleanup: %v", err)
			}
			n.Close()
		}
		e.net.Close()
	})
	if err := e.net.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	return e
}

// pod makes a sandbox and attaches it.
func (e *env) pod(t *testing.T, uid string) (sandbox.Sandbox, net.IP) {
	t.Helper()
	sb, err := e.sb.Ensure(context.Background(), sandbox.Spec{PodUID: uid, Hostname: uid})
	if err != nil {
		t.Fatal(err)
	}
	ip, err := e.net.Attach(context.Background(), uid, sb.NetNS)
	if err != nil {
		t.Fatal(err)
	}
	return sb, ip
}

// inNetNS runs fn on a thread moved into the namespace at path; the thread is thrown
// away afterwards. Sockets fn creates stay in that namespace wherever they are used later.
func inNetNS(t testing.TB, path string, fn func() error) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		ns, err := netns.GetFromPath(path)
		if err != nil {
			errc <- err
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			errc <- err
			return
		}
		errc <- fn()
	}()
	return <-errc
}

func nsenter(t testing.TB, netnsPath string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + netnsPath, "--"}, args...)...).CombinedOutput()
	return string(out), err
}

func TestAttachConnectsTwoPods(t *testing.T) {
	e := newEnv(t)
	a, ipA := e.pod(t, "pod-a")
	b, ipB := e.pod(t, "pod-b")

	cidr := netip.MustParsePrefix(e.cfg.PodCIDR)
	gw := e.net.Gateway()
	for _, ip := range []net.IP{ipA, ipB} {
		addr, _ := netip.AddrFromSlice(ip.To4())
		if !cidr.Contains(addr) || ip.Equal(gw) {
			t.Fatalf("pod address %s not a host address of %s besides gateway %s", ip, cidr, gw)
		}
	}
	if ipA.Equal(ipB) {
		t.Fatalf("both pods got %s", ipA)
	}

	// ICMP with busybox under nsenter: pod to pod, and pod to gateway.
	for _, c := range []struct {
		from string
		to   net.IP
	}{{a.NetNS, ipB}, {b.NetNS, ipA}, {a.NetNS, gw}} {
		if out, err := nsenter(t, c.from, "busybox", "ping", "-c", "1", "-W", "3", c.to.String()); err != nil {
			t.Fatalf("ping %s from %s: %v\n%s", c.to, c.from, err, out)
		}
	}

	// TCP in-process: listen in pod b, connect from pod a, check the peer address.
	var ln net.Listener
	if err := inNetNS(t, b.NetNS, func() (err error) {
		ln, err = net.Listen("tcp4", net.JoinHostPort(ipB.String(), "8080"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- "accept: " + err.Error()
			return
		}
		defer c.Close()
		line, _ := bufio.NewReader(c).ReadString('\n')
		_, _ = io.WriteString(c, "pong\n")
		accepted <- c.RemoteAddr().(*net.TCPAddr).IP.String() + " " + strings.TrimSpace(line)
	}()
	var conn net.Conn
	if err := inNetNS(t, a.NetNS, func() (err error) {
		conn, err = net.DialTimeout("tcp4", net.JoinHostPort(ipB.String(), "8080"), 3*time.Second)
		return err
	}); err != nil {
		t.Fatalf("connect pod-a → pod-b: %v", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(conn, "ping\n"); err != nil {
		t.Fatal(err)
	}
	reply, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || reply != "pong\n" {
		t.Fatalf("reply = %q, %v", reply, err)
	}
	if got, want := <-accepted, ipA.String()+" ping"; got != want {
		t.Fatalf("server saw %q, want %q", got, want)
	}

	// The pod's side: eth0 with MTU, derived MAC and address; lo up; default route via gw.
	out, err := nsenter(t, a.NetNS, "ip", "-o", "addr", "show")
	if err != nil {
		t.Fatalf("ip addr: %v\n%s", err, out)
	}
	if !strings.Contains(out, "lo    inet 127.0.0.1/8") || !strings.Contains(out, "eth0    inet "+ipA.String()+"/24") {
		t.Errorf("pod addresses:\n%s", out)
	}
	out, _ = nsenter(t, a.NetNS, "ip", "-o", "link", "show", "eth0")
	ipAddr, _ := netip.AddrFromSlice(ipA.To4())
	if !strings.Contains(out, "mtu 1400") || !strings.Contains(out, macFor(ipAddr).String()) || !strings.Contains(out, "UP") {
		t.Errorf("pod eth0:\n%s", out)
	}
	out, _ = nsenter(t, a.NetNS, "ip", "route", "show", "default")
	if !strings.Contains(out, "default via "+gw.String()+" dev eth0") {
		t.Errorf("pod default route: %q", out)
	}
	out, _ = nsenter(t, a.NetNS, "ip", "-o", "link", "show", "lo")
	if !strings.Contains(out, "LOWER_UP") {
		t.Errorf("pod lo not up: %s", out)
	}

	// The host's side: a bridge port with hairpin on, the bridge with its gateway address.
	host := hostVethName("pod-a")
	if v, err := os.ReadFile("/sys/class/net/" + host + "/brport/hairpin_mode"); err != nil || strings.TrimSpace(string(v)) != "1" {
		t.Errorf("hairpin_mode of %s = %q, %v; want 1", host, v, err)
	}
	if m, err := os.Readlink("/sys/class/net/" + host + "/master"); err != nil || filepath.Base(m) != e.cfg.BridgeName {
		t.Errorf("master of %s = %q, %v; want %s", host, m, err, e.cfg.BridgeName)
	}
	br, err := netlink.LinkByName(e.cfg.BridgeName)
	if err != nil {
		t.Fatal(err)
	}
	if br.Attrs().MTU != 1400 || br.Attrs().HardwareAddr.String() != macFor(netip.MustParseAddr(gw.String())).String() {
		t.Errorf("bridge mtu %d mac %s", br.Attrs().MTU, br.Attrs().HardwareAddr)
	}

	// The pods' hostnames are their own.
	for sb, want := range map[sandbox.Sandbox]string{a: "pod-a", b: "pod-b"} {
		out, err := exec.Command("nsenter", "--uts="+sb.UTSNS, "hostname").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != want {
			t.Errorf("hostname in %s = %q, %v; want %s", sb.PodUID, out, err, want)
		}
	}
}

func TestAttachIsIdempotentAndSurvivesRestart(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a, ipA := e.pod(t, "pod-a")
	link, err := netlink.LinkByName(hostVethName("pod-a"))
	if err != nil {
		t.Fatal(err)
	}

	again, err := e.net.Attach(ctx, "pod-a", a.NetNS)
	if err != nil || !again.Equal(ipA) {
		t.Fatalf("second Attach = %v, %v; want %s", again, err, ipA)
	}
	if l, _ := netlink.LinkByName(hostVethName("pod-a")); l == nil || l.Attrs().Index != link.Attrs().Index {
		t.Fatal("second Attach replaced a working veth pair")
	}

	// An agent restart: a new Network on the same state dir keeps the allocation, and a new
	// pod does not get pod-a's address.
	if err := e.net.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.net.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if _, err := e.net.Attach(ctx, "pod-a", a.NetNS); !errors.Is(err, ErrClosed) {
		t.Fatalf("Attach after Close = %v, want ErrClosed", err)
	}
	if _, err := netlink.LinkByName(e.cfg.BridgeName); err != nil {
		t.Fatalf("Close removed the bridge: %v", err)
	}
	if e.net, err = New(e.cfg); err != nil {
		t.Fatal(err)
	}
	if err := e.net.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	again, err = e.net.Attach(ctx, "pod-a", a.NetNS)
	if err != nil || !again.Equal(ipA) {
		t.Fatalf("Attach after restart = %v, %v; want %s", again, err, ipA)
	}
	b, ipB := e.pod(t, "pod-b")
	if ipB.Equal(ipA) {
		t.Fatalf("new pod got pod-a's address %s after restart", ipA)
	}
	if out, err := nsenter(t, b.NetNS, "busybox", "ping", "-c", "1", "-W", "3", ipA.String()); err != nil {
		t.Fatalf("ping after restart: %v\n%s", err, out)
	}
}

func TestAttachNewNamespaceForSamePod(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, ipA := e.pod(t, "pod-a")
	b, _ := e.pod(t, "pod-b")

	// The pod's sandbox is recreated (e.g. after a reboot lost /run): the old pair is
	// replaced and the pod keeps its address.
	if err := e.sb.Remove(ctx, "pod-a"); err != nil {
		t.Fatal(err)
	}
	a2, ip2 := e.pod(t, "pod-a")
	if !ip2.Equal(ipA) {
		t.Fatalf("re-attached pod got %s, want %s", ip2, ipA)
	}
	if out, err := nsenter(t, b.NetNS, "busybox", "ping", "-c", "1", "-W", "3", ip2.String()); err != nil {
		t.Fatalf("ping re-attached pod: %v\n%s", err, out)
	}
	if out, err := nsenter(t, a2.NetNS, "busybox", "ping", "-c", "1", "-W", "3", e.net.Gateway().String()); err != nil {
		t.Fatalf("ping gateway from re-attached pod: %v\n%s", err, out)
	}
}

func TestDetachAndRemoveLeaveNothing(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a, _ := e.pod(t, "pod-a")
	_, _ = e.pod(t, "pod-b")

	// pod-a: the normal order. pod-b: namespace removed first, then Detach.
	if err := e.net.Detach(ctx, "pod-a", a.NetNS); err != nil {
		t.Fatal(err)
	}
	if err := e.sb.Remove(ctx, "pod-a"); err != nil {
		t.Fatal(err)
	}
	bNet := filepath.Join(e.sdir, "pod-b", "net")
	if err := e.sb.Remove(ctx, "pod-b"); err != nil {
		t.Fatal(err)
	}
	if err := e.net.Detach(ctx, "pod-b", bNet); err != nil {
		t.Fatalf("Detach after the namespace is gone: %v", err)
	}
	// A path that is a plain file (a pin whose mount was lost) does not block the release.
	plain := filepath.Join(t.TempDir(), "net")
	if err := os.WriteFile(plain, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	if err := e.net.Detach(ctx, "pod-a", plain); err != nil {
		t.Fatalf("Detach with a non-namespace path: %v", err)
	}
	for _, uid := range []string{"pod-a", "pod-b"} {
		if err := e.net.Detach(ctx, uid, ""); err != nil {
			t.Fatalf("second Detach(%s): %v", uid, err)
		}
	}

	for _, uid := range []string{"pod-a", "pod-b"} {
		if l, err := netlink.LinkByName(hostVethName(uid)); err == nil {
			t.Errorf("veth %s of %s left on the host", l.Attrs().Name, uid)
		}
	}
	if links, err := netlink.LinkList(); err == nil {
		for _, l := range links {
			if l.Attrs().MasterIndex != 0 {
				if br, _ := netlink.LinkByIndex(l.Attrs().MasterIndex); br != nil && br.Attrs().Name == e.cfg.BridgeName {
					t.Errorf("port %s left on the bridge", l.Attrs().Name)
				}
			}
		}
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mi), e.sdir) {
		t.Errorf("mounts left under %s:\n%s", e.sdir, mi)
	}
	if entries, err := os.ReadDir(e.sdir); err != nil || len(entries) != 0 {
		t.Errorf("sandbox dir holds %v (%v), want nothing", entries, err)
	}
	var st ipamFile
	data, err := os.ReadFile(filepath.Join(e.cfg.StateDir, ipamFileName))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &st); err != nil || len(st.Pods) != 0 {
		t.Errorf("IPAM after Detach = %+v (%v), want no pods", st.Pods, err)
	}
}

func TestSetupAndTeardown(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.net.Setup(ctx); err != nil {
		t.Fatalf("second Setup: %v", err)
	}
	br, err := netlink.LinkByName(e.cfg.BridgeName)
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := netlink.AddrList(br, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	if len(addrs) != 1 || addrs[0].IPNet.String() != e.net.Gateway().String()+"/24" {
		t.Fatalf("bridge addresses %v, want only %s/24", addrs, e.net.Gateway())
	}
	if br.Attrs().OperState != netlink.OperUp && br.Attrs().Flags&net.FlagUp == 0 {
		t.Fatal("bridge is not up")
	}

	if err := e.net.Teardown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := netlink.LinkByName(e.cfg.BridgeName); err == nil {
		t.Fatal("bridge still present after Teardown")
	}
	if err := e.net.Teardown(ctx); err != nil {
		t.Fatalf("second Teardown: %v", err)
	}
	sb, err := e.sb.Ensure(ctx, sandbox.Spec{PodUID: "pod-x", Hostname: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.net.Attach(ctx, "pod-x", sb.NetNS); !errors.Is(err, ErrNoBridge) {
		t.Fatalf("Attach without bridge = %v, want ErrNoBridge", err)
	}
}

func TestSetupRefusesNonBridge(t *testing.T) {
	requireRoot(t)
	cfg := DefaultConfig()
	cfg.BridgeName = "lo"
	cfg.PodCIDR = "10.199.250.0/24"
	cfg.StateDir = t.TempDir()
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.Setup(context.Background()); !errors.Is(err, ErrNotBridge) {
		t.Fatalf("Setup on lo = %v, want ErrNotBridge", err)
	}
	if err := n.Teardown(context.Background()); !errors.Is(err, ErrNotBridge) {
		t.Fatalf("Teardown on lo = %v, want ErrNotBridge", err)
	}
}

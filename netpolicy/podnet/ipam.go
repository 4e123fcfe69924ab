package podnet

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
)

// ErrExhausted is returned by Attach when every address of the pod CIDR is allocated.
var ErrExhausted = errors.New("pod CIDR exhausted")

// ErrCorruptState is returned by New when the IPAM file cannot be read as this version's
// format.
var ErrCorruptState = errors.New("corrupt IPAM state")

// ipamFileName is the file under Config.StateDir that holds the allocations.
const ipamFileName = "ipam.json"

// ipamFileVersion is bumped on any incompatible change of ipamFile.
const ipamFileVersion = 1

// ipamFile is the on-disk form of the allocations.
type ipamFile struct {
	Version int               `json:"version"`
	CIDR    string            `json:"cidr"`
	Last    string            `json:"last,omitempty"` // last address handed out, for next-fit
	Pods    map[string]string `json:"pods"`           // pod UID → address
}

// ipam hands out the host addresses of one IPv4 prefix to pods, keyed by pod UID, and
// writes every change to its file before reporting it. It is not safe for concurrent use:
// the Network serialises calls.
//
// Next-fit allocation (continue after the last address handed out) keeps a just-released
// address unused for as long as possible, so stale connections and ARP entries for a
// deleted pod do not reach a new one.
type ipam struct {
	path  string
	first uint32 // first pod address (gateway + 1)
	end   uint32 // last pod address (broadcast - 1)
	cidr  netip.Prefix
	last  uint32 // last address handed out, 0 if none
	pods  map[string]uint32
	owner map[uint32]string
	log   *slog.Logger
}

// gatewayOf returns the first host address of the prefix.
func gatewayOf(p netip.Prefix) netip.Addr { return p.Addr().Next() }

// loadIPAM reads path if it exists. Allocations that fall outside cidr (the node's pod
// CIDR changed) or collide are dropped with a warning: such pods must be re-attached.
func loadIPAM(path string, cidr netip.Prefix, log *slog.Logger) (*ipam, error) {
	base := u32(cidr.Addr())
	size := uint32(1) << (32 - cidr.Bits())
	a := &ipam{
		path:  path,
		first: base + 2,
		end:   base + size - 2,
		cidr:  cidr,
		pods:  map[string]uint32{},
		owner: map[uint32]string{},
		log:   log,
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return a, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read IPAM state: %w", err)
	}
	var f ipamFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%w: %s: %v (Try: move the file away; running pods keep their addresses until re-attached)", ErrCorruptState, path, err)
	}
	if f.Version != ipamFileVersion {
		return nil, fmt.Errorf("%w: %s: version %d, this build reads %d", ErrCorruptState, path, f.Version, ipamFileVersion)
	}
	if f.CIDR != cidr.String() {
		log.Warn("pod CIDR changed; allocations outside the new CIDR are dropped", "old", f.CIDR, "new", cidr.String())
	}
	uids := make([]string, 0, len(f.Pods))
	for uid := range f.Pods {
		uids = append(uids, uid)
	}
	sort.Strings(uids) // deterministic winner if two pods claim one address
	for _, uid := range uids {
		ip, err := netip.ParseAddr(f.Pods[uid])
		if err != nil || !a.inRange(ip) {
			log.Warn("dropping IPAM allocation", "pod_uid", uid, "ip", f.Pods[uid], "cidr", cidr.String())
			continue
		}
		if other, taken := a.owner[u32(ip)]; taken {
			log.Warn("dropping duplicate IPAM allocation", "pod_uid", uid, "ip", ip.String(), "owner", other)
			continue
		}
		a.pods[uid] = u32(ip)
		a.owner[u32(ip)] = uid
	}
	if last, err := netip.ParseAddr(f.Last); err == nil && a.inRange(last) {
		a.last = u32(last)
	}
	return a, nil
}

// inRange reports whether ip may be given to a pod.
func (a *ipam) inRange(ip netip.Addr) bool {
	if !ip.Is4() {
		return false
	}
	v := u32(ip)
	return v >= a.first && v <= a.end
}

// lookup returns the pod's address if it has one.
func (a *ipam) lookup(uid string) (netip.Addr, bool) {
	v, ok := a.pods[uid]
	return addr(v), ok
}

// allocate returns the pod's address, allocating and persisting one if it has none.
func (a *ipam) allocate(uid string) (netip.Addr, error) {
	if v, ok := a.pods[uid]; ok {
		return addr(v), nil
	}
	n := a.end - a.first + 1
	start := a.last + 1
	if start < a.first || start > a.end {
		start = a.first
	}
	for i := uint32(0); i < n; i++ {
		v := a.first + (start-a.first+i)%n
		if _, taken := a.owner[v]; taken {
			continue
		}
		prevLast := a.last
		a.pods[uid], a.owner[v], a.last = v, uid, v
		if err := a.save(); err != nil {
			delete(a.pods, uid)
			delete(a.owner, v)
			a.last = prevLast
			return netip.Addr{}, err
		}
		return addr(v), nil
	}
	return netip.Addr{}, fmt.Errorf("allocate address for pod %s in %s: %w", uid, a.cidr, ErrExhausted)
}

// release frees the pod's address and persists the change. Releasing a pod without an
// address is not an error.
func (a *ipam) release(uid string) error {
	v, ok := a.pods[uid]
	if !ok {
		return nil
	}
	delete(a.pods, uid)
	delete(a.owner, v)
	if err := a.save(); err != nil {
		a.pods[uid], a.owner[v] = v, uid
		return err
	}
	return nil
}

// save writes the state atomically: a crash leaves either the old or the new file.
func (a *ipam) save() error {
	f := ipamFile{Version: ipamFileVersion, CIDR: a.cidr.String(), Pods: make(map[string]string, len(a.pods))}
	if a.last != 0 {
		f.Last = addr(a.last).String()
	}
	for uid, v := range a.pods {
		f.Pods[uid] = addr(v).String()
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encode IPAM state: %w", err)
	}
	if err := writeFileAtomic(a.path, append(data, '\n')); err != nil {
		return fmt.Errorf("save IPAM state: %w", err)
	}
	return nil
}

// writeFileAtomic replaces path with data via a synced temporary file and a rename, then
// syncs the directory so the rename itself survives a power cut.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func u32(ip netip.Addr) uint32 {
	b := ip.As4()
	return binary.BigEndian.Uint32(b[:])
}

func addr(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

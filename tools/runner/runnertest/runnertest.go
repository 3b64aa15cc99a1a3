// Package runnertest helps tests look at a run's processes: it tags every
// child with a unique environment variable, finds the processes that carry
// the tag (to prove a run leaves nothing behind), the TCP sockets they
// listen on and the UDP sockets they hold. On Linux it reads /proc;
// elsewhere (macOS, the BSDs) it asks ps and lsof (ps.go), so that a check
// that nothing is left behind cannot pass there for having looked nowhere.
package runnertest

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// usePS is whether processes and sockets are found with ps and lsof
// instead of /proc; psArgs are ps's options that print every process's
// "pid stat command env..." with the environment.
var (
	usePS  = runtime.GOOS != "linux"
	psArgs = []string{"-A", "-E", "-ww", "-o", "pid=,stat=,command="}
)

// MarkerVar is the environment variable that tags a test run's processes.
const MarkerVar = "DAPRUN_TEST_MARKER"

// NewMarker returns a fresh "NAME=value" to put into a run's environment.
func NewMarker() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return MarkerVar + "=" + hex.EncodeToString(b[:])
}

// Tagged returns "pid: command line" for every live process (zombies aside)
// whose environment holds marker, except the calling process. Children inherit
// the environment, so this finds grandchildren too. It panics where neither
// /proc nor ps can be read: a test must not take that for "none".
func Tagged(marker string) []string {
	var found []string
	ps, err := tagged(marker)
	if err != nil {
		panic(err)
	}
	for _, p := range ps {
		found = append(found, strconv.Itoa(p.pid)+": "+p.cmdline)
	}
	return found
}

type process struct {
	pid     int
	cmdline string
}

func tagged(marker string) ([]process, error) {
	if usePS {
		return taggedPS(marker)
	}
	var found []process
	self := os.Getpid()
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil || pid == self {
			continue
		}
		env, err := os.ReadFile(filepath.Join(d, "environ"))
		if err != nil || !bytes.Contains(env, []byte(marker+"\x00")) {
			continue
		}
		if stat, err := os.ReadFile(filepath.Join(d, "stat")); err == nil && zombie(stat) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join(d, "cmdline"))
		found = append(found, process{pid, strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " "))})
	}
	if len(dirs) == 0 {
		return nil, errors.New("runnertest: no processes in /proc")
	}
	return found, nil
}

// Listener is a TCP socket in the LISTEN state and the process holding it.
type Listener struct {
	PID     int
	Command string // the process's command line
	Addr    netip.AddrPort
}

func (l Listener) String() string {
	return fmt.Sprintf("%s (pid %d: %s)", l.Addr, l.PID, l.Command)
}

// Listening returns every TCP socket (IPv4 and IPv6) in the LISTEN state held
// by a process Tagged finds, as the kernel reports it: the sockets among each
// process's open files (/proc/PID/fd), looked up in /proc/net/tcp and tcp6.
// Whatever a process was told by its flags, this is where it listens.
func Listening(marker string) ([]Listener, error) {
	return held(marker, "tcp", "0A")
}

// UDP returns every UDP socket (IPv4 and IPv6) held by a process Tagged finds,
// with its local address, from /proc/net/udp and udp6: an mDNS responder or
// browser shows up on port 5353.
func UDP(marker string) ([]Listener, error) {
	return held(marker, "udp", "")
}

// held returns the sockets of protocol proto ("tcp", "udp") in state (hex, as
// the kernel prints it; "" for any) held by the processes Tagged finds.
func held(marker, proto, state string) ([]Listener, error) {
	procs, err := tagged(marker)
	if err != nil {
		return nil, err
	}
	if usePS {
		return heldLsof(procs, proto, state != "")
	}
	sockets := map[string]netip.AddrPort{} // socket inode -> local address
	for _, table := range []string{"/proc/net/" + proto, "/proc/net/" + proto + "6"} {
		if err := readSockets(table, state, sockets); err != nil {
			return nil, err
		}
	}
	var out []Listener
	for _, p := range procs {
		fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.pid))
		if err != nil {
			continue // exited meanwhile
		}
		for _, fd := range fds {
			link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", p.pid, fd.Name()))
			if err != nil {
				continue
			}
			inode, ok := strings.CutPrefix(link, "socket:[")
			if !ok {
				continue
			}
			if addr, ok := sockets[strings.TrimSuffix(inode, "]")]; ok {
				out = append(out, Listener{PID: p.pid, Command: p.cmdline, Addr: addr})
			}
		}
	}
	return out, nil
}

// readSockets adds the sockets in state (any for "") of a /proc/net/tcp{,6}
// or udp{,6} table to m. A line: "sl local_address rem_address st ... inode
// ...", the address as hex IP (32-bit words in host byte order) and hex port;
// TCP state 0A is LISTEN.
func readSockets(table, state string, m map[string]netip.AddrPort) error {
	b, err := os.ReadFile(table)
	if err != nil {
		if os.IsNotExist(err) && strings.HasSuffix(table, "6") {
			return nil // no IPv6 on this machine
		}
		return err
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) < 10 || (state != "" && f[3] != state) {
			continue
		}
		addr, err := parseProcAddr(f[1])
		if err != nil {
			return fmt.Errorf("%s: %q: %w", table, f[1], err)
		}
		m[f[9]] = addr
	}
	return nil
}

func parseProcAddr(s string) (netip.AddrPort, error) {
	hexIP, hexPort, ok := strings.Cut(s, ":")
	if !ok || (len(hexIP) != 8 && len(hexIP) != 32) {
		return netip.AddrPort{}, errors.New("not IP:port in hex")
	}
	// The kernel prints each 32-bit word of the address as a number in the
	// host's byte order.
	raw := make([]byte, len(hexIP)/2)
	for w := 0; w < len(hexIP); w += 8 {
		v, err := strconv.ParseUint(hexIP[w:w+8], 16, 32)
		if err != nil {
			return netip.AddrPort{}, err
		}
		binary.NativeEndian.PutUint32(raw[w/2:], uint32(v))
	}
	port, err := strconv.ParseUint(hexPort, 16, 16)
	if err != nil {
		return netip.AddrPort{}, err
	}
	addr, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(addr.Unmap(), uint16(port)), nil
}

// zombie reads the state field of /proc/<pid>/stat: "pid (comm) S ...".
func zombie(stat []byte) bool {
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

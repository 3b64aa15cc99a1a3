package runnertest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// taggedPS is tagged without /proc: ps prints every process with its
// environment (psArgs), and again without it for the command lines.
func taggedPS(marker string) ([]process, error) {
	withEnv, err := exec.Command("ps", psArgs...).Output()
	if err != nil {
		return nil, fmt.Errorf("runnertest: ps %s: %w", strings.Join(psArgs, " "), err)
	}
	self := os.Getpid()
	var pids []int
	sc := bufio.NewScanner(bytes.NewReader(withEnv))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 {
			continue
		}
		pid, err := strconv.Atoi(f[0])
		if err != nil || pid == self || strings.HasPrefix(f[1], "Z") {
			continue
		}
		for _, w := range f[2:] {
			if w == marker {
				pids = append(pids, pid)
				break
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	var found []process
	for _, pid := range pids {
		cmd, err := exec.Command("ps", "-ww", "-o", "command=", "-p", strconv.Itoa(pid)).Output()
		if err != nil {
			continue // exited meanwhile
		}
		found = append(found, process{pid, strings.TrimSpace(string(cmd))})
	}
	return found, nil
}

// heldLsof is held without /proc: lsof lists the sockets of procs (TCP in
// LISTEN when listening, else UDP), one field per line: "p<pid>",
// "t<IPv4|IPv6>", "n<address:port>", the address "*" for any.
func heldLsof(procs []process, proto string, listening bool) ([]Listener, error) {
	if len(procs) == 0 {
		return nil, nil
	}
	pids := make([]string, len(procs))
	cmdline := map[int]string{}
	for i, p := range procs {
		pids[i] = strconv.Itoa(p.pid)
		cmdline[p.pid] = p.cmdline
	}
	args := []string{"-nP", "-w", "-a", "-p", strings.Join(pids, ","), "-F", "ptn"}
	if listening {
		args = append(args, "-iTCP", "-sTCP:LISTEN")
	} else {
		args = append(args, "-i"+strings.ToUpper(proto))
	}
	out, err := exec.Command("lsof", args...).Output()
	var exit *exec.ExitError
	if errors.As(err, &exit) && len(out) == 0 {
		return nil, nil // lsof exits 1 when it finds nothing
	}
	if err != nil {
		return nil, fmt.Errorf("runnertest: lsof %s: %w", strings.Join(args, " "), err)
	}
	var (
		found []Listener
		pid   int
		v6    bool
	)
	for _, line := range strings.Split(string(out), "\n") {
		if line == "" {
			continue
		}
		switch v := line[1:]; line[0] {
		case 'p':
			pid, _ = strconv.Atoi(v)
		case 't':
			v6 = v == "IPv6"
		case 'n':
			addr, err := parseLsofAddr(v, v6)
			if err != nil {
				return nil, fmt.Errorf("runnertest: lsof address %q: %w", v, err)
			}
			found = append(found, Listener{PID: pid, Command: cmdline[pid], Addr: addr})
		}
	}
	return found, nil
}

// parseLsofAddr reads lsof's "127.0.0.1:8080", "[::1]:8080" or "*:8080"
// (any address; v6 says of which family). A connected UDP socket's name
// has "->remote" after it.
func parseLsofAddr(s string, v6 bool) (netip.AddrPort, error) {
	s, _, _ = strings.Cut(s, "->")
	if rest, ok := strings.CutPrefix(s, "*:"); ok {
		port, err := strconv.ParseUint(rest, 10, 16)
		if err != nil {
			return netip.AddrPort{}, err
		}
		unspec := netip.IPv4Unspecified()
		if v6 {
			unspec = netip.IPv6Unspecified()
		}
		return netip.AddrPortFrom(unspec, uint16(port)), nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

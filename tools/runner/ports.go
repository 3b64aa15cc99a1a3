package runner

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// The ports the runner picks lie below the kernel's ephemeral range, the
// one outgoing connections take their local ports from: a port of the run
// that a process gives up for a moment (an instance restarting after a
// crash or in a rolling restart) could otherwise be taken by any outgoing
// connection meanwhile (to Redis, between sidecars), and the process could
// not listen there again while that connection lasts. Seen: a daprd's
// restart failed with "bind: address already in use" under load.
const lowestPort = 20000

// ephemeralStart is where the kernel's ephemeral ports begin: Linux's
// ip_local_port_range, 49152 elsewhere (macOS, the BSDs, IANA's range).
func ephemeralStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 49152
	}
	if f := strings.Fields(string(b)); len(f) == 2 {
		if n, err := strconv.Atoi(f[0]); err == nil {
			return n
		}
	}
	return 49152
}

// listenFree listens on a free loopback port below the ephemeral range,
// tried at random, or on one the kernel picks when none of those is free.
func listenFree() (net.Listener, error) {
	if top := ephemeralStart(); top > lowestPort+100 {
		for range 50 {
			port := lowestPort + rand.IntN(top-lowestPort)
			if l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
				return l, nil
			}
		}
	}
	return net.Listen("tcp", "127.0.0.1:0")
}

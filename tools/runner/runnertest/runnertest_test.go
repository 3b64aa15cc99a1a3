package runnertest_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/daprshop/suite/tools/runner/runnertest"
)

// TestMain lets the test binary play a tagged child that holds a TCP listener
// and a UDP socket (RUNNERTEST_CHILD set) until its stdin closes.
func TestMain(m *testing.M) {
	if os.Getenv("RUNNERTEST_CHILD") == "" {
		os.Exit(m.Run())
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	u, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	fmt.Println(l.Addr().(*net.TCPAddr).Port, u.LocalAddr().(*net.UDPAddr).Port)
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	os.Exit(0)
}

// TestSocketsOfTaggedProcesses: Listening finds the TCP listener and UDP the
// UDP socket of a tagged child, each only its own kind, and neither finds
// anything of a child without the tag; Tagged finds the child. Both ways:
// /proc (Linux) and ps with lsof (macOS, the BSDs).
func TestSocketsOfTaggedProcesses(t *testing.T) {
	t.Run("proc", func(t *testing.T) {
		if runtime.GOOS != "linux" {
			t.Skip("/proc: Linux only")
		}
		checkTaggedChild(t)
	})
	t.Run("ps and lsof", func(t *testing.T) {
		for _, tool := range []string{"ps", "lsof"} {
			if _, err := exec.LookPath(tool); err != nil {
				t.Skipf("%s is not installed (Debian: apt-get install %s)", tool, map[string]string{"ps": "procps", "lsof": "lsof"}[tool])
			}
		}
		runnertest.WithPS(func() { checkTaggedChild(t) })
	})
}

// checkTaggedChild starts a tagged child holding a TCP listener and a UDP
// socket and checks what the package finds of it.
func checkTaggedChild(t *testing.T) {
	marker := runnertest.NewMarker()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "RUNNERTEST_CHILD=1", marker)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); _ = cmd.Wait() }()
	var tcpPort, udpPort uint16
	if _, err := fmt.Fscan(stdout, &tcpPort, &udpPort); err != nil {
		t.Fatal(err)
	}
	if got := runnertest.Tagged(marker); len(got) != 1 || !strings.HasPrefix(got[0], fmt.Sprintf("%d: %s", cmd.Process.Pid, os.Args[0])) {
		t.Errorf("Tagged = %q, want the child %d (%s) alone", got, cmd.Process.Pid, os.Args[0])
	}
	if got := runnertest.Tagged(runnertest.NewMarker()); len(got) > 0 {
		t.Errorf("Tagged of a marker nobody has: %q", got)
	}

	tcp, err := runnertest.Listening(marker)
	if err != nil {
		t.Fatal(err)
	}
	udp, err := runnertest.UDP(marker)
	if err != nil {
		t.Fatal(err)
	}
	has := func(ls []runnertest.Listener, port uint16) bool {
		for _, l := range ls {
			if l.Addr.Port() == port && l.PID == cmd.Process.Pid && l.Addr.Addr().IsLoopback() {
				return true
			}
		}
		return false
	}
	if !has(tcp, tcpPort) || has(tcp, udpPort) {
		t.Errorf("TCP listeners %v: want the child's %d only", tcp, tcpPort)
	}
	if !has(udp, udpPort) || has(udp, tcpPort) {
		t.Errorf("UDP sockets %v: want the child's %d only", udp, udpPort)
	}
	if ls, _ := runnertest.UDP(runnertest.NewMarker()); len(ls) > 0 {
		t.Errorf("UDP sockets of a marker nobody has: %v", ls)
	}
	stdin.Close()
	_ = cmd.Wait()
	if got := runnertest.Tagged(marker); len(got) > 0 {
		t.Errorf("Tagged after the child exited: %q", got)
	}
}

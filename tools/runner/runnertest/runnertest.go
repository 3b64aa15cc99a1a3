// Package runnertest helps tests prove that a run leaves nothing behind: it
// tags every child with a unique environment variable and finds processes that
// still carry the tag.
package runnertest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
// the environment, so this finds grandchildren too. Linux only (/proc).
func Tagged(marker string) []string {
	var found []string
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
		found = append(found, strconv.Itoa(pid)+": "+strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " ")))
	}
	return found
}

// zombie reads the state field of /proc/<pid>/stat: "pid (comm) S ...".
func zombie(stat []byte) bool {
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

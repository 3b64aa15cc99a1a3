package main

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// machineCPU is the CPU time every process of the machine has spent
// (/proc/stat: all but idle and iowait), seconds; ok is false where there
// is no /proc/stat (macOS).
func machineCPU() (secs float64, ok bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	return parseProcStat(string(b))
}

// clockTicks is USER_HZ, the unit of /proc/stat: 100 on every Linux the
// suite runs on.
const clockTicks = 100

func parseProcStat(s string) (float64, bool) {
	line, _, _ := strings.Cut(s, "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, false
	}
	total := 0.0
	for i, v := range f[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		if i >= 8 { // guest time is counted in user already
			break
		}
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, false
		}
		total += n
	}
	return total / clockTicks, true
}

// busy is how many cores the machine and the suite kept busy over a
// window, and what that leaves for the rest.
type busy struct {
	Machine float64 `json:"machine_cores"`
	Suite   float64 `json:"suite_cores"`
	// Seconds is the window's length.
	Seconds float64 `json:"seconds"`
}

// busyOver works out busy from the machine's and the suite's CPU seconds
// at the start and end of a window of length d.
func busyOver(machine0, machine1 float64, suite0, suite1 map[string]float64, d time.Duration) busy {
	s := 0.0
	for k, v := range suite1 {
		s += v - suite0[k]
	}
	return busy{Machine: (machine1 - machine0) / d.Seconds(), Suite: s / d.Seconds(), Seconds: d.Seconds()}
}

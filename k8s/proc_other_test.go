//go:build !linux

package k8s

import "syscall"

// childAttr puts a server of the test in a process group of its own (no
// parent-death signal outside Linux: TestMain stops the servers).
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

//go:build linux

package daprdtest

import "syscall"

// childAttr makes the kernel kill daprd when the test process dies outright.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

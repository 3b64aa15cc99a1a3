//go:build !linux

package daprdtest

import "syscall"

// childAttr: macOS has no parent-death signal; the test's cleanup stops
// daprd, a test process killed outright leaves it running.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{}
}

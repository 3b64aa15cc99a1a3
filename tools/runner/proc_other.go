//go:build !linux

package runner

import "syscall"

// ChildAttr is how the runner starts every child: in a process group of its
// own (Stop, Kill and the restarts signal the group, grandchildren
// included). macOS and the BSDs have no parent-death signal: there a
// runner killed outright (kill -9) leaves its children running; Ctrl-C and
// SIGTERM still stop every one.
func ChildAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

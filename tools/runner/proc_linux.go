//go:build linux

package runner

import "syscall"

// ChildAttr is how the runner starts every child: in a process group of its
// own (Stop, Kill and the restarts signal the group, grandchildren
// included), and killed by the kernel if the runner itself is killed
// outright (Linux's parent-death signal), so that even a kill -9 of the
// runner leaves nothing behind.
func ChildAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

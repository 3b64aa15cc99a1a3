//go:build linux

package k8s

import "syscall"

// childAttr puts a server of the test in a process group of its own, killed
// by the kernel if the test binary dies first.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

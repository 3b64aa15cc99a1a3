package runnertest

// WithPS runs f with processes and sockets found by ps and lsof, as on
// macOS, with ps options that procps (Linux) understands too, so that the
// path macOS takes is tested here.
func WithPS(f func()) {
	saved, savedArgs := usePS, psArgs
	usePS, psArgs = true, []string{"axeww", "-o", "pid=,stat=,command="}
	defer func() { usePS, psArgs = saved, savedArgs }()
	f()
}

package runner

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"
)

// Component is the part of a Dapr Component resource the runner (and the
// bench, for the pub/sub's topics) reads.
type Component struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		Type     string `yaml:"type"`
		Metadata []struct {
			Name  string `yaml:"name"`
			Value string `yaml:"value"`
		} `yaml:"metadata"`
	} `yaml:"spec"`
}

// RedisHosts returns, for every Redis address named in the apps' components
// (redisHost metadata), the names of the components that use it.
func RedisHosts(apps []App) (map[string][]string, error) {
	hosts := map[string][]string{}
	seen := map[string]bool{}
	for _, a := range apps {
		for _, dir := range a.ResourcesPaths {
			files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
			for _, f := range files {
				if seen[f] {
					continue
				}
				seen[f] = true
				comps, err := ReadComponents(f)
				if err != nil {
					return nil, err
				}
				for _, c := range comps {
					for _, m := range c.Spec.Metadata {
						if m.Name == "redisHost" && m.Value != "" {
							hosts[m.Value] = append(hosts[m.Value], c.Metadata.Name)
						}
					}
				}
			}
		}
	}
	for h := range hosts {
		sort.Strings(hosts[h])
	}
	return hosts, nil
}

// ReadComponents returns the Component resources of a YAML file of one or
// more documents; other kinds are left out.
func ReadComponents(path string) ([]Component, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Component
	dec := yaml.NewDecoder(f)
	for {
		var c Component
		if err := dec.Decode(&c); err != nil {
			if err.Error() == "EOF" {
				return out, nil
			}
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if c.Kind == "Component" {
			out = append(out, c)
		}
	}
}

// PingRedis reports whether a Redis server answers PING at addr. A server that
// demands a password (-NOAUTH) still counts as answering.
func PingRedis(addr string, timeout time.Duration) error {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("no reply to PING: %w", err)
	}
	if strings.HasPrefix(line, "+PONG") || strings.HasPrefix(line, "-NOAUTH") {
		return nil
	}
	return fmt.Errorf("unexpected reply to PING: %q (is this a Redis server?)", strings.TrimSpace(line))
}

// RewriteRedis copies the resources paths of apps into dir, with every
// redisHost value "from" replaced by "to", and points the apps at the copies.
// It lets a run use a private Redis without touching the profile's files.
func RewriteRedis(apps []App, from, to, dir string) error {
	done := map[string]string{}
	for i := range apps {
		for j, src := range apps[i].ResourcesPaths {
			if dst, ok := done[src]; ok {
				apps[i].ResourcesPaths[j] = dst
				continue
			}
			dst := filepath.Join(dir, fmt.Sprintf("resources-%d", len(done)))
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return err
			}
			entries, err := os.ReadDir(src)
			if err != nil {
				return err
			}
			for _, e := range entries {
				if e.IsDir() {
					continue
				}
				b, err := os.ReadFile(filepath.Join(src, e.Name()))
				if err != nil {
					return err
				}
				if strings.HasSuffix(e.Name(), ".yaml") || strings.HasSuffix(e.Name(), ".yml") {
					b = []byte(strings.ReplaceAll(string(b), "value: "+from, "value: "+to))
				}
				if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
					return err
				}
			}
			done[src] = dst
			apps[i].ResourcesPaths[j] = dst
		}
	}
	return nil
}

// Redis is a private redis-server: in memory only, on a loopback port, its
// files (the log, rewritten components) in Dir.
type Redis struct {
	// Addr is its host:port.
	Addr string
	// Dir is its directory, removed by Stop.
	Dir     string
	cmd     *exec.Cmd
	exited  chan struct{} // closed once redis-server has exited; waitErr is then set
	waitErr error
}

// StartRedis runs bin (a redis-server) on 127.0.0.1:port with nothing saved
// to disk, and waits until it answers PING. A server that exits or does not
// answer within 10 s is an error that quotes the last lines it logged.
func StartRedis(bin string, port int) (*Redis, error) {
	dir, err := os.MkdirTemp("", "daprun-redis-")
	if err != nil {
		return nil, err
	}
	r := &Redis{Addr: fmt.Sprintf("127.0.0.1:%d", port), Dir: dir, exited: make(chan struct{})}
	logFile := filepath.Join(dir, "redis.log")
	r.cmd = exec.Command(bin, "--bind", "127.0.0.1", "--port", fmt.Sprint(port), "--save", "", "--appendonly", "no", "--dir", dir, "--logfile", logFile)
	r.cmd.SysProcAttr = ChildAttr()
	if err := r.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("starting redis-server: %w", err)
	}
	go func() { r.waitErr = r.cmd.Wait(); close(r.exited) }()
	// What redis-server said, for a start that fails.
	said := func() string {
		b, _ := os.ReadFile(logFile)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		return strings.Join(lines[max(0, len(lines)-5):], "\n")
	}
	deadline := time.Now().Add(10 * time.Second)
	for PingRedis(r.Addr, time.Second) != nil {
		select {
		case <-r.exited:
			err := fmt.Errorf("private redis-server at %s exited (%v); its last lines:\n%s", r.Addr, r.waitErr, said())
			r.Stop()
			return nil, err
		default:
		}
		if time.Now().After(deadline) {
			err := fmt.Errorf("private redis-server at %s did not answer within 10s; its last lines:\n%s", r.Addr, said())
			r.Stop()
			return nil, err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return r, nil
}

// Stop kills the server (its process group) and removes Dir.
func (r *Redis) Stop() {
	_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
	<-r.exited
	os.RemoveAll(r.Dir)
}

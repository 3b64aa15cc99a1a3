package runner_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/daprshop/suite/tools/runner"
)

func TestRedisHostsAndRewrite(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"res/state.yaml": `apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: orders-store}
spec:
  type: state.redis
  version: v1
  metadata:
    - name: redisHost
      value: 127.0.0.1:6379
`,
		"res/pubsub.yaml": `apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: events}
spec:
  type: pubsub.redis
  version: v1
  metadata:
    - {name: redisHost, value: 127.0.0.1:6379}
---
apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata: {name: r}
`,
		"res/notes.txt": "value: 127.0.0.1:6379",
	})
	apps := []runner.App{{ID: "a", ResourcesPaths: []string{filepath.Join(dir, "res")}}, {ID: "b", ResourcesPaths: []string{filepath.Join(dir, "res")}}}
	hosts, err := runner.RedisHosts(apps)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(hosts["127.0.0.1:6379"], ","); got != "events,orders-store" || len(hosts) != 1 {
		t.Fatalf("hosts = %v", hosts)
	}
	out := t.TempDir()
	if err := runner.RewriteRedis(apps, "127.0.0.1:6379", "127.0.0.1:7777", out); err != nil {
		t.Fatal(err)
	}
	if apps[0].ResourcesPaths[0] != apps[1].ResourcesPaths[0] || !strings.HasPrefix(apps[0].ResourcesPaths[0], out) {
		t.Fatalf("paths = %v %v", apps[0].ResourcesPaths, apps[1].ResourcesPaths)
	}
	hosts, _ = runner.RedisHosts(apps)
	if len(hosts["127.0.0.1:7777"]) != 2 {
		t.Fatalf("after rewrite hosts = %v", hosts)
	}
	notes, _ := os.ReadFile(filepath.Join(apps[0].ResourcesPaths[0], "notes.txt"))
	if string(notes) != "value: 127.0.0.1:6379" {
		t.Fatalf("non-YAML file rewritten: %s", notes)
	}
	orig, _ := os.ReadFile(filepath.Join(dir, "res/state.yaml"))
	if !strings.Contains(string(orig), "6379") {
		t.Fatal("original file changed")
	}
}

func TestPingRedis(t *testing.T) {
	// Something that is not Redis.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
			c.Close()
		}
	}()
	defer l.Close()
	if err := runner.PingRedis(l.Addr().String(), time.Second); err == nil || !strings.Contains(err.Error(), "Redis") {
		t.Fatalf("non-Redis server: err = %v", err)
	}
	port, _ := runner.FreePort()
	if err := runner.PingRedis(fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
		t.Fatal("closed port answered")
	}
	if os.Getenv("REDIS_ADDR") != "" {
		if err := runner.PingRedis(os.Getenv("REDIS_ADDR"), time.Second); err != nil {
			t.Fatalf("the machine's Redis: %v", err)
		}
	}
}

package e2e

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/daprshop/suite/tools/bench"
)

// TestBenchFloorSmoke runs the benchmark harness's sidecar floor (a no-op
// app behind zero, one and two real daprd hops) for a moment, so that
// `make bench` cannot rot. It asserts that every request got through, not
// how fast: the figures belong in docs/performance.md.
func TestBenchFloorSmoke(t *testing.T) {
	if env.profile != "redis" {
		t.Skip("the floor does not depend on the profile: measured once")
	}
	f, err := bench.StartFloor(context.Background(), daprdPath(), sentryPath(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	direct, one, two := f.Measure(context.Background(), 50, time.Second)
	for _, r := range []bench.Result{direct, one, two} {
		if r.Sent != 50 || r.Errors != 0 || r.Dropped != 0 {
			t.Errorf("%s: %+v", r.Name, r)
		}
	}
	t.Logf("floor p50: direct %.2f ms, 1 hop %.2f ms, 2 hops %.2f ms", direct.P50, one.P50, two.P50)
}

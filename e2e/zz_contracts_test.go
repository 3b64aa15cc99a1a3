package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestZContracts runs last (go runs tests in the order of their files, and
// no e2e test is parallel): every response and event seen by the other tests
// matched the contracts, and every service's document was exercised.
func TestZContracts(t *testing.T) {
	time.Sleep(2 * time.Second) // let the outbox deliver the last events
	for _, ev := range env.probe.all() {
		env.spec.checkEvent(ev)
	}
	env.spec.mu.Lock()
	defer env.spec.mu.Unlock()
	for _, f := range env.spec.failures {
		t.Error(f)
	}
	apps := map[string]int{}
	for k, n := range env.spec.checked {
		apps[strings.Fields(k)[0]] += n
	}
	for app := range env.spec.routers {
		// The fault pass calls only some services; the profiles call all.
		if apps[app] == 0 && env.profile != faultsPass {
			t.Errorf("no response of %s was checked against its OpenAPI document", app)
		}
	}
	t.Logf("checked %d distinct app/route/status combinations against the OpenAPI documents", len(env.spec.checked))
}

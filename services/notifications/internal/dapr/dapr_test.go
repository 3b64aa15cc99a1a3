package dapr_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/daprshop/suite/lib/sidecar/sidecartest"
	"github.com/daprshop/suite/services/notifications/internal/dapr"
	"github.com/daprshop/suite/services/notifications/internal/notifications"
)

func ids(t *testing.T, s *dapr.Store, user string) []string {
	t.Helper()
	ns, err := s.ListByUser(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range ns {
		out = append(out, n.ID)
	}
	return out
}

func TestAddOncePerEventAndNewestFirst(t *testing.T) {
	ctx := context.Background()
	s := &dapr.Store{Client: &sidecartest.State{}, Name: "st", MaxPerUser: 2}
	for _, id := range []string{"e1", "e2", "e2", "e3"} {
		if _, err := s.Add(ctx, notifications.Notification{ID: id, UserID: "usr_1"}); err != nil {
			t.Fatal(err)
		}
	}
	if got := ids(t, s, "usr_1"); !slices.Equal(got, []string{"e3", "e2"}) {
		t.Fatalf("listed %v, want e3, e2: once each, newest first, at most 2", got)
	}
	if created, _ := s.Add(ctx, notifications.Notification{ID: "e3", UserID: "usr_1"}); created {
		t.Fatal("a second delivery reported as the first")
	}
}

func TestRedeliveryFinishesAHalfDoneAdd(t *testing.T) {
	ctx := context.Background()
	st := &sidecartest.State{FailSaves: "user:"}
	s := &dapr.Store{Client: st, Name: "st", MaxPerUser: 10}
	if _, err := s.Add(ctx, notifications.Notification{ID: "e1", UserID: "usr_1"}); err == nil {
		t.Fatal("the list write failed, yet Add reported success")
	}
	st.FailSaves = ""
	// The redelivery names another user: the first record decides.
	created, err := s.Add(ctx, notifications.Notification{ID: "e1", UserID: "usr_2"})
	if err != nil || created {
		t.Fatalf("redelivery: created %v err %v", created, err)
	}
	if got := ids(t, s, "usr_1"); !slices.Equal(got, []string{"e1"}) {
		t.Fatalf("usr_1 lists %v after the redelivery, want e1", got)
	}
	if got := ids(t, s, "usr_2"); len(got) != 0 {
		t.Fatalf("usr_2 lists %v: a redelivery's payload overrode the record", got)
	}
}

// TestAdditionsToOneListAreWrittenTogether: a burst of events about one
// user, delivered at once, ends with every ID in the list once, in far
// fewer list writes than events (the writes are grouped), and none lost a
// race (one writer per user in a replica).
func TestAdditionsToOneListAreWrittenTogether(t *testing.T) {
	var (
		mu     sync.Mutex
		writes int
	)
	st := &sidecartest.State{Hook: func(op, key string) {
		if op == "save" && key == "user:usr_1" {
			mu.Lock()
			writes++
			mu.Unlock()
			time.Sleep(2 * time.Millisecond) // a store's round trip
		}
	}}
	s := &dapr.Store{Client: st, Name: "st", MaxPerUser: 1000}
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Add(context.Background(), notifications.Notification{ID: fmt.Sprintf("e%d", i), UserID: "usr_1"})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got := ids(t, s, "usr_1")
	slices.Sort(got)
	if len(got) != n || len(slices.Compact(got)) != n {
		t.Fatalf("listed %d IDs (%d distinct), want %d", len(got), len(slices.Compact(got)), n)
	}
	if writes > n/4 {
		t.Fatalf("%d list writes for %d additions made at once: not grouped", writes, n)
	}
	t.Logf("%d additions in %d list writes", n, writes)
}

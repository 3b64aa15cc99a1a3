package dapr_test

import (
	"context"
	"slices"
	"testing"

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

package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

func TestMemoryTablePairsFiguresByProcess(t *testing.T) {
	got := memoryTable(
		[]memoryFigure{{"orders", 21.04}},
		[]memoryFigure{{"orders", 40.26}, {"orders daprd", 130}},
		50, 200)
	for _, want := range []string{
		"after the journey at 50/s | after the run (the journey at 200/s last)",
		"| orders | 21.0 MB | 40.3 MB |",
		"| orders daprd | - | 130.0 MB |", // no figure below saturation: said, not invented
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
}

// TestPlacedToConfirmedTimesEachOrder: against a gateway whose orders turn
// confirmed on their third read, every order is timed from its 201 across
// the reads; an order that stays paid past the deadline and a cancelled one
// are errors, not figures.
func TestPlacedToConfirmedTimesEachOrder(t *testing.T) {
	var mu sync.Mutex
	reads := map[string]int{}
	final := "confirmed"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case r.Method == "POST" && r.URL.Path == "/api/orders":
			id := fmt.Sprintf("ord_%d", len(reads))
			reads[id] = 0
			w.WriteHeader(201)
			fmt.Fprintf(w, `{"id":%q,"status":"paid"}`, id)
		case r.Method == "GET" && strings.HasPrefix(r.URL.Path, "/api/orders/"):
			id := strings.TrimPrefix(r.URL.Path, "/api/orders/")
			reads[id]++
			status := "paid"
			if reads[id] >= 3 {
				status = final
			}
			fmt.Fprintf(w, `{"id":%q,"status":%q}`, id, status)
		default:
			w.WriteHeader(404)
		}
	}))
	defer srv.Close()
	s := shop{gateway: srv.URL, tokens: []string{"t"}, ids: []string{"prd_1"}}
	f, err := placedToConfirmed(context.Background(), s, 5)
	if err != nil {
		t.Fatal(err)
	}
	if f.N != 5 || len(f.Ms) != 5 || f.P50 < 3*float64(pollEvery.Milliseconds()) || f.Max < f.P50 {
		t.Errorf("figures %+v: want 5 orders, each at least 3 polls (%s) long", f, 3*pollEvery)
	}
	if !strings.Contains(confirmTable(f), "5 orders one after another") {
		t.Errorf("table:\n%s", confirmTable(f))
	}
	mu.Lock()
	final = "cancelled"
	mu.Unlock()
	if _, err := placedToConfirmed(context.Background(), s, 1); err == nil || !strings.Contains(err.Error(), "cancelled") {
		t.Errorf("a cancelled order: err %v", err)
	}
}

package main

import (
	"strings"
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

package runner

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// closeRecorder is a reader that remembers being closed.
type closeRecorder struct {
	io.Reader
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }

func TestCopyKeepsReadingPastAHugeLine(t *testing.T) {
	var out bytes.Buffer
	c := &console{out: &out, width: 6}
	huge := strings.Repeat("x", 2<<20) // 2 MiB without a newline
	r := &closeRecorder{Reader: strings.NewReader("first\n" + huge + "\nafter the huge line\n")}
	tl := newTail(3)
	c.copy(r, "app   | ", tl, nil)
	got := out.String()
	if !strings.HasPrefix(got, "app   | first\n") || !strings.HasSuffix(got, "app   | after the huge line\n") {
		t.Fatalf("lines lost around a huge one: starts %q, ends %q", got[:min(len(got), 40)], got[max(0, len(got)-40):])
	}
	if n := strings.Count(got, "x"); n != len(huge) {
		t.Fatalf("%d of %d bytes of the huge line forwarded", n, len(huge))
	}
	if !r.closed {
		t.Fatal("the pipe was not closed at its end")
	}
}

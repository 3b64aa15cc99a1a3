package runner

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"sync"
)

// console serialises the output of every child onto one writer, one whole
// line at a time, each line prefixed with its app and source.
type console struct {
	mu    sync.Mutex
	out   io.Writer
	color bool
	width int
}

// newConsole returns a console whose prefixes fit every one of names.
func newConsole(out io.Writer, color bool, names []string) *console {
	w := len("runner")
	for _, n := range names {
		w = max(w, len(n))
	}
	return &console{out: out, color: color, width: w}
}

var palette = []string{"36", "33", "35", "32", "34", "91", "96", "93"}

// prefix returns the line prefix for source ("app" or "daprd") of name (an
// app instance), in colour i.
func (c *console) prefix(i int, name, source string) string {
	p := fmt.Sprintf("%-*s %-5s | ", c.width, name, source)
	if !c.color {
		return p
	}
	style := palette[i%len(palette)]
	if source == "daprd" {
		style += ";2" // dim: the sidecar's lines are context, the app's are the story
	}
	return "\x1b[" + style + "m" + p + "\x1b[0m"
}

// copy forwards r line by line to the console, into t and to watch (when not
// nil) until r ends, then closes r. A line longer than the buffer comes out in
// pieces: the pipe is read to its end whatever the child writes, so a child
// never blocks on it.
func (c *console) copy(r io.ReadCloser, prefix string, t *tail, watch func(string)) {
	defer r.Close()
	br := bufio.NewReaderSize(r, 64*1024)
	for {
		b, _, err := br.ReadLine()
		if err != nil {
			return
		}
		line := string(b)
		t.add(line)
		if watch != nil {
			watch(line)
		}
		c.mu.Lock()
		fmt.Fprintln(c.out, prefix+line)
		c.mu.Unlock()
	}
}

// say prints the runner's own lines, each with its prefix.
func (c *console) say(format string, args ...any) {
	p := fmt.Sprintf("%-*s %-5s | ", c.width, "runner", "")
	if c.color {
		p = "\x1b[1m" + p + "\x1b[0m"
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, line := range strings.Split(fmt.Sprintf(format, args...), "\n") {
		fmt.Fprintln(c.out, p+line)
	}
}

// tail keeps the last lines a child printed, to show when it fails.
type tail struct {
	mu    sync.Mutex
	lines []string
	max   int
}

func newTail(n int) *tail { return &tail{max: n} }

func (t *tail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) == t.max {
		t.lines = t.lines[1:]
	}
	t.lines = append(t.lines, line)
}

// render returns the kept lines under a heading naming the child.
func (t *tail) render(name string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) == 0 {
		return "--- " + name + " printed nothing ---"
	}
	return fmt.Sprintf("--- last %d lines of %s ---\n%s", len(t.lines), name, strings.Join(t.lines, "\n"))
}

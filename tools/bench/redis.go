package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// RedisStreams reads how many entries each of the given Redis streams has
// had (XINFO STREAM's entries-added, Redis 7; its length before that): the
// records of the redis profile's topics, whose streams Dapr names after
// them. A stream that does not exist counts 0.
func RedisStreams(ctx context.Context, addr string, streams []string) (map[string]int64, error) {
	d := net.Dialer{Timeout: 2 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	out := map[string]int64{}
	for _, s := range streams {
		if _, err := fmt.Fprintf(c, "*3\r\n$5\r\nXINFO\r\n$6\r\nSTREAM\r\n$%d\r\n%s\r\n", len(s), s); err != nil {
			return nil, err
		}
		v, err := readRESP(r)
		var rerr redisError
		switch {
		case errors.As(err, &rerr) && strings.Contains(strings.ToLower(string(rerr)), "no such key"):
			out[s] = 0
			continue
		case err != nil:
			return nil, fmt.Errorf("XINFO STREAM %s: %w", s, err)
		}
		fields, _ := v.([]any)
		info := map[string]any{}
		for i := 0; i+1 < len(fields); i += 2 {
			if k, ok := fields[i].(string); ok {
				info[k] = fields[i+1]
			}
		}
		n, ok := info["entries-added"].(int64)
		if !ok {
			n, ok = info["length"].(int64)
		}
		if !ok {
			return nil, fmt.Errorf("XINFO STREAM %s: no entries-added or length", s)
		}
		out[s] = n
	}
	return out, nil
}

// redisError is an error reply.
type redisError string

func (e redisError) Error() string { return string(e) }

// readRESP reads one RESP2 reply: a string, an int64, nil, or a []any.
func readRESP(r *bufio.Reader) (any, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return nil, errors.New("empty reply")
	}
	body := line[1:]
	switch line[0] {
	case '+':
		return body, nil
	case '-':
		return nil, redisError(body)
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil, err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil, err
		}
		out := make([]any, n)
		for i := range out {
			// An error inside an array is a value, not the reply's failure.
			v, err := readRESP(r)
			var rerr redisError
			if err != nil && !errors.As(err, &rerr) {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown reply %q", line)
}

package sidecar

import (
	"context"
	"time"
)

// WithoutWaits makes c resend at once, so tests of Raw's resends take no time.
func WithoutWaits(c *HTTP) *HTTP {
	c.resend.Sleep = func(context.Context, time.Duration) error { return nil }
	return c
}

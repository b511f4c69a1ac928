package worker

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyburn/keyburn/internal/store"
)

// brokenQueue fails every claim, as a queue that does not exist (a
// mistyped --aws-notices URL) or a state that is down does.
type brokenQueue struct {
	mu     sync.Mutex
	claims int
}

func (q *brokenQueue) Claim(context.Context, time.Duration, int) (store.Delivery, bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.claims++
	return store.Delivery{}, false, errors.New("AWS.SimpleQueueService.NonExistentQueue")
}
func (q *brokenQueue) Renew(context.Context, store.Delivery, time.Duration) error { return nil }
func (q *brokenQueue) Finish(context.Context, store.Delivery) error               { return nil }
func (q *brokenQueue) Fail(context.Context, store.Delivery, string, time.Duration, int) error {
	return nil
}
func (q *brokenQueue) Release(context.Context, store.Delivery) error { return nil }

// TestBrokenQueueBacksOff: a queue that keeps failing is retried, after
// three failures at the idle wait, with waits that double up to a
// ceiling, and each
// failure's log line says when the next try is; a claim that works again
// brings the idle wait back.
func TestBrokenQueueBacksOff(t *testing.T) {
	var waits []time.Duration
	var logs bytes.Buffer
	q := &brokenQueue{}
	stop, cancel := context.WithCancel(context.Background())
	w := New(Options{Queue: q, Idle: time.Millisecond, Log: slog.New(slog.NewJSONHandler(&logs, nil))})
	w.o.testOnlyWait = func(d time.Duration) {
		waits = append(waits, d)
		if len(waits) == 12 {
			cancel()
		}
	}
	w.Run(stop, stop)
	want := []time.Duration{1, 1, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512} // three at the idle wait, then doubling
	for i := range want {
		want[i] *= time.Millisecond
	}
	for i, d := range waits {
		if d != want[i] {
			t.Errorf("wait after %d failures: %v, want %v (all: %v)", i+1, d, want[i], waits)
			break
		}
	}
	if got := queueWait(time.Second, 13); got != maxQueueWait {
		t.Errorf("queueWait after 10 failures of 1 s idle = %v, want the ceiling %v", got, maxQueueWait)
	}
	if n := strings.Count(logs.String(), `"retry_in"`); n != len(waits) {
		t.Errorf("%d failure lines with retry_in, want %d\n%s", n, len(waits), logs.String())
	}
	if got := queueWait(time.Hour, steadyFails+1); got != maxQueueWait {
		t.Errorf("queueWait of a long idle wait = %v, want the ceiling", got)
	}
	if got := queueWait(time.Millisecond, 0); got != time.Millisecond {
		t.Errorf("queueWait with no failure = %v, want the idle wait", got)
	}
}

package respond

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"
)

// keyLockLease is how long a key's lock holds unrenewed; its holder renews
// it every third of that while it acts, so that the lock of a process that
// died is free again soon.
const keyLockLease = 15 * time.Second

// keyLockWait bounds the wait for a key another process is acting on.
const keyLockWait = 2 * time.Minute

// lockKey waits for keyID's lock (store.LockKey) and returns what gives
// it up.
func (r *Responder) lockKey(ctx context.Context, keyID string) (unlock func(), err error) {
	r.holderOnce.Do(func() {
		var b [12]byte
		_, _ = rand.Read(b[:]) // never fails (crypto/rand)
		r.holder = hex.EncodeToString(b[:])
	})
	wait := time.NewTimer(keyLockWait)
	defer wait.Stop()
	for {
		ok, err := r.opts.Store.LockKey(ctx, keyID, r.holder, time.Now(), keyLockLease)
		if err != nil {
			return nil, err
		}
		if ok {
			stop := make(chan struct{})
			renewed := make(chan struct{})
			go func() { // renewed while held: an action with its evidence can outlast one lease
				defer close(renewed)
				tick := time.NewTicker(keyLockLease / 3)
				defer tick.Stop()
				for {
					select {
					case <-stop:
						return
					case <-tick.C:
						_, _ = r.opts.Store.LockKey(context.WithoutCancel(ctx), keyID, r.holder, time.Now(), keyLockLease)
					}
				}
			}()
			return func() {
				close(stop)
				<-renewed
				ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
				defer cancel()
				_ = r.opts.Store.UnlockKey(ctx, keyID, r.holder) // a lost unlock runs out with its lease
			}, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-wait.C:
			return nil, fmt.Errorf("key %s: another process sharing the state has been acting on it for over %v", keyID, keyLockWait)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// deletedBefore reports whether the audit log has keyID deleted (key IDs
// are never reused: a deleted key is gone for good), and when.
func (r *Responder) deletedBefore(ctx context.Context, keyID string) (time.Time, bool) {
	log, err := r.opts.Store.AuditLog(ctx, keyID)
	if err != nil {
		return time.Time{}, false // act as if not: IAM says what is true
	}
	for _, rec := range log {
		if rec.Action == stepDelete && rec.Outcome == outOK {
			return rec.At, true
		}
	}
	return time.Time{}, false
}

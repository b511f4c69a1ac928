package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The delivery queue: webhook deliveries stored before they are answered, so
// that a crash between accept and done loses nothing. A worker claims a
// delivery under a lease, renews it while it works, and finishes or fails it
// only while it still holds that lease. One whose lease runs out (its worker
// died) is claimed again, and counts as an attempt: a delivery that keeps
// killing its worker is parked like one that keeps failing.

// Delivery statuses.
const (
	Queued  = "queued"
	Running = "running"
	Done    = "done"
	Parked  = "parked"
)

// Delivery is a stored webhook delivery.
type Delivery struct {
	ID        string // X-GitHub-Delivery
	Event     string
	Payload   []byte
	Status    string
	Attempts  int
	LastError string
	// DedupeKey, when set, drops a second delivery with the same key
	// under another ID: a replayed push (repository, ref, before, after).
	DedupeKey string
	// Handle is the lease the delivery is claimed under: a token of this
	// store's, or the queue's own receipt (SQS).
	Handle string
}

// ErrDuplicate is returned by Enqueue for a delivery ID, or dedupe key,
// already stored.
var ErrDuplicate = errors.New("delivery already stored")

// ErrRequeued is returned by Enqueue for a delivery ID, or dedupe key,
// already stored and parked: the redelivery puts it back in the queue with
// its attempts counted afresh (GitHub's "Redeliver" after an outage).
var ErrRequeued = errors.New("parked delivery requeued")

// ErrLeaseLost is returned when a delivery is finished, failed or renewed
// by a worker that no longer holds its lease: another worker has it.
var ErrLeaseLost = errors.New("the delivery's lease was lost to another worker")

// Enqueue stores a delivery durably. A redelivery of the same ID, or of the
// same dedupe key, is ErrDuplicate and changes nothing.
func (s *Store) Enqueue(ctx context.Context, d Delivery) error {
	now := time.Now().UnixMilli()
	res, err := s.exec(ctx, `INSERT INTO deliveries (id, event, payload, status, next_at, created_at, dedupe_key)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`, d.ID, d.Event, d.Payload, Queued, now, now, d.DedupeKey)
	if err != nil {
		return fmt.Errorf("store delivery %s: %w", d.ID, err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return nil
	}
	res, err = s.exec(ctx, `UPDATE deliveries SET status = ?, attempts = 0, next_at = ?, lease = '', lease_until = 0,
		last_error = 'requeued by a redelivery; before: ' || last_error
		WHERE status = ? AND (id = ? OR (dedupe_key != '' AND dedupe_key = ?))`, Queued, now, Parked, d.ID, d.DedupeKey)
	if err != nil {
		return fmt.Errorf("requeue delivery %s: %w", d.ID, err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return ErrRequeued
	}
	return ErrDuplicate
}

// Park stores a delivery parked at once, with the reason: one from a
// queue others write to (AWS's notices) that keyburn will not retry, kept
// for 'keyburn scan audit' to list and --requeue to retry. A delivery of
// that ID stored already is left as it is.
func (s *Store) Park(ctx context.Context, d Delivery, reason string) error {
	now := time.Now().UnixMilli()
	if _, err := s.exec(ctx, `INSERT INTO deliveries (id, event, payload, status, attempts, last_error, next_at, created_at, dedupe_key)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`, d.ID, d.Event, d.Payload, Parked, d.Attempts, reason, now, now, d.DedupeKey); err != nil {
		return fmt.Errorf("park delivery %s: %w", d.ID, err)
	}
	return nil
}

// Parked returns the parked deliveries (without their payloads), oldest
// first.
func (s *Store) Parked(ctx context.Context) ([]Delivery, error) {
	rows, err := s.query(ctx, `SELECT id, event, status, attempts, last_error, dedupe_key FROM deliveries WHERE status = ? ORDER BY created_at`, Parked)
	if err != nil {
		return nil, fmt.Errorf("list parked deliveries: %w", err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		var d Delivery
		if err := rows.Scan(&d.ID, &d.Event, &d.Status, &d.Attempts, &d.LastError, &d.DedupeKey); err != nil {
			return nil, fmt.Errorf("list parked deliveries: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// Requeue puts parked deliveries back in the queue, due now, with their
// attempts counted afresh: those named by id, or every one when ids is
// empty. It returns how many were requeued.
func (s *Store) Requeue(ctx context.Context, ids ...string) (int, error) {
	q := `UPDATE deliveries SET status = ?, attempts = 0, next_at = ?, last_error = 'requeued by hand; before: ' || last_error WHERE status = ?`
	args := []any{Queued, time.Now().UnixMilli(), Parked}
	if len(ids) > 0 {
		q += ` AND id IN (?` + strings.Repeat(", ?", len(ids)-1) + `)`
		for _, id := range ids {
			args = append(args, id)
		}
	}
	res, err := s.exec(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("requeue parked deliveries: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// Claim takes the next ready delivery (queued and due, or running with an
// expired lease) and leases it for lease. A delivery whose lease expired
// after maxAttempts claims is parked instead: its worker died on it each
// time. It returns false when none is ready.
func (s *Store) Claim(ctx context.Context, lease time.Duration, maxAttempts int) (Delivery, bool, error) {
	now := time.Now().UnixMilli()
	if _, err := s.exec(ctx, `UPDATE deliveries SET status = ?, lease = '', lease_until = 0,
		last_error = 'its worker stopped (crashed or was killed) on each of its ' || attempts || ' attempts' || CASE WHEN last_error != '' THEN '; before that: ' || last_error ELSE '' END
		WHERE status = ? AND lease_until <= ? AND attempts >= ?`, Parked, Running, now, maxAttempts); err != nil {
		return Delivery{}, false, fmt.Errorf("park deliveries that kill their worker: %w", err)
	}
	token := newLease()
	// One statement: the pick and the lease are atomic, with no read
	// transaction to upgrade (which SQLite answers with SQLITE_BUSY under
	// load).
	var d Delivery
	err := s.queryRow(ctx, `UPDATE deliveries SET status = ?, attempts = attempts + 1, lease_until = ?, lease = ?
		WHERE id = (SELECT id FROM deliveries WHERE (status = ? AND next_at <= ?) OR (status = ? AND lease_until <= ?)
			ORDER BY next_at LIMIT 1`+s.dialect.skipLocked()+`)
		RETURNING id, event, payload, status, attempts, last_error, dedupe_key`,
		Running, now+lease.Milliseconds(), token, Queued, now, Running, now).
		Scan(&d.ID, &d.Event, &d.Payload, &d.Status, &d.Attempts, &d.LastError, &d.DedupeKey)
	if errors.Is(err, sql.ErrNoRows) {
		return Delivery{}, false, nil
	}
	if err != nil {
		return Delivery{}, false, fmt.Errorf("claim a delivery: %w", err)
	}
	d.Handle = token
	return d, true, nil
}

func newLease() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// leased runs an update of a delivery under its lease: ErrLeaseLost when
// the caller no longer holds it.
func (s *Store) leased(ctx context.Context, d Delivery, what, set string, args ...any) error {
	res, err := s.exec(ctx, `UPDATE deliveries SET `+set+` WHERE id = ? AND lease = ? AND status = ?`,
		append(args, d.ID, d.Handle, Running)...)
	if err != nil {
		return fmt.Errorf("%s delivery %s: %w", what, d.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%s delivery %s: %w", what, d.ID, ErrLeaseLost)
	}
	return nil
}

// Renew extends the lease of a delivery being worked on.
func (s *Store) Renew(ctx context.Context, d Delivery, lease time.Duration) error {
	return s.leased(ctx, d, "renew", `lease_until = ?`, time.Now().Add(lease).UnixMilli())
}

// Finish marks a delivery done.
func (s *Store) Finish(ctx context.Context, d Delivery) error {
	return s.leased(ctx, d, "finish", `status = ?, last_error = '', lease = '', lease_until = 0`, Done)
}

// Fail records a failed attempt: the delivery is retried after backoff, or
// parked with the reason once it has had maxAttempts.
func (s *Store) Fail(ctx context.Context, d Delivery, reason string, backoff time.Duration, maxAttempts int) error {
	status, next := Queued, time.Now().Add(backoff).UnixMilli()
	if d.Attempts >= maxAttempts {
		status = Parked
	}
	return s.leased(ctx, d, "fail", `status = ?, next_at = ?, lease = '', lease_until = 0, last_error = ?`, status, next, reason)
}

// Release gives a delivery back unprocessed, at once and without counting
// the attempt: its worker is shutting down.
func (s *Store) Release(ctx context.Context, d Delivery) error {
	return s.leased(ctx, d, "release", `status = ?, next_at = ?, lease = '', lease_until = 0, attempts = `+s.dialect.greatest("attempts - 1", "0"),
		Queued, time.Now().UnixMilli())
}

// QueueDepth counts deliveries by status.
func (s *Store) QueueDepth(ctx context.Context) (map[string]int, error) {
	rows, err := s.query(ctx, `SELECT status, COUNT(*) FROM deliveries GROUP BY status`)
	if err != nil {
		return nil, fmt.Errorf("count deliveries: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("count deliveries: %w", err)
		}
		out[st] = n
	}
	return out, rows.Err()
}

// GetDelivery reads one delivery.
func (s *Store) GetDelivery(ctx context.Context, id string) (Delivery, error) {
	var d Delivery
	err := s.queryRow(ctx, `SELECT id, event, payload, status, attempts, last_error, dedupe_key FROM deliveries WHERE id = ?`, id).
		Scan(&d.ID, &d.Event, &d.Payload, &d.Status, &d.Attempts, &d.LastError, &d.DedupeKey)
	if err != nil {
		return d, fmt.Errorf("read delivery %s: %w", id, err)
	}
	return d, nil
}

// IssueFor returns the number of the issue opened for keyID in repo (0:
// none yet).
func (s *Store) IssueFor(ctx context.Context, repo, keyID string) (int, error) {
	var n int
	err := s.queryRow(ctx, `SELECT number FROM issues WHERE repo = ? AND key_id = ?`, repo, keyID).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read the issue for %s in %s: %w", keyID, repo, err)
	}
	return n, nil
}

// SetIssue remembers the issue opened for keyID in repo.
func (s *Store) SetIssue(ctx context.Context, repo, keyID string, number int) error {
	_, err := s.exec(ctx, `INSERT INTO issues (repo, key_id, number, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (repo, key_id) DO UPDATE SET number = excluded.number, updated_at = excluded.updated_at`,
		repo, keyID, number, time.Now().Unix())
	if err != nil {
		return fmt.Errorf("remember the issue for %s in %s: %w", keyID, repo, err)
	}
	return nil
}

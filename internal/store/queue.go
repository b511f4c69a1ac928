package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// The delivery queue: webhook deliveries stored before they are answered, so
// that a crash between accept and done loses nothing. A worker claims a
// delivery with a lease; one whose lease runs out (its worker died) is
// claimed again. Deliveries that keep failing are parked with the reason.

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
	Handle    string // a queue's own receipt for a claimed delivery (SQS); unused here
}

// ErrDuplicate is returned by Enqueue for a delivery ID already stored.
var ErrDuplicate = errors.New("delivery already stored")

// Enqueue stores a delivery durably. A redelivery of the same ID is
// ErrDuplicate and changes nothing.
func (s *Store) Enqueue(ctx context.Context, d Delivery) error {
	now := time.Now().UnixMilli()
	res, err := s.db.ExecContext(ctx, `INSERT INTO deliveries (id, event, payload, status, next_at, created_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`, d.ID, d.Event, d.Payload, Queued, now, now)
	if err != nil {
		return fmt.Errorf("store delivery %s: %w", d.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrDuplicate
	}
	return nil
}

// Claim takes the next ready delivery (queued and due, or running with an
// expired lease) and leases it for lease. It returns false when none is ready.
func (s *Store) Claim(ctx context.Context, lease time.Duration) (Delivery, bool, error) {
	now := time.Now().UnixMilli()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Delivery{}, false, err
	}
	defer tx.Rollback()
	var d Delivery
	err = tx.QueryRowContext(ctx, `SELECT id, event, payload, status, attempts, last_error FROM deliveries
		WHERE (status = ? AND next_at <= ?) OR (status = ? AND lease_until <= ?)
		ORDER BY next_at LIMIT 1`, Queued, now, Running, now).
		Scan(&d.ID, &d.Event, &d.Payload, &d.Status, &d.Attempts, &d.LastError)
	if errors.Is(err, sql.ErrNoRows) {
		return Delivery{}, false, nil
	}
	if err != nil {
		return Delivery{}, false, fmt.Errorf("claim a delivery: %w", err)
	}
	d.Attempts++
	d.Status = Running
	if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET status = ?, attempts = ?, lease_until = ? WHERE id = ?`,
		Running, d.Attempts, now+lease.Milliseconds(), d.ID); err != nil {
		return Delivery{}, false, fmt.Errorf("claim delivery %s: %w", d.ID, err)
	}
	return d, true, tx.Commit()
}

// Finish marks a delivery done.
func (s *Store) Finish(ctx context.Context, d Delivery) error {
	_, err := s.db.ExecContext(ctx, `UPDATE deliveries SET status = ?, last_error = '' WHERE id = ?`, Done, d.ID)
	return err
}

// Fail records a failed attempt: the delivery is retried after backoff, or
// parked with the reason once it has had maxAttempts.
func (s *Store) Fail(ctx context.Context, d Delivery, reason string, backoff time.Duration, maxAttempts int) error {
	status, next := Queued, time.Now().Add(backoff).UnixMilli()
	if d.Attempts >= maxAttempts {
		status = Parked
	}
	_, err := s.db.ExecContext(ctx, `UPDATE deliveries SET status = ?, next_at = ?, lease_until = 0, last_error = ? WHERE id = ?`,
		status, next, reason, d.ID)
	return err
}

// QueueDepth counts deliveries by status.
func (s *Store) QueueDepth(ctx context.Context) (map[string]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT status, COUNT(*) FROM deliveries GROUP BY status`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		out[st] = n
	}
	return out, rows.Err()
}

// GetDelivery reads one delivery.
func (s *Store) GetDelivery(ctx context.Context, id string) (Delivery, error) {
	var d Delivery
	err := s.db.QueryRowContext(ctx, `SELECT id, event, payload, status, attempts, last_error FROM deliveries WHERE id = ?`, id).
		Scan(&d.ID, &d.Event, &d.Payload, &d.Status, &d.Attempts, &d.LastError)
	if err != nil {
		return d, fmt.Errorf("read delivery %s: %w", id, err)
	}
	return d, nil
}

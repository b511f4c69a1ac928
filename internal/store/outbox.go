package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"
)

// The outbox holds notifications until they are sent: written before
// anything is sent, so a restart loses none; retried with backoff; parked
// with the reason after too many failures.

// Notification is one message for one target.
type Notification struct {
	ID int64
	// Target names where it goes (a fingerprint of the target, never its
	// URL, which is a secret of its own).
	Target string
	Body   []byte
	// Dedupe names what the message says: the same (target, dedupe) is
	// stored once.
	Dedupe    string
	Status    string // queued, sent, parked
	Attempts  int
	LastError string
	NextAt    time.Time
}

// Outbox statuses.
const (
	Sent = "sent"
)

// AddNotification stores a notification, queued now; one already stored
// for the same target and dedupe key is not stored again (false).
func (s *Store) AddNotification(ctx context.Context, n Notification, now time.Time) (bool, error) {
	res, err := s.exec(ctx, `INSERT INTO outbox (target, body, dedupe, status, next_at, created_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT DO NOTHING`, n.Target, n.Body, n.Dedupe, Queued, now.UnixMilli(), now.UnixMilli())
	if err != nil {
		return false, fmt.Errorf("store a notification: %w", err)
	}
	added, _ := res.RowsAffected()
	return added == 1, nil
}

// ClaimNotifications takes the queued notifications due by now that no
// process holds, at most limit, oldest first, each leased until now+lease:
// another process sharing the state does not send them meanwhile, and
// sends them once the lease runs out if this one died holding them.
func (s *Store) ClaimNotifications(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Notification, error) {
	ms := now.UnixMilli()
	rows, err := s.query(ctx, `UPDATE outbox SET lease_until = ?
		WHERE id IN (SELECT id FROM outbox WHERE status = ? AND next_at <= ? AND lease_until <= ?
			ORDER BY id LIMIT ?`+s.dialect.skipLocked()+`)
		RETURNING id, target, body, dedupe, status, attempts, last_error, next_at`, ms+lease.Milliseconds(), Queued, ms, ms, limit)
	if err != nil {
		return nil, fmt.Errorf("claim notifications: %w", err)
	}
	out, err := scanNotifications(rows)
	if err != nil {
		return nil, fmt.Errorf("claim notifications: %w", err)
	}
	slices.SortFunc(out, func(a, b Notification) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// PendingNotifications counts the notifications not yet sent nor parked.
func (s *Store) PendingNotifications(ctx context.Context) (int, error) {
	var n int
	err := s.queryRow(ctx, `SELECT count(*) FROM outbox WHERE status = ?`, Queued).Scan(&n)
	return n, err
}

// NotificationSent marks a notification sent.
func (s *Store) NotificationSent(ctx context.Context, id int64) error {
	_, err := s.exec(ctx, `UPDATE outbox SET status = ?, attempts = attempts + 1, last_error = '', lease_until = 0 WHERE id = ?`, Sent, id)
	return err
}

// NotificationFailed records a failed attempt: retried at next, or parked
// with the reason once it has failed maxAttempts times.
func (s *Store) NotificationFailed(ctx context.Context, id int64, reason string, next time.Time, maxAttempts int) error {
	_, err := s.exec(ctx, `UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_at = ?, lease_until = 0,
		status = CASE WHEN attempts + 1 >= ? THEN ? ELSE status END WHERE id = ?`, reason, next.UnixMilli(), maxAttempts, Parked, id)
	return err
}

// Notifications returns every notification, oldest first (for tests and
// the audit view).
func (s *Store) Notifications(ctx context.Context) ([]Notification, error) {
	rows, err := s.query(ctx, `SELECT id, target, body, dedupe, status, attempts, last_error, next_at FROM outbox ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("read the outbox: %w", err)
	}
	return scanNotifications(rows)
}

// scanNotifications reads outbox rows (id, target, body, dedupe, status,
// attempts, last_error, next_at).
func scanNotifications(rows *sql.Rows) ([]Notification, error) {
	defer rows.Close()
	var out []Notification
	for rows.Next() {
		var n Notification
		var next int64
		if err := rows.Scan(&n.ID, &n.Target, &n.Body, &n.Dedupe, &n.Status, &n.Attempts, &n.LastError, &next); err != nil {
			return nil, err
		}
		n.NextAt = time.UnixMilli(next)
		out = append(out, n)
	}
	return out, rows.Err()
}

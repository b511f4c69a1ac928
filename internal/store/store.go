// Package store is keyburn's embedded state in SQLite (modernc.org/sqlite,
// pure Go): the verdict cache, deletions that are due, and the append-only
// audit log of every action taken on a key. It never holds a secret: keys are
// named by their ID, secrets by their SHA-256.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" driver
)

// Store is an open state file. It is safe for concurrent use.
type Store struct {
	db *sql.DB
}

// migrations are applied in order, once each; the schema_version table
// records how many ran. Never edit one that has shipped: add another.
var migrations = []string{
	`CREATE TABLE verdicts (
		key_id        TEXT NOT NULL,
		secret_sha256 TEXT NOT NULL,
		status        TEXT NOT NULL,
		arn           TEXT NOT NULL DEFAULT '',
		account       TEXT NOT NULL DEFAULT '',
		user_id       TEXT NOT NULL DEFAULT '',
		checked_at    INTEGER NOT NULL,
		PRIMARY KEY (key_id, secret_sha256)
	);
	CREATE TABLE audit (
		id          INTEGER PRIMARY KEY AUTOINCREMENT,
		at          TEXT NOT NULL,
		actor       TEXT NOT NULL,
		action      TEXT NOT NULL,
		key_id      TEXT NOT NULL,
		account     TEXT NOT NULL DEFAULT '',
		user_name   TEXT NOT NULL DEFAULT '',
		request_id  TEXT NOT NULL DEFAULT '',
		before      TEXT NOT NULL DEFAULT '',
		after       TEXT NOT NULL DEFAULT '',
		outcome     TEXT NOT NULL,
		detail      TEXT NOT NULL DEFAULT ''
	);
	CREATE TRIGGER audit_append_only_update BEFORE UPDATE ON audit
		BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
	CREATE TRIGGER audit_append_only_delete BEFORE DELETE ON audit
		BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
	CREATE TABLE due_deletions (
		key_id     TEXT PRIMARY KEY,
		account    TEXT NOT NULL,
		user_name  TEXT NOT NULL,
		due_at     INTEGER NOT NULL,
		created_at INTEGER NOT NULL
	);`,
	// 2: the webhook delivery queue (queue.go).
	`CREATE TABLE deliveries (
		id          TEXT PRIMARY KEY,
		event       TEXT NOT NULL,
		payload     BLOB NOT NULL,
		status      TEXT NOT NULL,
		attempts    INTEGER NOT NULL DEFAULT 0,
		next_at     INTEGER NOT NULL,
		lease_until INTEGER NOT NULL DEFAULT 0,
		last_error  TEXT NOT NULL DEFAULT '',
		created_at  INTEGER NOT NULL
	);
	CREATE INDEX deliveries_ready ON deliveries (status, next_at);`,
	// 3: organisation scans (RepoTips).
	`CREATE TABLE repo_scans (
		repo       TEXT PRIMARY KEY,
		tips       TEXT NOT NULL,
		scanned_at INTEGER NOT NULL
	);`,
}

// Open opens (creating if need be) the state file at path and brings its
// schema up to date.
func Open(path string) (*Store, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)")
	if err != nil {
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	s := &Store{db: db}
	if err := s.migrate(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	return s, nil
}

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

// DB returns the database, for packages that keep tables of their own.
func (s *Store) DB() *sql.DB { return s.db }

func (s *Store) migrate() error {
	if _, err := s.db.Exec(`CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return err
	}
	var v int
	err := s.db.QueryRow(`SELECT version FROM schema_version`).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := s.db.Exec(`INSERT INTO schema_version (version) VALUES (0)`); err != nil {
			return err
		}
	case err != nil:
		return err
	}
	if v > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this keyburn knows (%d)", v, len(migrations))
	}
	for i := v; i < len(migrations); i++ {
		tx, err := s.db.Begin()
		if err != nil {
			return err
		}
		if _, err := tx.Exec(migrations[i]); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
		if _, err := tx.Exec(`UPDATE schema_version SET version = ?`, i+1); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}

// Verdict is a cached verification result.
type Verdict struct {
	KeyID        string
	SecretSHA256 string
	Status       string
	ARN          string
	Account      string
	UserID       string
	CheckedAt    time.Time
}

// GetVerdict returns the cached verdict for a key ID and secret if it is
// younger than maxAge.
func (s *Store) GetVerdict(ctx context.Context, keyID, secretSHA256 string, maxAge time.Duration) (Verdict, bool, error) {
	v := Verdict{KeyID: keyID, SecretSHA256: secretSHA256}
	var at int64
	err := s.db.QueryRowContext(ctx, `SELECT status, arn, account, user_id, checked_at FROM verdicts
		WHERE key_id = ? AND secret_sha256 = ?`, keyID, secretSHA256).Scan(&v.Status, &v.ARN, &v.Account, &v.UserID, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return v, false, nil
	}
	if err != nil {
		return v, false, fmt.Errorf("read verdict for %s: %w", keyID, err)
	}
	v.CheckedAt = time.Unix(at, 0)
	if time.Since(v.CheckedAt) > maxAge {
		return v, false, nil
	}
	return v, true, nil
}

// PutVerdict caches a verdict.
func (s *Store) PutVerdict(ctx context.Context, v Verdict) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO verdicts (key_id, secret_sha256, status, arn, account, user_id, checked_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (key_id, secret_sha256) DO UPDATE SET status = excluded.status, arn = excluded.arn,
			account = excluded.account, user_id = excluded.user_id, checked_at = excluded.checked_at`,
		v.KeyID, v.SecretSHA256, v.Status, v.ARN, v.Account, v.UserID, v.CheckedAt.Unix())
	if err != nil {
		return fmt.Errorf("save verdict for %s: %w", v.KeyID, err)
	}
	return nil
}

// AuditRecord is one entry of the audit log: one step taken, or about to be
// taken, on one key.
type AuditRecord struct {
	ID        int64
	At        time.Time
	Actor     string // who acted: the responder's ARN
	Action    string // owner-check, last-used, deactivate, delete, …
	KeyID     string
	Account   string
	UserName  string
	RequestID string // AWS's request ID
	Before    string // the key's status before
	After     string // and after
	Outcome   string // ok, failed, skipped, dry-run, started
	Detail    string
}

// Audit appends a record to the audit log.
func (s *Store) Audit(ctx context.Context, r AuditRecord) error {
	if r.At.IsZero() {
		r.At = time.Now()
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO audit (at, actor, action, key_id, account, user_name, request_id, before, after, outcome, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.At.UTC().Format(time.RFC3339Nano), r.Actor, r.Action, r.KeyID, r.Account, r.UserName, r.RequestID, r.Before, r.After, r.Outcome, r.Detail)
	if err != nil {
		return fmt.Errorf("append to the audit log (%s %s): %w", r.Action, r.KeyID, err)
	}
	return nil
}

// AuditLog returns the audit log, oldest first; keyID filters when not empty.
func (s *Store) AuditLog(ctx context.Context, keyID string) ([]AuditRecord, error) {
	q := `SELECT id, at, actor, action, key_id, account, user_name, request_id, before, after, outcome, detail FROM audit`
	var args []any
	if keyID != "" {
		q += ` WHERE key_id = ?`
		args = append(args, keyID)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("read the audit log: %w", err)
	}
	defer rows.Close()
	var out []AuditRecord
	for rows.Next() {
		var r AuditRecord
		var at string
		if err := rows.Scan(&r.ID, &at, &r.Actor, &r.Action, &r.KeyID, &r.Account, &r.UserName, &r.RequestID, &r.Before, &r.After, &r.Outcome, &r.Detail); err != nil {
			return nil, fmt.Errorf("read the audit log: %w", err)
		}
		r.At, _ = time.Parse(time.RFC3339Nano, at)
		out = append(out, r)
	}
	return out, rows.Err()
}

// Deletion is a key deactivated and due to be deleted after its soak window.
type Deletion struct {
	KeyID, Account, UserName string
	DueAt                    time.Time
}

// ScheduleDeletion records that a key is due for deletion at due.
func (s *Store) ScheduleDeletion(ctx context.Context, d Deletion) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO due_deletions (key_id, account, user_name, due_at, created_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (key_id) DO NOTHING`, d.KeyID, d.Account, d.UserName, d.DueAt.Unix(), time.Now().Unix())
	if err != nil {
		return fmt.Errorf("schedule deletion of %s: %w", d.KeyID, err)
	}
	return nil
}

// DueDeletions returns the deletions due by now.
func (s *Store) DueDeletions(ctx context.Context, now time.Time) ([]Deletion, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT key_id, account, user_name, due_at FROM due_deletions WHERE due_at <= ? ORDER BY due_at`, now.Unix())
	if err != nil {
		return nil, fmt.Errorf("read due deletions: %w", err)
	}
	defer rows.Close()
	var out []Deletion
	for rows.Next() {
		var d Deletion
		var due int64
		if err := rows.Scan(&d.KeyID, &d.Account, &d.UserName, &due); err != nil {
			return nil, err
		}
		d.DueAt = time.Unix(due, 0)
		out = append(out, d)
	}
	return out, rows.Err()
}

// DeletionDone removes a deletion from the schedule.
func (s *Store) DeletionDone(ctx context.Context, keyID string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM due_deletions WHERE key_id = ?`, keyID)
	return err
}

// RepoTips returns the commits a previous scan of repo ended at (nil: never
// scanned) and when that scan was.
func (s *Store) RepoTips(ctx context.Context, repo string) ([]string, time.Time, error) {
	var tips string
	var at int64
	err := s.db.QueryRowContext(ctx, `SELECT tips, scanned_at FROM repo_scans WHERE repo = ?`, repo).Scan(&tips, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, time.Time{}, nil
	}
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("read the last scan of %s: %w", repo, err)
	}
	if tips == "" {
		return []string{}, time.Unix(at, 0), nil
	}
	return strings.Split(tips, ","), time.Unix(at, 0), nil
}

// SetRepoTips remembers the commits a scan of repo ended at.
func (s *Store) SetRepoTips(ctx context.Context, repo string, tips []string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO repo_scans (repo, tips, scanned_at) VALUES (?, ?, ?)
		ON CONFLICT (repo) DO UPDATE SET tips = excluded.tips, scanned_at = excluded.scanned_at`,
		repo, strings.Join(tips, ","), time.Now().Unix())
	if err != nil {
		return fmt.Errorf("remember the scan of %s: %w", repo, err)
	}
	return nil
}

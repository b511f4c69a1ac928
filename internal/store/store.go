// Package store is keyburn's state: the verdict cache, deletions that are
// due, the append-only audit log of every action taken on a key, the
// delivery queue, the notification outbox and organisation scan tips. It
// lives in an embedded SQLite file (modernc.org/sqlite, pure Go) for one
// machine, or in PostgreSQL (jackc/pgx) for a fleet that shares it: Open
// takes a path or a postgres:// URL, and the two run the same schema and
// the same queries (dialect.go says where they differ). It never holds a
// secret: keys are named by their ID, secrets by their SHA-256.
package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" driver
)

// Store is an open state. It is safe for concurrent use.
type Store struct {
	db      *sql.DB
	dialect dialect
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
	// 4: when a key was first checked (a lower bound on when it existed),
	// verdicts that last until a set time (a revoked session token, until
	// it expires), and the sessions the responder revoked.
	`ALTER TABLE verdicts ADD COLUMN first_checked_at INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE verdicts ADD COLUMN valid_until INTEGER NOT NULL DEFAULT 0;
	CREATE TABLE revocations (
		key_id     TEXT PRIMARY KEY,
		account    TEXT NOT NULL,
		role       TEXT NOT NULL,
		revoked_at INTEGER NOT NULL,
		expires_at INTEGER NOT NULL
	);`,
	// 5: the lease a claimed delivery is held under (Finish and Fail check
	// it), a key that drops a replayed push delivered under a new ID, and
	// the issue opened for each key in each repository.
	`ALTER TABLE deliveries ADD COLUMN lease TEXT NOT NULL DEFAULT '';
	ALTER TABLE deliveries ADD COLUMN dedupe_key TEXT NOT NULL DEFAULT '';
	CREATE UNIQUE INDEX deliveries_dedupe ON deliveries (dedupe_key) WHERE dedupe_key != '';
	CREATE TABLE issues (
		repo       TEXT NOT NULL,
		key_id     TEXT NOT NULL,
		number     INTEGER NOT NULL,
		updated_at INTEGER NOT NULL,
		PRIMARY KEY (repo, key_id)
	);`,
	// 6: notifications waiting to be sent (outbox.go).
	`CREATE TABLE outbox (
		id         INTEGER PRIMARY KEY AUTOINCREMENT,
		target     TEXT NOT NULL,
		body       BLOB NOT NULL,
		dedupe     TEXT NOT NULL,
		status     TEXT NOT NULL,
		attempts   INTEGER NOT NULL DEFAULT 0,
		next_at    INTEGER NOT NULL,
		last_error TEXT NOT NULL DEFAULT '',
		created_at INTEGER NOT NULL
	);
	CREATE UNIQUE INDEX outbox_dedupe ON outbox (target, dedupe);
	CREATE INDEX outbox_due ON outbox (status, next_at);`,
	// 7: which secret verified a key live when it was acted on (its
	// SHA-256), so that an alert about a secret is resolved only when that
	// secret's key was the one acted on.
	`ALTER TABLE audit ADD COLUMN secret_sha256 TEXT NOT NULL DEFAULT '';`,
	// 8: the STS calls keyburn made with a key (its request IDs), so that
	// CloudTrail's evidence tells keyburn's own calls from the key user's
	// by what keyburn recorded, not by a User-Agent anyone can send.
	`CREATE TABLE own_calls (
		key_id     TEXT NOT NULL,
		request_id TEXT NOT NULL,
		at         INTEGER NOT NULL,
		PRIMARY KEY (key_id, request_id)
	);`,
	// 9: leases on due deletions and notifications, so that processes
	// sharing one state (a fleet on PostgreSQL) each carry out a deletion,
	// and send a notification, once: claimed under a lease that runs out
	// if its holder dies (milliseconds).
	`ALTER TABLE due_deletions ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE outbox ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;`,
	// 10: a lock per key, so that processes sharing one state act on a
	// key one at a time (until: milliseconds).
	`CREATE TABLE key_locks (
		key_id TEXT PRIMARY KEY,
		holder TEXT NOT NULL,
		until  INTEGER NOT NULL
	);`,
}

// DefaultPath is where the state lives when no path is given, for the CLI
// and the receiver alike: $XDG_STATE_HOME/keyburn/state.db, by default
// ~/.local/state/keyburn/state.db.
func DefaultPath() string {
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "keyburn-state.db"
		}
		dir = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(dir, "keyburn", "state.db")
}

// Where is the state a process uses: the --state option when given, else
// $KEYBURN_STATE_URL (a fleet's PostgreSQL), else DefaultPath.
func Where(option string) string {
	switch {
	case option != "":
		return option
	case os.Getenv("KEYBURN_STATE_URL") != "":
		return os.Getenv("KEYBURN_STATE_URL")
	}
	return DefaultPath()
}

// Describe names a state for messages and logs: a path as it is, a URL
// without its password.
func Describe(where string) string {
	if IsURL(where) {
		return redactURL(where)
	}
	return where
}

// Exists reports whether there is a state at where: a URL always names
// one (it is created on first open), a path only when the file exists.
func Exists(where string) (bool, error) {
	if IsURL(where) {
		return true, nil
	}
	_, err := os.Stat(where)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// Prepare makes a state file's directory (its owner's alone) if need be;
// a database needs nothing.
func Prepare(where string) error {
	if IsURL(where) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(where), 0o700); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	return nil
}

// Open opens the state at where and brings its schema up to date: a
// postgres:// (or postgresql://) URL is a PostgreSQL database, anything
// else the path of a SQLite file, created if need be and readable by its
// owner only (0600): it names leaked keys and what was done to them.
func Open(where string) (*Store, error) {
	if IsURL(where) {
		return openPostgres(where)
	}
	f, err := os.OpenFile(where, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open state %s: %w", where, err)
	}
	f.Close()
	db, err := sql.Open("sqlite", "file:"+where+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)")
	if err != nil {
		return nil, fmt.Errorf("open state %s: %w", where, err)
	}
	s := &Store{db: db, dialect: sqlite}
	if err := s.migrate(context.Background()); err != nil {
		db.Close()
		return nil, fmt.Errorf("open state %s: %w", where, err)
	}
	return s, nil
}

// IsURL reports whether a state option names a PostgreSQL database rather
// than a file.
func IsURL(where string) bool {
	return strings.HasPrefix(where, "postgres://") || strings.HasPrefix(where, "postgresql://")
}

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

// DB returns the database itself, for tests that break it on purpose.
func (s *Store) DB() *sql.DB { return s.db }

// migrate applies the migrations not applied yet. Processes that start
// together apply each once: on SQLite all of it is one IMMEDIATE
// transaction (the others wait for the write lock, then find nothing to
// do); on PostgreSQL an advisory lock is held, and each migration is a
// transaction with its version.
func (s *Store) migrate(ctx context.Context) (err error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	// exec runs a statement: inside SQLite's transaction, or a
	// transaction of its own on PostgreSQL.
	exec := func(query string, args ...any) error {
		_, err := conn.ExecContext(ctx, s.dialect.bind(query), args...)
		return err
	}
	switch s.dialect {
	case postgres:
		if err := exec(`SELECT pg_advisory_lock(?)`, migrationLock); err != nil {
			return fmt.Errorf("lock the schema: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrationLock)
	default:
		if err := exec(`BEGIN IMMEDIATE`); err != nil {
			return fmt.Errorf("lock the schema: %w", err)
		}
		defer func() {
			if err == nil {
				err = exec(`COMMIT`)
			}
			if err != nil {
				conn.ExecContext(context.WithoutCancel(ctx), `ROLLBACK`)
			}
		}()
	}
	if err := exec(`CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return err
	}
	var v int
	err = conn.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if err := exec(`INSERT INTO schema_version (version) VALUES (0)`); err != nil {
			return err
		}
	case err != nil:
		return err
	}
	if v > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this keyburn knows (%d)", v, len(migrations))
	}
	for i := v; i < len(migrations); i++ {
		if s.dialect == sqlite {
			if err := exec(migrations[i]); err != nil {
				return fmt.Errorf("migration %d: %w", i+1, err)
			}
			if err := exec(`UPDATE schema_version SET version = ?`, i+1); err != nil {
				return err
			}
			continue
		}
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.dialect.migration(i)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
		if _, err := tx.ExecContext(ctx, s.dialect.bind(`UPDATE schema_version SET version = ?`), i+1); err != nil {
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
	// ValidUntil, when set, is how long the verdict holds, in place of the
	// cache's age limit: a revoked session token stays revoked until it
	// expires.
	ValidUntil time.Time
}

// GetVerdict returns the cached verdict for a key ID and secret while it
// holds: until its ValidUntil when it has one, else while younger than
// maxAge.
func (s *Store) GetVerdict(ctx context.Context, keyID, secretSHA256 string, maxAge time.Duration) (Verdict, bool, error) {
	v := Verdict{KeyID: keyID, SecretSHA256: secretSHA256}
	var at, until int64
	err := s.queryRow(ctx, `SELECT status, arn, account, user_id, checked_at, valid_until FROM verdicts
		WHERE key_id = ? AND secret_sha256 = ?`, keyID, secretSHA256).Scan(&v.Status, &v.ARN, &v.Account, &v.UserID, &at, &until)
	if errors.Is(err, sql.ErrNoRows) {
		return v, false, nil
	}
	if err != nil {
		return v, false, fmt.Errorf("read verdict for %s: %w", keyID, err)
	}
	v.CheckedAt = time.Unix(at, 0)
	if until > 0 {
		v.ValidUntil = time.Unix(until, 0)
		return v, time.Now().Before(v.ValidUntil), nil
	}
	return v, time.Since(v.CheckedAt) <= maxAge, nil
}

// PutVerdict caches a verdict. The time a key was first checked is kept
// across updates.
func (s *Store) PutVerdict(ctx context.Context, v Verdict) error {
	var until int64
	if !v.ValidUntil.IsZero() {
		until = v.ValidUntil.Unix()
	}
	_, err := s.exec(ctx, `INSERT INTO verdicts (key_id, secret_sha256, status, arn, account, user_id, checked_at, first_checked_at, valid_until)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (key_id, secret_sha256) DO UPDATE SET status = excluded.status, arn = excluded.arn,
			account = excluded.account, user_id = excluded.user_id, checked_at = excluded.checked_at,
			valid_until = excluded.valid_until,
			first_checked_at = CASE WHEN verdicts.first_checked_at > 0 THEN verdicts.first_checked_at ELSE verdicts.checked_at END`,
		v.KeyID, v.SecretSHA256, v.Status, v.ARN, v.Account, v.UserID, v.CheckedAt.Unix(), v.CheckedAt.Unix(), until)
	if err != nil {
		return fmt.Errorf("save verdict for %s: %w", v.KeyID, err)
	}
	return nil
}

// FirstChecked returns when keyburn first checked keyID with STS, with any
// secret (zero: never). The key existed then: for a session token, it was
// issued before.
func (s *Store) FirstChecked(ctx context.Context, keyID string) (time.Time, error) {
	var at sql.NullInt64
	err := s.queryRow(ctx, `SELECT MIN(CASE WHEN first_checked_at > 0 THEN first_checked_at ELSE checked_at END)
		FROM verdicts WHERE key_id = ?`, keyID).Scan(&at)
	if err != nil {
		return time.Time{}, fmt.Errorf("read when %s was first checked: %w", keyID, err)
	}
	if !at.Valid {
		return time.Time{}, nil
	}
	return time.Unix(at.Int64, 0), nil
}

// Revocation records that the responder revoked the sessions of the role a
// temporary key belongs to: every session issued before RevokedAt is
// denied, and none outlives ExpiresAt (RevokedAt plus the role's longest
// session).
type Revocation struct {
	KeyID, Account, Role string
	RevokedAt, ExpiresAt time.Time
}

// PutRevocation records a revocation, replacing an older one for the key.
func (s *Store) PutRevocation(ctx context.Context, r Revocation) error {
	_, err := s.exec(ctx, `INSERT INTO revocations (key_id, account, role, revoked_at, expires_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (key_id) DO UPDATE SET account = excluded.account, role = excluded.role,
			revoked_at = excluded.revoked_at, expires_at = excluded.expires_at`,
		r.KeyID, r.Account, r.Role, r.RevokedAt.Unix(), r.ExpiresAt.Unix())
	if err != nil {
		return fmt.Errorf("record the revocation of %s: %w", r.KeyID, err)
	}
	return nil
}

// GetRevocation returns the revocation recorded for keyID, if any.
func (s *Store) GetRevocation(ctx context.Context, keyID string) (Revocation, bool, error) {
	r := Revocation{KeyID: keyID}
	var at, until int64
	err := s.queryRow(ctx, `SELECT account, role, revoked_at, expires_at FROM revocations WHERE key_id = ?`, keyID).
		Scan(&r.Account, &r.Role, &at, &until)
	if errors.Is(err, sql.ErrNoRows) {
		return r, false, nil
	}
	if err != nil {
		return r, false, fmt.Errorf("read the revocation of %s: %w", keyID, err)
	}
	r.RevokedAt, r.ExpiresAt = time.Unix(at, 0), time.Unix(until, 0)
	return r, true, nil
}

// AuditRecord is one entry of the audit log: one step taken, or about to be
// taken, on one key.
//
// JSON names are snake_case, as in the findings.
type AuditRecord struct {
	ID        int64     `json:"id"`
	At        time.Time `json:"at"`
	Actor     string    `json:"actor"`  // who acted: the responder's ARN
	Action    string    `json:"action"` // owner-check, last-used, deactivate, delete, …
	KeyID     string    `json:"key_id"`
	Account   string    `json:"account,omitempty"`
	UserName  string    `json:"user_name,omitempty"`
	RequestID string    `json:"request_id,omitempty"` // AWS's request ID
	Before    string    `json:"before,omitempty"`     // the key's status before
	After     string    `json:"after,omitempty"`      // and after
	Outcome   string    `json:"outcome"`              // ok, failed, skipped, dry-run, started, cancelled
	Detail    string    `json:"detail,omitempty"`
	// SecretSHA256 is the SHA-256 of the secret that verified the key live
	// in the run that wrote the record (never the secret), when known.
	SecretSHA256 string `json:"secret_sha256,omitempty"`
}

// Audit appends a record to the audit log.
func (s *Store) Audit(ctx context.Context, r AuditRecord) error {
	if r.At.IsZero() {
		r.At = time.Now()
	}
	_, err := s.exec(ctx, `INSERT INTO audit (at, actor, action, key_id, account, user_name, request_id, before, after, outcome, detail, secret_sha256)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.At.UTC().Format(time.RFC3339Nano), r.Actor, r.Action, r.KeyID, r.Account, r.UserName, r.RequestID, r.Before, r.After, r.Outcome, r.Detail, r.SecretSHA256)
	if err != nil {
		return fmt.Errorf("append to the audit log (%s %s): %w", r.Action, r.KeyID, err)
	}
	return nil
}

// AuditLog returns the audit log, oldest first; keyID filters when not empty.
func (s *Store) AuditLog(ctx context.Context, keyID string) ([]AuditRecord, error) {
	q := `SELECT id, at, actor, action, key_id, account, user_name, request_id, before, after, outcome, detail, secret_sha256 FROM audit`
	var args []any
	if keyID != "" {
		q += ` WHERE key_id = ?`
		args = append(args, keyID)
	}
	rows, err := s.query(ctx, q+` ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("read the audit log: %w", err)
	}
	defer rows.Close()
	var out []AuditRecord
	for rows.Next() {
		var r AuditRecord
		var at string
		if err := rows.Scan(&r.ID, &at, &r.Actor, &r.Action, &r.KeyID, &r.Account, &r.UserName, &r.RequestID, &r.Before, &r.After, &r.Outcome, &r.Detail, &r.SecretSHA256); err != nil {
			return nil, fmt.Errorf("read the audit log: %w", err)
		}
		r.At, _ = time.Parse(time.RFC3339Nano, at)
		out = append(out, r)
	}
	return out, rows.Err()
}

// Deletion is a key deactivated and due to be deleted after its soak window.
type Deletion struct {
	KeyID     string    `json:"key_id"`
	Account   string    `json:"account"`
	UserName  string    `json:"user_name"`
	DueAt     time.Time `json:"due_at"`
	CreatedAt time.Time `json:"scheduled_at"`
}

// ScheduleDeletion records that a key is due for deletion at d.DueAt. A key
// already scheduled keeps its due time; the due time in force is returned.
func (s *Store) ScheduleDeletion(ctx context.Context, d Deletion) (time.Time, error) {
	created := d.CreatedAt
	if created.IsZero() {
		created = time.Now()
	}
	// Whole seconds, rounded up: a deletion is never due early.
	due := d.DueAt.Unix()
	if d.DueAt.After(time.Unix(due, 0)) {
		due++
	}
	err := s.queryRow(ctx, `INSERT INTO due_deletions (key_id, account, user_name, due_at, created_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (key_id) DO UPDATE SET key_id = due_deletions.key_id RETURNING due_at`,
		d.KeyID, d.Account, d.UserName, due, created.Unix()).Scan(&due)
	if err != nil {
		return time.Time{}, fmt.Errorf("schedule deletion of %s: %w", d.KeyID, err)
	}
	return time.Unix(due, 0), nil
}

// DueDeletions returns the deletions due by now.
func (s *Store) DueDeletions(ctx context.Context, now time.Time) ([]Deletion, error) {
	return s.deletions(ctx, `WHERE due_at <= ?`, now.Unix())
}

// ClaimDueDeletions takes the deletions due by now that no process holds,
// each leased until now+lease: another process sharing the state does not
// take them meanwhile, and takes them once the lease runs out if this one
// died holding them. One finished or cancelled is Unscheduled; one that
// failed is tried again when its lease runs out.
func (s *Store) ClaimDueDeletions(ctx context.Context, now time.Time, lease time.Duration) ([]Deletion, error) {
	ms := now.UnixMilli()
	rows, err := s.query(ctx, `UPDATE due_deletions SET lease_until = ?
		WHERE key_id IN (SELECT key_id FROM due_deletions WHERE due_at <= ? AND lease_until <= ?
			ORDER BY due_at, key_id LIMIT 100`+s.dialect.skipLocked()+`)
		RETURNING key_id, account, user_name, due_at, created_at`, ms+lease.Milliseconds(), now.Unix(), ms)
	if err != nil {
		return nil, fmt.Errorf("claim due deletions: %w", err)
	}
	out, err := scanDeletions(rows)
	if err != nil {
		return nil, fmt.Errorf("claim due deletions: %w", err)
	}
	slices.SortFunc(out, func(a, b Deletion) int { return cmp.Or(a.DueAt.Compare(b.DueAt), strings.Compare(a.KeyID, b.KeyID)) })
	return out, nil
}

// LockKey takes the lock on keyID for holder until now+lease (holder may
// renew its own); false when another holder has it and it has not run out.
func (s *Store) LockKey(ctx context.Context, keyID, holder string, now time.Time, lease time.Duration) (bool, error) {
	var got string
	err := s.queryRow(ctx, `INSERT INTO key_locks (key_id, holder, until) VALUES (?, ?, ?)
		ON CONFLICT (key_id) DO UPDATE SET holder = excluded.holder, until = excluded.until
		WHERE key_locks.until <= ? OR key_locks.holder = excluded.holder
		RETURNING holder`, keyID, holder, now.Add(lease).UnixMilli(), now.UnixMilli()).Scan(&got)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("lock key %s: %w", keyID, err)
	}
	return got == holder, nil
}

// UnlockKey gives up holder's lock on keyID (one another holder took after
// it ran out stays theirs).
func (s *Store) UnlockKey(ctx context.Context, keyID, holder string) error {
	if _, err := s.exec(ctx, `DELETE FROM key_locks WHERE key_id = ? AND holder = ?`, keyID, holder); err != nil {
		return fmt.Errorf("unlock key %s: %w", keyID, err)
	}
	return nil
}

// ReleaseDeletion gives a claimed deletion back: the next claim may take
// it at once.
func (s *Store) ReleaseDeletion(ctx context.Context, keyID string) error {
	if _, err := s.exec(ctx, `UPDATE due_deletions SET lease_until = 0 WHERE key_id = ?`, keyID); err != nil {
		return fmt.Errorf("release the deletion of %s: %w", keyID, err)
	}
	return nil
}

// PendingDeletions returns every scheduled deletion, due or not, soonest
// first.
func (s *Store) PendingDeletions(ctx context.Context) ([]Deletion, error) {
	return s.deletions(ctx, ``)
}

func (s *Store) deletions(ctx context.Context, where string, args ...any) ([]Deletion, error) {
	rows, err := s.query(ctx, `SELECT key_id, account, user_name, due_at, created_at FROM due_deletions `+where+` ORDER BY due_at, key_id`, args...)
	if err != nil {
		return nil, fmt.Errorf("read scheduled deletions: %w", err)
	}
	out, err := scanDeletions(rows)
	if err != nil {
		return nil, fmt.Errorf("read scheduled deletions: %w", err)
	}
	return out, nil
}

// scanDeletions reads rows of (key_id, account, user_name, due_at,
// created_at).
func scanDeletions(rows *sql.Rows) ([]Deletion, error) {
	defer rows.Close()
	var out []Deletion
	for rows.Next() {
		var d Deletion
		var due, created int64
		if err := rows.Scan(&d.KeyID, &d.Account, &d.UserName, &due, &created); err != nil {
			return nil, err
		}
		d.DueAt, d.CreatedAt = time.Unix(due, 0), time.Unix(created, 0)
		out = append(out, d)
	}
	return out, rows.Err()
}

// Unschedule removes a key's deletion from the schedule: done, or
// cancelled.
func (s *Store) Unschedule(ctx context.Context, keyID string) error {
	if _, err := s.exec(ctx, `DELETE FROM due_deletions WHERE key_id = ?`, keyID); err != nil {
		return fmt.Errorf("unschedule the deletion of %s: %w", keyID, err)
	}
	return nil
}

// RepoTips returns the commits a previous scan of repo ended at (nil: never
// scanned) and when that scan was.
func (s *Store) RepoTips(ctx context.Context, repo string) ([]string, time.Time, error) {
	var tips string
	var at int64
	err := s.queryRow(ctx, `SELECT tips, scanned_at FROM repo_scans WHERE repo = ?`, repo).Scan(&tips, &at)
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
	_, err := s.exec(ctx, `INSERT INTO repo_scans (repo, tips, scanned_at) VALUES (?, ?, ?)
		ON CONFLICT (repo) DO UPDATE SET tips = excluded.tips, scanned_at = excluded.scanned_at`,
		repo, strings.Join(tips, ","), time.Now().Unix())
	if err != nil {
		return fmt.Errorf("remember the scan of %s: %w", repo, err)
	}
	return nil
}

// OwnCall is an STS call keyburn made with a key (to verify it).
type OwnCall struct {
	KeyID     string
	RequestID string // AWS's request ID: CloudTrail's requestID
	At        time.Time
}

// AddOwnCall records a call keyburn made with a key.
func (s *Store) AddOwnCall(ctx context.Context, c OwnCall) error {
	_, err := s.exec(ctx, `INSERT INTO own_calls (key_id, request_id, at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
		c.KeyID, c.RequestID, c.At.Unix())
	if err != nil {
		return fmt.Errorf("record keyburn's own call with %s: %w", c.KeyID, err)
	}
	return nil
}

// OwnCalls returns the calls keyburn recorded making with keyID, by
// request ID.
func (s *Store) OwnCalls(ctx context.Context, keyID string) (map[string]OwnCall, error) {
	rows, err := s.query(ctx, `SELECT request_id, at FROM own_calls WHERE key_id = ?`, keyID)
	if err != nil {
		return nil, fmt.Errorf("read keyburn's own calls with %s: %w", keyID, err)
	}
	defer rows.Close()
	out := map[string]OwnCall{}
	for rows.Next() {
		var c OwnCall
		var at int64
		if err := rows.Scan(&c.RequestID, &at); err != nil {
			return nil, err
		}
		c.KeyID, c.At = keyID, time.Unix(at, 0)
		out[c.RequestID] = c
	}
	return out, rows.Err()
}

package store

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestBind(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`SELECT a FROM t WHERE b = ? AND c = ?`, `SELECT a FROM t WHERE b = $1 AND c = $2`},
		{`UPDATE t SET e = 'why? because' || ? WHERE id = ?`, `UPDATE t SET e = 'why? because' || $1 WHERE id = $2`},
		{`SELECT 1`, `SELECT 1`},
	} {
		if got := postgres.bind(tc.in); got != tc.want {
			t.Errorf("bind(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if got := sqlite.bind(tc.in); got != tc.in {
			t.Errorf("SQLite's bind changed %q to %q", tc.in, got)
		}
	}
}

// TestPostgresMigrations: every migration in PostgreSQL's words has none
// of SQLite's left in it.
func TestPostgresMigrations(t *testing.T) {
	for i := range migrations {
		m := postgres.migration(i)
		for _, sqliteOnly := range []string{"AUTOINCREMENT", "RAISE(ABORT", " INTEGER", "BLOB"} {
			if strings.Contains(m, sqliteOnly) {
				t.Errorf("migration %d for PostgreSQL holds %q", i+1, sqliteOnly)
			}
		}
	}
}

// TestMigrateTogether: processes that open one new database at once apply
// each migration once, and all of them open it.
func TestMigrateTogether(t *testing.T) {
	each(t, func(t *testing.T, where string) {
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for range 4 {
			wg.Go(func() {
				s, err := Open(where)
				if err == nil {
					s.Close()
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("open: %v", err)
			}
		}
		s := openAt(t, where)
		var v int
		if err := s.db.QueryRow(`SELECT version FROM schema_version`).Scan(&v); err != nil || v != len(migrations) {
			t.Errorf("schema version %d, %v; want %d", v, err, len(migrations))
		}
		var rows int
		if err := s.db.QueryRow(`SELECT COUNT(*) FROM schema_version`).Scan(&rows); err != nil || rows != 1 {
			t.Errorf("%d schema_version rows, %v", rows, err)
		}
	})
}

func TestDescribe(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://keyburn:pw@db.internal:5432/keyburn?sslmode=require": "postgres://keyburn@db.internal:5432/keyburn?sslmode=require",
		"postgresql://u@h/db":       "postgresql://u@h/db",
		"/var/lib/keyburn/state.db": "/var/lib/keyburn/state.db",
	} {
		if got := Describe(in); got != want {
			t.Errorf("Describe(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestClaimOnce: six processes (each a store of its own on the one
// database) claiming from one queue at once take every delivery exactly
// once.
func TestClaimOnce(t *testing.T) {
	each(t, func(t *testing.T, where string) {
		ctx := context.Background()
		s := openAt(t, where)
		const n = 30
		for i := range n {
			if err := s.Enqueue(ctx, Delivery{ID: fmt.Sprintf("d%02d", i), Event: "push", Payload: []byte("{}")}); err != nil {
				t.Fatal(err)
			}
		}
		claimedOnce(t, where, 6, n, func(w *Store) ([]string, error) {
			d, ok, err := w.Claim(ctx, time.Hour, 5)
			if !ok || err != nil {
				return nil, err
			}
			return []string{d.ID}, nil
		})
	})
}

// TestClaimDueDeletionsOnce: processes sharing one state each take a due
// deletion once; a released one, or one whose lease ran out (its holder
// died), is taken again.
func TestClaimDueDeletionsOnce(t *testing.T) {
	each(t, func(t *testing.T, where string) {
		ctx := context.Background()
		s := openAt(t, where)
		now := time.Now()
		const n = 20
		for i := range n {
			if _, err := s.ScheduleDeletion(ctx, Deletion{KeyID: fmt.Sprintf("AKIA%02d", i), Account: "1", UserName: "u", DueAt: now.Add(-time.Minute)}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.ScheduleDeletion(ctx, Deletion{KeyID: "AKIALATER", Account: "1", UserName: "u", DueAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		claimedOnce(t, where, 5, n, func(w *Store) ([]string, error) {
			ds, err := w.ClaimDueDeletions(ctx, now, time.Minute)
			var ids []string
			for _, d := range ds {
				ids = append(ids, d.KeyID)
			}
			return ids, err
		})
		if ds, _ := s.ClaimDueDeletions(ctx, now, time.Minute); len(ds) != 0 {
			t.Errorf("taken again while leased: %v", ds)
		}
		if err := s.ReleaseDeletion(ctx, "AKIA03"); err != nil {
			t.Fatal(err)
		}
		if ds, _ := s.ClaimDueDeletions(ctx, now, time.Minute); len(ds) != 1 || ds[0].KeyID != "AKIA03" {
			t.Errorf("after a release: %v", ds)
		}
		if ds, _ := s.ClaimDueDeletions(ctx, now.Add(2*time.Minute), time.Minute); len(ds) != n {
			t.Errorf("after the leases ran out: %d taken, want %d", len(ds), n)
		}
	})
}

// TestClaimNotificationsOnce: processes sharing one state each take a
// queued notification once; one sent is not taken again, one that failed
// is taken when due.
func TestClaimNotificationsOnce(t *testing.T) {
	each(t, func(t *testing.T, where string) {
		ctx := context.Background()
		s := openAt(t, where)
		now := time.Now()
		const n = 20
		for i := range n {
			if _, err := s.AddNotification(ctx, Notification{Target: "json:1", Body: []byte("{}"), Dedupe: fmt.Sprint(i)}, now); err != nil {
				t.Fatal(err)
			}
		}
		var all []Notification
		var mu sync.Mutex
		claimedOnce(t, where, 5, n, func(w *Store) ([]string, error) {
			ns, err := w.ClaimNotifications(ctx, now, time.Minute, 8)
			var ids []string
			mu.Lock()
			for _, n := range ns {
				ids = append(ids, fmt.Sprint(n.ID))
				all = append(all, n)
			}
			mu.Unlock()
			return ids, err
		})
		var ids []int64
		for _, n := range all {
			ids = append(ids, n.ID)
		}
		if err := s.NotificationSent(ctx, ids[0]); err != nil {
			t.Fatal(err)
		}
		if err := s.NotificationFailed(ctx, ids[1], "503", now, 5); err != nil {
			t.Fatal(err)
		}
		ns, _ := s.ClaimNotifications(ctx, now, time.Minute, 100)
		if len(ns) != 1 || ns[0].ID != ids[1] {
			t.Errorf("after one sent and one failed: %v, want only the failed one", ns)
		}
	})
}

// claimedOnce runs claim from k stores of their own on the state at where,
// all at once, and checks that together they took want things, each once.
// claim returns what one call took (none: that store is done).
func claimedOnce(t *testing.T, where string, k, want int, claim func(s *Store) ([]string, error)) {
	t.Helper()
	var mu sync.Mutex
	claimed := map[string]int{}
	var wg sync.WaitGroup
	for range k {
		w := openAt(t, where)
		wg.Go(func() {
			for range 2 * want { // bounded: more rounds than there are things
				got, err := claim(w)
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, id := range got {
					claimed[id]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(claimed) != want {
		t.Errorf("%d claimed, want %d: %v", len(claimed), want, claimed)
	}
	for id, c := range claimed {
		if c != 1 {
			t.Errorf("%s claimed %d times", id, c)
		}
	}
}

// TestLockKey: one holder at a time per key; its own renewal is taken, and
// another holder gets the key once the lock runs out or is given up, not
// before; giving up a lock another now holds leaves it theirs.
func TestLockKey(t *testing.T) {
	each(t, func(t *testing.T, where string) {
		ctx := context.Background()
		a, b := openAt(t, where), openAt(t, where)
		now := time.Now()
		for _, step := range []struct {
			s      *Store
			holder string
			at     time.Duration
			want   bool
		}{
			{a, "A", 0, true},
			{b, "B", 0, false},
			{a, "A", time.Second, true}, // renewed to 1m1s
			{b, "B", 59 * time.Second, false},
			{b, "B", 62 * time.Second, true}, // A's ran out
			{a, "A", 62 * time.Second, false},
		} {
			got, err := step.s.LockKey(ctx, "AKIAKEY", step.holder, now.Add(step.at), time.Minute)
			if err != nil || got != step.want {
				t.Fatalf("%s at %v: %v, %v; want %v", step.holder, step.at, got, err, step.want)
			}
		}
		if err := a.UnlockKey(ctx, "AKIAKEY", "A"); err != nil {
			t.Fatal(err)
		}
		if got, _ := a.LockKey(ctx, "AKIAKEY", "A", now.Add(63*time.Second), time.Minute); got {
			t.Error("A's unlock gave up B's lock")
		}
		if err := b.UnlockKey(ctx, "AKIAKEY", "B"); err != nil {
			t.Fatal(err)
		}
		if got, _ := a.LockKey(ctx, "AKIAKEY", "A", now.Add(63*time.Second), time.Minute); !got {
			t.Error("after B's unlock, A could not lock")
		}
	})
}

package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyburn/keyburn/internal/pgtest"
)

func open(t *testing.T) (*Store, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "state.db")
	return openAt(t, p), p
}

// openAt opens the state at where (a path or a URL), closed at the end.
func openAt(t *testing.T, where string) *Store {
	t.Helper()
	s, err := Open(where)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// each runs test on both backends, from the same table of cases: a SQLite
// file and a PostgreSQL database (pgtest's throwaway cluster).
func each(t *testing.T, test func(t *testing.T, where string)) {
	t.Run("sqlite", func(t *testing.T) { test(t, filepath.Join(t.TempDir(), "state.db")) })
	t.Run("postgres", func(t *testing.T) { test(t, pgtest.URL(t)) })
}

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Stop()
	os.Exit(code)
}

// TestNewStateIsPrivate: a new state file is its owner's alone.
func TestNewStateIsPrivate(t *testing.T) {
	_, p := open(t)
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("state file mode %v, want 0600", perm)
	}
}

func TestVerdictCache(t *testing.T) {
	each(t, func(t *testing.T, where string) {
		s := openAt(t, where)
		ctx := context.Background()
		v := Verdict{KeyID: "AKIAROSDW5AABZW3VLYZ", SecretSHA256: "ab", Status: "live", ARN: "arn:aws:iam::1:user/a", CheckedAt: time.Now()}
		if err := s.PutVerdict(ctx, v); err != nil {
			t.Fatal(err)
		}
		got, ok, err := s.GetVerdict(ctx, v.KeyID, "ab", time.Hour)
		if err != nil || !ok || got.Status != "live" || got.ARN != v.ARN {
			t.Fatalf("GetVerdict = %+v, %v, %v", got, ok, err)
		}
		if _, ok, _ := s.GetVerdict(ctx, v.KeyID, "ab", -time.Second); ok {
			t.Errorf("an expired verdict was returned")
		}
		if _, ok, _ := s.GetVerdict(ctx, v.KeyID, "cd", time.Hour); ok {
			t.Errorf("a verdict for another secret was returned")
		}
		v.Status = "invalid"
		if err := s.PutVerdict(ctx, v); err != nil {
			t.Fatal(err)
		}
		if got, _, _ := s.GetVerdict(ctx, v.KeyID, "ab", time.Hour); got.Status != "invalid" {
			t.Errorf("PutVerdict did not replace: %+v", got)
		}
	})
}

func TestAuditAppendOnly(t *testing.T) {
	each(t, func(t *testing.T, p string) {
		s := openAt(t, p)
		ctx := context.Background()
		for _, a := range []string{"owner-check", "deactivate", "delete"} {
			if err := s.Audit(ctx, AuditRecord{Actor: "arn:aws:iam::1:user/responder", Action: a, KeyID: "AKIAROSDW5AABZW3VLYZ", Outcome: "ok"}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.exec(ctx, `UPDATE audit SET outcome = 'forged'`); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("UPDATE on the audit log: %v, want refused", err)
		}
		if _, err := s.exec(ctx, `DELETE FROM audit`); err == nil {
			t.Errorf("DELETE on the audit log succeeded")
		}
		s.Close()
		// Reopening keeps the log and does not rerun migrations.
		s2, err := Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer s2.Close()
		log, err := s2.AuditLog(ctx, "")
		if err != nil || len(log) != 3 || log[2].Action != "delete" || log[0].At.IsZero() {
			t.Errorf("AuditLog = %+v, %v", log, err)
		}
	})
}

func TestDueDeletions(t *testing.T) {
	each(t, func(t *testing.T, where string) {
		s := openAt(t, where)
		ctx := context.Background()
		now := time.Now().Truncate(time.Second)
		for _, d := range []Deletion{
			{KeyID: "A", Account: "1", UserName: "u", DueAt: now.Add(-time.Minute)},
			{KeyID: "B", Account: "1", UserName: "u", DueAt: now.Add(time.Hour)},
		} {
			if due, err := s.ScheduleDeletion(ctx, d); err != nil || !due.Equal(d.DueAt) {
				t.Fatalf("ScheduleDeletion(%s) = %v, %v", d.KeyID, due, err)
			}
		}
		// Scheduling again keeps the first due time: a later scan does not
		// push the deletion back.
		if due, err := s.ScheduleDeletion(ctx, Deletion{KeyID: "B", Account: "1", UserName: "u", DueAt: now.Add(5 * time.Hour)}); err != nil || !due.Equal(now.Add(time.Hour)) {
			t.Errorf("second ScheduleDeletion = %v, %v; want the first due time %v", due, err, now.Add(time.Hour))
		}
		due, err := s.DueDeletions(ctx, now)
		if err != nil || len(due) != 1 || due[0].KeyID != "A" {
			t.Fatalf("DueDeletions = %+v, %v", due, err)
		}
		if pending, err := s.PendingDeletions(ctx); err != nil || len(pending) != 2 || pending[1].KeyID != "B" || !pending[1].DueAt.Equal(now.Add(time.Hour)) {
			t.Errorf("PendingDeletions = %+v, %v", pending, err)
		}
		if err := s.Unschedule(ctx, "A"); err != nil {
			t.Fatal(err)
		}
		if due, _ := s.DueDeletions(ctx, now.Add(2*time.Hour)); len(due) != 1 || due[0].KeyID != "B" {
			t.Errorf("after Unschedule: %+v", due)
		}
	})
}

// TestVerdictValidUntil: a verdict with an end of its own (a revoked
// session token) holds until then, whatever the cache's age limit; the
// first check's time survives updates.
func TestVerdictValidUntil(t *testing.T) {
	each(t, func(t *testing.T, where string) {
		s := openAt(t, where)
		ctx := context.Background()
		first := time.Now().Add(-3 * time.Hour).Truncate(time.Second)
		v := Verdict{KeyID: "ASIAROSDW5AABZW3VLYZ", SecretSHA256: "ab", Status: "live", CheckedAt: first}
		if err := s.PutVerdict(ctx, v); err != nil {
			t.Fatal(err)
		}
		v.Status, v.CheckedAt, v.ValidUntil = "revoked", time.Now(), time.Now().Add(2*time.Hour)
		if err := s.PutVerdict(ctx, v); err != nil {
			t.Fatal(err)
		}
		if got, ok, err := s.GetVerdict(ctx, v.KeyID, "ab", time.Second); err != nil || !ok || got.Status != "revoked" {
			t.Errorf("a verdict valid for 2 hours, read with a 1 s age limit: %+v, %v, %v", got, ok, err)
		}
		if got, err := s.FirstChecked(ctx, v.KeyID); err != nil || !got.Equal(first) {
			t.Errorf("FirstChecked = %v, %v; want %v", got, err, first)
		}
		v.ValidUntil = time.Now().Add(-time.Minute)
		s.PutVerdict(ctx, v)
		if _, ok, _ := s.GetVerdict(ctx, v.KeyID, "ab", time.Hour); ok {
			t.Errorf("a verdict past its end was returned")
		}
		if got, _ := s.FirstChecked(ctx, "ASIANEVERSEENNEVER00"); !got.IsZero() {
			t.Errorf("FirstChecked of an unknown key = %v, want zero", got)
		}
	})
}

func TestRevocations(t *testing.T) {
	each(t, func(t *testing.T, where string) {
		s := openAt(t, where)
		ctx := context.Background()
		now := time.Now().Truncate(time.Second)
		r := Revocation{KeyID: "ASIAROSDW5AABZW3VLYZ", Account: "123456789012", Role: "deploy", RevokedAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := s.PutRevocation(ctx, r); err != nil {
			t.Fatal(err)
		}
		got, ok, err := s.GetRevocation(ctx, r.KeyID)
		if err != nil || !ok || got != r {
			t.Errorf("GetRevocation = %+v, %v, %v; want %+v", got, ok, err, r)
		}
		if _, ok, _ := s.GetRevocation(ctx, "ASIAOTHER"); ok {
			t.Errorf("a revocation for another key was returned")
		}
	})
}

func TestQueue(t *testing.T) {
	each(t, func(t *testing.T, p string) {
		s := openAt(t, p)
		ctx := context.Background()
		if err := s.Enqueue(ctx, Delivery{ID: "d1", Event: "push", Payload: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
		if err := s.Enqueue(ctx, Delivery{ID: "d1", Event: "push", Payload: []byte(`{}`)}); err != ErrDuplicate {
			t.Errorf("second Enqueue = %v, want ErrDuplicate", err)
		}
		d, ok, err := s.Claim(ctx, time.Hour, 3)
		if err != nil || !ok || d.ID != "d1" || d.Attempts != 1 || d.Handle == "" {
			t.Fatalf("Claim = %+v, %v, %v", d, ok, err)
		}
		if _, ok, _ := s.Claim(ctx, time.Hour, 3); ok {
			t.Errorf("a leased delivery was claimed twice")
		}
		// A worker that dies leaves its lease to run out: the delivery comes back.
		s.Close()
		s2, err := Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer s2.Close()
		if _, err := s2.exec(ctx, `UPDATE deliveries SET lease_until = 0`); err != nil {
			t.Fatal(err)
		}
		stale := d
		d, ok, _ = s2.Claim(ctx, time.Hour, 3)
		if !ok || d.Attempts != 2 {
			t.Fatalf("after a lost lease: %+v, %v", d, ok)
		}
		// The first worker, back from the dead, no longer holds the lease.
		for name, err := range map[string]error{"Finish": s2.Finish(ctx, stale), "Fail": s2.Fail(ctx, stale, "x", 0, 3), "Renew": s2.Renew(ctx, stale, time.Hour)} {
			if !errors.Is(err, ErrLeaseLost) {
				t.Errorf("%s with a lost lease = %v, want ErrLeaseLost", name, err)
			}
		}
		if err := s2.Renew(ctx, d, time.Hour); err != nil {
			t.Errorf("Renew by the holder: %v", err)
		}
		if err := s2.Fail(ctx, d, "clone failed: boom", -time.Second, 3); err != nil {
			t.Fatal(err)
		}
		d, ok, _ = s2.Claim(ctx, time.Hour, 3)
		if !ok || d.Attempts != 3 || d.LastError != "clone failed: boom" {
			t.Fatalf("retry: %+v, %v", d, ok)
		}
		s2.Fail(ctx, d, "clone failed again", -time.Second, 3)
		if _, ok, _ := s2.Claim(ctx, time.Hour, 3); ok {
			t.Errorf("a parked delivery was claimed")
		}
		got, _ := s2.GetDelivery(ctx, "d1")
		depth, _ := s2.QueueDepth(ctx)
		if got.Status != Parked || got.LastError != "clone failed again" || depth[Parked] != 1 {
			t.Errorf("parked: %+v, depth %v", got, depth)
		}
	})
}

// TestClaimParksAWorkerKiller: a delivery whose worker dies on it (its lease
// expires) on every attempt is parked by Claim, with the reason, instead of
// being retried forever.
func TestClaimParksAWorkerKiller(t *testing.T) {
	each(t, func(t *testing.T, where string) {
		s := openAt(t, where)
		ctx := context.Background()
		s.Enqueue(ctx, Delivery{ID: "boom", Event: "push", Payload: []byte(`{}`)})
		for i := range 3 {
			d, ok, err := s.Claim(ctx, -time.Second, 3) // the lease expires at once: the worker "died"
			if err != nil || !ok || d.Attempts != i+1 {
				t.Fatalf("claim %d: %+v, %v, %v", i+1, d, ok, err)
			}
		}
		if d, ok, _ := s.Claim(ctx, time.Hour, 3); ok {
			t.Fatalf("claimed a fourth time: %+v", d)
		}
		got, _ := s.GetDelivery(ctx, "boom")
		if got.Status != Parked || !strings.Contains(got.LastError, "worker stopped") {
			t.Errorf("after 3 dead workers: %+v, want parked with the reason", got)
		}
	})
}

// TestReleaseAndReplay: a delivery released at shutdown comes back at once
// without an attempt counted; a push replayed under a new delivery ID is a
// duplicate.
func TestReleaseAndReplay(t *testing.T) {
	each(t, func(t *testing.T, where string) {
		s := openAt(t, where)
		ctx := context.Background()
		key := "acme/hello refs/heads/main 1111 2222"
		if err := s.Enqueue(ctx, Delivery{ID: "a", Event: "push", Payload: []byte(`{}`), DedupeKey: key}); err != nil {
			t.Fatal(err)
		}
		if err := s.Enqueue(ctx, Delivery{ID: "b", Event: "push", Payload: []byte(`{}`), DedupeKey: key}); err != ErrDuplicate {
			t.Errorf("a replayed push under a new ID: %v, want ErrDuplicate", err)
		}
		if err := s.Enqueue(ctx, Delivery{ID: "c", Event: "ping", Payload: []byte(`{}`)}); err != nil {
			t.Errorf("deliveries without a dedupe key: %v", err)
		}
		if err := s.Enqueue(ctx, Delivery{ID: "d", Event: "ping", Payload: []byte(`{}`)}); err != nil {
			t.Errorf("a second delivery without a dedupe key: %v", err)
		}
		d, _, _ := s.Claim(ctx, time.Hour, 3)
		if err := s.Release(ctx, d); err != nil {
			t.Fatal(err)
		}
		for range 3 { // a, c and d are queued: a comes back among them
			again, ok, _ := s.Claim(ctx, time.Hour, 3)
			if !ok {
				t.Fatalf("after Release: %s never came back", d.ID)
			}
			if again.ID == d.ID {
				if again.Attempts != 1 {
					t.Errorf("after Release: attempt %d, want 1 (a release is not an attempt)", again.Attempts)
				}
				return
			}
		}
		t.Errorf("after Release: %s never came back", d.ID)
	})
}

// TestParkedAndRequeued: parked deliveries are listed, and requeued by ID
// or all at once, attempts afresh; a delivery not parked is left alone.
func TestParkedAndRequeued(t *testing.T) {
	each(t, func(t *testing.T, where string) {
		ctx := context.Background()
		st := openAt(t, where)
		for _, id := range []string{"a", "b", "c"} {
			if err := st.Enqueue(ctx, Delivery{ID: id, Event: "push", Payload: []byte("{}"), DedupeKey: "push " + id}); err != nil {
				t.Fatal(err)
			}
		}
		for range 2 { // a and b fail twice each and are parked; c is left queued
			for _, want := range []string{"a", "b"} {
				d, ok, err := st.Claim(ctx, time.Minute, 2)
				if err != nil || !ok {
					t.Fatal(ok, err)
				}
				for i := 0; d.ID != want; i++ { // claims go by due time: give back the others
					if i == 10 {
						t.Fatalf("never claimed %s", want)
					}
					st.Release(ctx, d)
					if d, ok, err = st.Claim(ctx, time.Minute, 2); err != nil || !ok {
						t.Fatal(ok, err)
					}
				}
				if err := st.Fail(ctx, d, "boom", 0, 2); err != nil {
					t.Fatal(err)
				}
			}
		}
		parked, err := st.Parked(ctx)
		if err != nil || len(parked) != 2 || parked[0].LastError != "boom" {
			t.Fatalf("Parked = %+v, %v; want a and b", parked, err)
		}
		if n, err := st.Requeue(ctx, parked[0].ID, "c", "nope"); err != nil || n != 1 {
			t.Errorf("Requeue(one parked, one queued, one unknown) = %d, %v; want 1", n, err)
		}
		if n, err := st.Requeue(ctx); err != nil || n != 1 {
			t.Errorf("Requeue(all) = %d, %v; want the other one", n, err)
		}
		for _, id := range []string{"a", "b", "c"} {
			if d, _ := st.GetDelivery(ctx, id); d.Status != Queued {
				t.Errorf("%s is %s after requeueing, want queued", id, d.Status)
			} else if id != "c" && (d.Attempts != 0 || !strings.Contains(d.LastError, "requeued by hand; before: boom")) {
				t.Errorf("%s: %+v", id, d)
			}
		}
		if err := st.Enqueue(ctx, Delivery{ID: "a", Event: "push", Payload: []byte("{}")}); !errors.Is(err, ErrDuplicate) {
			t.Errorf("a redelivery of a queued delivery: %v, want ErrDuplicate", err)
		}
	})
}

// TestPark: a delivery parked at once is listed with its reason and
// payload, is never claimed until requeued, and parking it again changes
// nothing.
func TestPark(t *testing.T) {
	each(t, func(t *testing.T, where string) {
		ctx := context.Background()
		st := openAt(t, where)
		d := Delivery{ID: "aws-notice:m1", Event: "aws-notice", Payload: []byte(`{"x":1}`), Attempts: 3}
		if err := st.Park(ctx, d, "malformed: no key"); err != nil {
			t.Fatal(err)
		}
		if err := st.Park(ctx, d, "again"); err != nil {
			t.Fatal(err)
		}
		parked, err := st.Parked(ctx)
		if err != nil || len(parked) != 1 || parked[0].LastError != "malformed: no key" || parked[0].Attempts != 3 {
			t.Fatalf("Parked = %+v, %v; want one, with its first reason", parked, err)
		}
		if _, ok, err := st.Claim(ctx, time.Minute, 5); ok || err != nil {
			t.Fatalf("Claim of a parked delivery: %v, %v", ok, err)
		}
		if n, err := st.Requeue(ctx, d.ID); n != 1 || err != nil {
			t.Fatalf("Requeue = %d, %v", n, err)
		}
		got, ok, err := st.Claim(ctx, time.Minute, 5)
		if !ok || err != nil || got.ID != d.ID || string(got.Payload) != `{"x":1}` || got.Event != "aws-notice" {
			t.Fatalf("Claim after requeue = %+v, %v, %v", got, ok, err)
		}
	})
}

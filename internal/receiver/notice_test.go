package receiver

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/keyburn/keyburn/internal/awstest"
	"github.com/keyburn/keyburn/internal/pgtest"
	"github.com/keyburn/keyburn/internal/store"
)

// TestAWSNoticeDeletesKey: a Health event on an SQS queue (moto) ends in
// the key's deletion by the running receiver, with its audit trail and
// one log line; another event on the queue is dropped, a malformed one
// parked in the state; the queue is left empty.
func TestAWSNoticeDeletesKey(t *testing.T) {
	m, front, _ := receiverWorld(t)
	ctx := context.Background()
	keyID, _ := m.UserKey(t, "leaky")
	if _, err := m.IAM().AttachUserPolicy(ctx, &iam.AttachUserPolicyInput{UserName: aws.String("leaky"),
		PolicyArn: aws.String("arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV3")}); err != nil {
		t.Fatal(err)
	}
	q := m.NewQueue(t, "health",
		awstest.HealthNotice("123456789012", keyID),
		`{"version":"0","id":"g-1","detail-type":"GuardDuty Finding","source":"aws.guardduty","account":"123456789012","detail":{}}`,
		strings.Replace(awstest.HealthNotice("123456789012", keyID), `"entityValue":"`+keyID+`"`, `"entityValue":"nothing"`, 1))
	url := q.URL
	defer func(w time.Duration) { noticeWait = w }(noticeWait)
	noticeWait = time.Second
	state := filepath.Join(t.TempDir(), "state.db")
	queueEmpty := func() bool { v, f := q.Count(t); return v == "0" && f == "0" }
	log := runUntil(t, []string{"--listen", freeAddr(t), "--state", state, "--workers", "1", "--mirrors", t.TempDir(),
		"--respond=delete", "--aws-endpoint", front.URL, "--aws-notices", url}, func() bool {
		return m.KeyStatus(t, "leaky", keyID) == "" && queueEmpty()
	})
	st, err := store.Open(state)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	audit, err := st.AuditLog(ctx, keyID)
	if err != nil {
		t.Fatal(err)
	}
	var steps []string
	for _, r := range audit {
		steps = append(steps, r.Action+":"+r.Outcome)
	}
	for _, want := range []string{"vouch:ok", "deactivate:ok", "delete:ok"} {
		if !slices.Contains(steps, want) {
			t.Errorf("audit %v: want %s\n%s", steps, want, log)
		}
	}
	found := logLines(t, log, "key found")
	if len(found) != 1 || found[0]["key_id"] != keyID || found[0]["verdict"] != "exposed" || found[0]["action"] != "deleted" ||
		found[0]["repo"] != "aws:123456789012" {
		t.Errorf("key found lines %v: want one, exposed and deleted\n%s", found, log)
	}
	if d := logLines(t, log, "notice dropped"); len(d) != 1 || !strings.Contains(fmt.Sprint(d[0]["reason"]), "aws.guardduty") {
		t.Errorf("notice dropped lines %v: want the GuardDuty event's", d)
	}
	parked, err := st.Parked(ctx)
	if err != nil || len(parked) != 1 || parked[0].Event != "aws-notice" || !strings.Contains(parked[0].LastError, "no access key ID") {
		t.Errorf("parked %+v, %v: want the malformed notice, with why", parked, err)
	}
	if strings.Contains(log, "AWSCompromisedKeyQuarantineV3") == false {
		t.Errorf("the log does not name AWS's quarantine policy:\n%s", log)
	}
}

// TestAWSNoticesFleet: two receivers sharing one PostgreSQL state read one
// notices queue (moto); every notice's key is deleted exactly once, one
// audit trail per key whichever receiver acted, even when a notice is
// delivered twice (SQS delivers at least once).
func TestAWSNoticesFleet(t *testing.T) {
	m, front, _ := receiverWorld(t)
	url := pgtest.Private(t)
	var keys []string
	var bodies []string
	for i := range 5 {
		id, _ := m.UserKey(t, fmt.Sprintf("fleet%d", i))
		keys = append(keys, id)
		bodies = append(bodies, awstest.HealthNotice("123456789012", id))
	}
	bodies = append(bodies, awstest.HealthNotice("123456789012", keys[0])) // a second delivery of the first
	q := m.NewQueue(t, "fleet-health", bodies...)
	defer func(w time.Duration) { noticeWait = w }(noticeWait)
	noticeWait = time.Second
	ctx, cancel := context.WithCancel(context.Background())
	var logs [2]syncBuffer
	errc := make(chan error, 2)
	for i := range 2 {
		go func() {
			errc <- run(ctx, []string{"--listen", freeAddr(t), "--state", url, "--workers", "1", "--mirrors", t.TempDir(),
				"--respond=delete", "--aws-endpoint", front.URL, "--aws-notices", q.URL}, io.Discard, &logs[i])
		}()
	}
	done := false
	for range 300 { // up to 30 s
		done = true
		for i, id := range keys {
			if m.KeyStatus(t, fmt.Sprintf("fleet%d", i), id) != "" {
				done = false
			}
		}
		if v, f := q.Count(t); done && v == "0" && f == "0" {
			break
		}
		done = false
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	for range 2 {
		if err := <-errc; err != nil {
			t.Errorf("receiver: %v", err)
		}
	}
	if !done {
		t.Fatalf("not every key deleted and the queue emptied in 30 s\n%s\n%s", logs[0].String(), logs[1].String())
	}
	st, err := store.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	acted := [2]int{}
	for r := range 2 {
		acted[r] = len(logLines(t, logs[r].String(), "key acted on"))
	}
	for _, id := range keys {
		log, err := st.AuditLog(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		deletes := 0
		for _, rec := range log {
			if rec.Action == "delete" && rec.Outcome == "ok" {
				deletes++
			}
		}
		if deletes != 1 {
			t.Errorf("key %s: %d deletions in its audit trail, want 1", id, deletes)
		}
	}
	if acted[0]+acted[1] != len(keys) {
		t.Errorf("'key acted on' lines: %d and %d, want %d in all", acted[0], acted[1], len(keys))
	}
}

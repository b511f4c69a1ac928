package sqsqueue

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/keyburn/keyburn/internal/awstest"
	"github.com/keyburn/keyburn/internal/store"
)

// TestQueueMoto runs the queue against moto's SQS: FIFO deduplication,
// retry, parking with the reason, and deletion when done.
func TestQueueMoto(t *testing.T) {
	m := awstest.Start(t)
	ctx := context.Background()
	api := sqs.New(sqs.Options{Region: "us-east-1", Credentials: m.AdminProvider(), BaseEndpoint: aws.String(m.URL)})
	mk := func(name string) string {
		t.Helper()
		attrs := map[string]string{}
		if len(name) > 5 && name[len(name)-5:] == ".fifo" {
			attrs["FifoQueue"] = "true"
		}
		out, err := api.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
		if err != nil {
			t.Fatalf("create queue %s: %v", name, err)
		}
		return aws.ToString(out.QueueUrl)
	}
	q := New(api, mk("deliveries.fifo"), mk("parked"))
	q.Wait = 0

	d := store.Delivery{ID: "d1", Event: "push", Payload: []byte(`{"ref":"refs/heads/main"}`)}
	for range 2 { // a redelivery: SQS keeps one
		if err := q.Enqueue(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	got, ok, err := q.Claim(ctx, time.Minute, 5)
	if err != nil || !ok || got.ID != "d1" || string(got.Payload) != string(d.Payload) || got.Attempts != 1 {
		t.Fatalf("Claim = %+v, %v, %v", got, ok, err)
	}
	if err := q.Fail(ctx, got, "fetch failed", 0, 2); err != nil {
		t.Fatal(err)
	}
	got, ok, err = q.Claim(ctx, time.Minute, 5)
	if err != nil || !ok || got.Attempts != 2 {
		t.Fatalf("retry: %+v, %v, %v", got, ok, err)
	}
	if err := q.Fail(ctx, got, "fetch failed again", 0, 2); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := q.Claim(ctx, time.Minute, 5); ok {
		t.Errorf("a parked delivery is still queued (or the redelivery was kept)")
	}
	out, err := api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.dlq)})
	if err != nil || len(out.Messages) != 1 {
		t.Fatalf("dead-letter queue: %v, %v", out, err)
	}
	var parked message
	json.Unmarshal([]byte(aws.ToString(out.Messages[0].Body)), &parked)
	if parked.ID != "d1" || parked.Reason != "fetch failed again" {
		t.Errorf("parked = %+v", parked)
	}

	if err := q.Enqueue(ctx, store.Delivery{ID: "d2", Event: "push", Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	got, ok, _ = q.Claim(ctx, time.Minute, 5)
	if !ok || got.ID != "d2" {
		t.Fatalf("Claim d2 = %+v, %v", got, ok)
	}
	if err := q.Finish(ctx, got); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := q.Claim(ctx, time.Minute, 5); ok {
		t.Errorf("a finished delivery came back")
	}
	// A delivery whose workers die on it (here: give it back at once) is
	// parked once received more than maxAttempts times.
	if err := q.Enqueue(ctx, store.Delivery{ID: "killer", Event: "push", Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		got, ok, err := q.Claim(ctx, time.Minute, 2)
		if err != nil || !ok || got.ID != "killer" {
			t.Fatalf("claim %d of the killer: %+v, %v, %v", i+1, got, ok, err)
		}
		if err := q.Release(ctx, got); err != nil {
			t.Fatal(err)
		}
	}
	if got, ok, err := q.Claim(ctx, time.Minute, 2); ok || err == nil || !strings.Contains(err.Error(), "parked") {
		t.Errorf("third claim of the killer: %+v, %v, %v; want it parked", got, ok, err)
	}
	// A push replayed under a new delivery ID: the FIFO queue keeps one.
	for _, id := range []string{"r1", "r2"} {
		if err := q.Enqueue(ctx, store.Delivery{ID: id, Event: "push", Payload: []byte(`{}`), DedupeKey: "acme/x refs/heads/main a b"}); err != nil {
			t.Fatal(err)
		}
	}
	if got, ok, _ := q.Claim(ctx, time.Minute, 5); !ok || got.ID != "r1" {
		t.Fatalf("Claim r1 = %+v, %v", got, ok)
	} else {
		q.Finish(ctx, got)
	}
	if got, ok, _ := q.Claim(ctx, time.Minute, 5); ok {
		t.Errorf("the replayed push was queued: %+v", got)
	}

	big := store.Delivery{ID: "big", Event: "push", Payload: make([]byte, maxMessage)}
	if err := q.Enqueue(ctx, big); err == nil {
		t.Errorf("an oversize delivery was sent")
	}
}

// TestRawMoto: a queue others write to yields each message's body as a
// payload; it refuses to be written to; a delivery that fails its last
// attempt is handed to park and deleted, or, when park fails, kept.
func TestRawMoto(t *testing.T) {
	m := awstest.Start(t)
	ctx := context.Background()
	api := sqs.New(sqs.Options{Region: "us-east-1", Credentials: m.AdminProvider(), BaseEndpoint: aws.String(m.URL)})
	out, err := api.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("notices")})
	if err != nil {
		t.Fatal(err)
	}
	url := aws.ToString(out.QueueUrl)
	var parked []string
	parkErr := errors.New("state down")
	failPark := true
	q := Raw(api, url, "aws-notice", func(_ context.Context, d store.Delivery, reason string) error {
		if failPark {
			return parkErr
		}
		parked = append(parked, d.ID+" "+reason+" "+string(d.Payload))
		return nil
	})
	q.Wait = 0
	if err := q.Enqueue(ctx, store.Delivery{ID: "x"}); err == nil {
		t.Error("Enqueue on a raw queue: want an error")
	}
	sent, err := api.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(`{"source":"aws.health"}`)})
	if err != nil {
		t.Fatal(err)
	}
	id := "aws-notice:" + aws.ToString(sent.MessageId)
	d, ok, err := q.Claim(ctx, time.Minute, 5)
	if err != nil || !ok || d.ID != id || d.Event != "aws-notice" || string(d.Payload) != `{"source":"aws.health"}` {
		t.Fatalf("Claim = %+v, %v, %v", d, ok, err)
	}
	if err := q.Fail(ctx, d, "malformed", 0, 1); !errors.Is(err, parkErr) {
		t.Fatalf("Fail with park failing = %v, want its error", err)
	}
	if err := q.Release(ctx, d); err != nil {
		t.Fatal(err)
	}
	d, ok, err = q.Claim(ctx, time.Minute, 5)
	if err != nil || !ok || d.ID != id {
		t.Fatalf("a message park could not keep is lost: %+v, %v, %v", d, ok, err)
	}
	failPark = false
	if err := q.Fail(ctx, d, "malformed", 0, 1); err != nil {
		t.Fatal(err)
	}
	if len(parked) != 1 || parked[0] != id+` malformed {"source":"aws.health"}` {
		t.Errorf("parked %q", parked)
	}
	if _, ok, _ := q.Claim(ctx, time.Minute, 5); ok {
		t.Error("a parked message is still on the queue")
	}
}

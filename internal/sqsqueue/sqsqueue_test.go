package sqsqueue

import (
	"context"
	"encoding/json"
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
	got, ok, err := q.Claim(ctx, time.Minute)
	if err != nil || !ok || got.ID != "d1" || string(got.Payload) != string(d.Payload) || got.Attempts != 1 {
		t.Fatalf("Claim = %+v, %v, %v", got, ok, err)
	}
	if err := q.Fail(ctx, got, "fetch failed", 0, 2); err != nil {
		t.Fatal(err)
	}
	got, ok, err = q.Claim(ctx, time.Minute)
	if err != nil || !ok || got.Attempts != 2 {
		t.Fatalf("retry: %+v, %v, %v", got, ok, err)
	}
	if err := q.Fail(ctx, got, "fetch failed again", 0, 2); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := q.Claim(ctx, time.Minute); ok {
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
	got, ok, _ = q.Claim(ctx, time.Minute)
	if !ok || got.ID != "d2" {
		t.Fatalf("Claim d2 = %+v, %v", got, ok)
	}
	if err := q.Finish(ctx, got); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := q.Claim(ctx, time.Minute); ok {
		t.Errorf("a finished delivery came back")
	}
	big := store.Delivery{ID: "big", Event: "push", Payload: make([]byte, maxMessage)}
	if err := q.Enqueue(ctx, big); err == nil {
		t.Errorf("an oversize delivery was sent")
	}
}

// Package sqsqueue keeps webhook deliveries in Amazon SQS, for a fleet of
// receivers and workers on several machines (the SQLite store serves one).
//
// A message's body is the delivery as JSON. On a FIFO queue (its URL ends in
// .fifo) SQS drops redeliveries itself: the deduplication ID is GitHub's
// delivery ID. A claimed message stays invisible for the lease; a worker that
// dies leaves it to reappear. A failed delivery is made visible again after a
// backoff; once it has been received maxAttempts times it is parked: sent,
// with the reason, to the dead-letter queue when one is set, and deleted.
package sqsqueue

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/keyburn/keyburn/internal/store"
)

// ErrParked is wrapped by Claim's error for a message it parked instead of
// handing it out (received too often): nothing is wrong with the queue.
var ErrParked = errors.New("parked")

// maxMessage is SQS's limit on a message body.
const maxMessage = 256 << 10

// API is the SQS calls the queue makes.
type API interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, opts ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessage(ctx context.Context, in *sqs.DeleteMessageInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error)
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, opts ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
}

// Queue is an SQS queue of deliveries. It is safe for concurrent use.
type Queue struct {
	api  API
	url  string
	dlq  string // dead-letter queue URL; empty: parked deliveries are only dropped with a log
	fifo bool
	// Wait is how long a Claim waits for a message (long polling).
	Wait time.Duration

	// A raw queue is written by others (EventBridge): a message's body is
	// a delivery's payload, of event rawEvent.
	rawEvent string
	park     func(ctx context.Context, d store.Delivery, reason string) error
}

// New returns a Queue for the queue at url, with an optional dead-letter
// queue.
func New(api API, url, dlq string) *Queue {
	return &Queue{api: api, url: url, dlq: dlq, fifo: strings.HasSuffix(url, ".fifo"), Wait: time.Second}
}

// Raw returns a Queue over a queue others write to, such as the one
// EventBridge sends AWS's notices to: each message's body is the payload
// of a delivery of event, whose ID is event:MessageId. Such a queue is
// only read (Enqueue fails). A delivery that fails too often, or can
// never be processed, is handed to park (the state's parked deliveries,
// where 'keyburn scan audit' lists it), then deleted; one that park could
// not keep stays on the queue.
func Raw(api API, url, event string, park func(ctx context.Context, d store.Delivery, reason string) error) *Queue {
	return &Queue{api: api, url: url, rawEvent: event, park: park, Wait: time.Second}
}

type message struct {
	ID      string `json:"id"`
	Event   string `json:"event"`
	Payload []byte `json:"payload"`
	Reason  string `json:"reason,omitempty"`
}

// Enqueue sends a delivery. Its payload must fit in an SQS message: store
// the fields the worker needs, not GitHub's whole body.
func (q *Queue) Enqueue(ctx context.Context, d store.Delivery) error {
	if q.rawEvent != "" {
		return fmt.Errorf("delivery %s: %s is read only (others write to it)", d.ID, q.url)
	}
	body, err := json.Marshal(message{ID: d.ID, Event: d.Event, Payload: d.Payload})
	if err != nil {
		return err
	}
	if len(body) > maxMessage {
		return fmt.Errorf("delivery %s: %d bytes, over SQS's %d-byte limit", d.ID, len(body), maxMessage)
	}
	in := &sqs.SendMessageInput{QueueUrl: aws.String(q.url), MessageBody: aws.String(string(body))}
	if q.fifo {
		// SQS drops a second message with the same deduplication ID sent
		// within 5 minutes: the delivery ID, or the push itself (a replay
		// under a new ID), hashed to fit SQS's 128 characters.
		dedupe := d.ID
		if d.DedupeKey != "" {
			sum := sha256.Sum256([]byte(d.DedupeKey))
			dedupe = hex.EncodeToString(sum[:])
		}
		in.MessageDeduplicationId = aws.String(dedupe)
		in.MessageGroupId = aws.String(d.ID)
	}
	if _, err := q.api.SendMessage(ctx, in); err != nil {
		return fmt.Errorf("send delivery %s to SQS: %w", d.ID, err)
	}
	return nil
}

// Claim receives one delivery, invisible to others for lease. A message
// received more than maxAttempts times (its workers died on it) is parked.
func (q *Queue) Claim(ctx context.Context, lease time.Duration, maxAttempts int) (store.Delivery, bool, error) {
	out, err := q.api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(q.url), MaxNumberOfMessages: 1,
		VisibilityTimeout: int32(max(1, lease/time.Second)), WaitTimeSeconds: int32(q.Wait / time.Second),
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameApproximateReceiveCount},
	})
	if err != nil {
		return store.Delivery{}, false, fmt.Errorf("receive from SQS: %w", err)
	}
	if len(out.Messages) == 0 {
		return store.Delivery{}, false, nil
	}
	m := out.Messages[0]
	var msg message
	if q.rawEvent != "" {
		msg = message{ID: q.rawEvent + ":" + aws.ToString(m.MessageId), Event: q.rawEvent, Payload: []byte(aws.ToString(m.Body))}
	} else if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &msg); err != nil {
		// Not ours: drop it rather than loop on it, and say so.
		_, _ = q.api.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(q.url), ReceiptHandle: m.ReceiptHandle})
		return store.Delivery{}, false, fmt.Errorf("SQS message %s is not a keyburn delivery: %w", aws.ToString(m.MessageId), err)
	}
	attempts, _ := strconv.Atoi(m.Attributes[string(sqstypes.MessageSystemAttributeNameApproximateReceiveCount)])
	d := store.Delivery{ID: msg.ID, Event: msg.Event, Payload: msg.Payload, Status: store.Running,
		Attempts: max(1, attempts), Handle: aws.ToString(m.ReceiptHandle)}
	if d.Attempts > maxAttempts {
		reason := fmt.Sprintf("received %d times: its workers stopped (crashed or were killed) on it", d.Attempts)
		if err := q.Fail(ctx, d, reason, 0, maxAttempts); err != nil {
			return store.Delivery{}, false, err
		}
		return store.Delivery{}, false, fmt.Errorf("delivery %s %w: %s", d.ID, ErrParked, reason)
	}
	return d, true, nil
}

// Renew keeps a delivery invisible for another lease while it is worked on.
func (q *Queue) Renew(ctx context.Context, d store.Delivery, lease time.Duration) error {
	return q.visible(ctx, d, "renew", lease)
}

// Release makes a delivery visible again at once: its worker is shutting
// down. (SQS counts the receive all the same.)
func (q *Queue) Release(ctx context.Context, d store.Delivery) error {
	return q.visible(ctx, d, "release", 0)
}

func (q *Queue) visible(ctx context.Context, d store.Delivery, what string, after time.Duration) error {
	_, err := q.api.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(q.url),
		ReceiptHandle: aws.String(d.Handle), VisibilityTimeout: int32(min(after/time.Second, 12*3600))})
	var ae smithy.APIError
	if errors.As(err, &ae) && (ae.ErrorCode() == "ReceiptHandleIsInvalid" || ae.ErrorCode() == "MessageNotInflight" ||
		ae.ErrorCode() == "AWS.SimpleQueueService.MessageNotInflight") {
		return fmt.Errorf("%s delivery %s: %w (%s)", what, d.ID, store.ErrLeaseLost, ae.ErrorCode())
	}
	if err != nil {
		return fmt.Errorf("%s delivery %s: %w", what, d.ID, err)
	}
	return nil
}

// Finish deletes a processed delivery.
func (q *Queue) Finish(ctx context.Context, d store.Delivery) error {
	if _, err := q.api.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(q.url), ReceiptHandle: aws.String(d.Handle)}); err != nil {
		return fmt.Errorf("delete delivery %s from SQS: %w", d.ID, err)
	}
	return nil
}

// Fail makes a delivery visible again after backoff, or parks it.
func (q *Queue) Fail(ctx context.Context, d store.Delivery, reason string, backoff time.Duration, maxAttempts int) error {
	if d.Attempts < maxAttempts {
		return q.visible(ctx, d, "retry", backoff)
	}
	if q.park != nil {
		if err := q.park(ctx, d, reason); err != nil {
			return fmt.Errorf("park delivery %s: %w", d.ID, err)
		}
	} else if q.dlq != "" {
		body, _ := json.Marshal(message{ID: d.ID, Event: d.Event, Payload: d.Payload, Reason: reason})
		in := &sqs.SendMessageInput{QueueUrl: aws.String(q.dlq), MessageBody: aws.String(string(body))}
		if strings.HasSuffix(q.dlq, ".fifo") {
			in.MessageDeduplicationId, in.MessageGroupId = aws.String(d.ID), aws.String(d.ID)
		}
		if _, err := q.api.SendMessage(ctx, in); err != nil {
			return fmt.Errorf("park delivery %s: %w", d.ID, err)
		}
	}
	return q.Finish(ctx, d)
}

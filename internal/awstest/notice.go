package awstest

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// HealthNotice is an AWS Health credentials-exposed event for keyID in
// account, in the shape AWS documents and EventBridge delivers.
func HealthNotice(account, keyID string) string {
	return fmt.Sprintf(`{"version":"0","id":"n-%s","detail-type":"AWS Health Event","source":"aws.health","account":%q,
"time":"2026-12-01T10:00:00Z","region":"us-east-1","resources":[],"detail":{
"eventArn":"arn:aws:health:global::event/RISK/AWS_RISK_CREDENTIALS_EXPOSED/AWS_RISK_CREDENTIALS_EXPOSED_T1",
"service":"RISK","eventTypeCode":"AWS_RISK_CREDENTIALS_EXPOSED","eventTypeCategory":"issue",
"startTime":"Tue, 01 Dec 2026 09:58:00 GMT","affectedEntities":[{"entityValue":%q}]}}`, keyID, account, keyID)
}

// Queue is an SQS queue in moto, with the messages the test put on it.
type Queue struct {
	API *sqs.Client
	URL string
}

// NewQueue creates the queue name in moto and sends it bodies.
func (s *Server) NewQueue(t testing.TB, name string, bodies ...string) *Queue {
	t.Helper()
	q, err := s.MakeQueue(name, bodies...)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// MakeQueue is NewQueue for programs (the benchmarks).
func (s *Server) MakeQueue(name string, bodies ...string) (*Queue, error) {
	api := sqs.New(sqs.Options{Region: "us-east-1", Credentials: s.AdminProvider(), BaseEndpoint: aws.String(s.URL)})
	out, err := api.CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: aws.String(name)})
	if err != nil {
		return nil, fmt.Errorf("create queue %s: %w", name, err)
	}
	q := &Queue{API: api, URL: aws.ToString(out.QueueUrl)}
	for _, b := range bodies {
		if err := q.Send(b); err != nil {
			return nil, err
		}
	}
	return q, nil
}

// Send puts body on the queue.
func (q *Queue) Send(body string) error {
	if _, err := q.API.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(q.URL), MessageBody: aws.String(body)}); err != nil {
		return fmt.Errorf("send to %s: %w", q.URL, err)
	}
	return nil
}

// Count is how many messages the queue holds: visible, and in flight
// (received, neither deleted nor back yet).
func (q *Queue) Count(t testing.TB) (visible, inFlight string) {
	t.Helper()
	out, err := q.API.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(q.URL),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	if err != nil {
		t.Fatalf("attributes of %s: %v", q.URL, err)
	}
	return out.Attributes["ApproximateNumberOfMessages"], out.Attributes["ApproximateNumberOfMessagesNotVisible"]
}

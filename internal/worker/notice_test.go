package worker

import (
	"context"
	"strings"
	"testing"

	"github.com/keyburn/keyburn/internal/awstest"
	"github.com/keyburn/keyburn/internal/store"
)

// TestNoticesWithoutAnActingResponder: a worker that cannot act (no
// responder) parks a credentials-exposed notice, untouched, for one that
// can; it acknowledges another event and drops it; a malformed notice is
// parked at its first attempt, not retried.
func TestNoticesWithoutAnActingResponder(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	w := New(Options{Queue: st, MaxAttempts: 5, Backoff: 1})
	for id, body := range map[string]string{
		"exposed":   awstest.HealthNotice("123456789012", "AKIAQYLPMN5HHHFPZAM2"),
		"other":     `{"source":"aws.health","detail-type":"AWS Health Event","account":"123456789012","detail":{"eventTypeCode":"AWS_EC2_OPERATIONAL_ISSUE"}}`,
		"malformed": `{"source":"aws.health","detail-type":"AWS Health Event","account":"1","detail":{"eventTypeCode":"AWS_RISK_CREDENTIALS_EXPOSED"}}`,
	} {
		if err := st.Enqueue(ctx, store.Delivery{ID: id, Event: NoticeEvent, Payload: []byte(body)}); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		if n, err := w.Once(ctx); n != 1 || err != nil {
			t.Fatalf("Once = %d, %v", n, err)
		}
	}
	for id, want := range map[string]struct{ status, why string }{
		"exposed":   {store.Parked, "not acted on (the responder is off"},
		"other":     {store.Done, ""},
		"malformed": {store.Parked, "12-digit"},
	} {
		d, err := st.GetDelivery(ctx, id)
		if err != nil || d.Status != want.status || !strings.Contains(d.LastError, want.why) || d.Attempts > 1 {
			t.Errorf("%s: %s after %d attempt(s), %q (%v); want %s with %q at once", id, d.Status, d.Attempts, d.LastError, err, want.status, want.why)
		}
	}
}

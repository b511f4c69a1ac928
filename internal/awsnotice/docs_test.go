package awsnotice

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/keyburn/keyburn/internal/sqsqueue"
)

// TestOperatorDocs: what the README tells an operator to set up is what
// keyburn reads. The EventBridge rule matches exactly the events Parse
// acts on; the queue policy lets only EventBridge write, from one rule;
// keyburn's reader policy allows the SQS calls a notices queue gets and
// nothing else (it never sends: what it parks goes to the state); and the
// README shows each file as it is.
func TestOperatorDocs(t *testing.T) {
	read := func(name string) []byte {
		b, err := os.ReadFile("../../docs/aws-notices/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"rule-pattern.json", "queue-policy.json", "reader-policy.json"} {
		if !strings.Contains(string(readme), strings.TrimSpace(string(read(name)))) {
			t.Errorf("the README does not show docs/aws-notices/%s as it is", name)
		}
	}

	var rule struct {
		Source     []string `json:"source"`
		DetailType []string `json:"detail-type"`
		Detail     struct {
			EventTypeCode []string `json:"eventTypeCode"`
		} `json:"detail"`
	}
	if err := json.Unmarshal(read("rule-pattern.json"), &rule); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rule.Source, []string{Source}) || !slices.Equal(rule.DetailType, []string{DetailType}) ||
		!slices.Equal(rule.Detail.EventTypeCode, []string{EventType}) {
		t.Errorf("rule pattern %+v: want source %s, detail-type %s, eventTypeCode %s", rule, Source, DetailType, EventType)
	}

	type statement struct {
		Effect    string
		Principal map[string]string
		Action    json.RawMessage
		Condition map[string]map[string]string
	}
	var queue struct{ Statement []statement }
	if err := json.Unmarshal(read("queue-policy.json"), &queue); err != nil {
		t.Fatal(err)
	}
	if len(queue.Statement) != 1 {
		t.Fatalf("queue policy: %d statements, want 1", len(queue.Statement))
	}
	qs := queue.Statement[0]
	if qs.Effect != "Allow" || qs.Principal["Service"] != "events.amazonaws.com" || string(qs.Action) != `"sqs:SendMessage"` ||
		!strings.Contains(qs.Condition["ArnEquals"]["aws:SourceArn"], ":rule/") {
		t.Errorf("queue policy %+v: want EventBridge alone to send, from one rule", qs)
	}

	var reader struct{ Statement []statement }
	if err := json.Unmarshal(read("reader-policy.json"), &reader); err != nil {
		t.Fatal(err)
	}
	var allowed []string
	for _, s := range reader.Statement {
		var as []string
		if err := json.Unmarshal(s.Action, &as); err != nil {
			t.Fatal(err)
		}
		allowed = append(allowed, as...)
	}
	var need []string
	api := reflect.TypeFor[sqsqueue.API]()
	for i := range api.NumMethod() {
		if m := api.Method(i).Name; m != "SendMessage" { // a raw queue is only read
			need = append(need, "sqs:"+m)
		}
	}
	slices.Sort(allowed)
	slices.Sort(need)
	if !slices.Equal(allowed, need) {
		t.Errorf("reader policy allows %v; keyburn calls %v on a notices queue", allowed, need)
	}
}

package respond

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/keyburn/keyburn/internal/reach"
)

// TestMinimalPolicy: the IAM policy the README gives for the responder
// (docs/responder-policy.json, shown whole in the README) allows every call
// the responder makes, as its interfaces name them, and the STS calls it
// makes besides: sts:GetAccessKeyInfo (the account of an old key ID),
// sts:AssumeRole (role_name), and sts:AssumeRoot, with this package's task
// policy only.
func TestMinimalPolicy(t *testing.T) {
	raw, err := os.ReadFile("../../docs/responder-policy.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Statement []struct {
			Effect    string
			Action    json.RawMessage
			Condition map[string]map[string]string
		}
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("docs/responder-policy.json: %v", err)
	}
	allowed := map[string]bool{}
	for _, s := range doc.Statement {
		var actions []string
		if json.Unmarshal(s.Action, &actions) != nil {
			var one string
			json.Unmarshal(s.Action, &one)
			actions = []string{one}
		}
		for _, a := range actions {
			allowed[a] = s.Effect == "Allow"
			if a == "sts:AssumeRoot" && s.Condition["StringEquals"]["sts:TaskPolicyArn"] != rootTaskPolicy {
				t.Errorf("sts:AssumeRoot is not limited to %s", rootTaskPolicy)
			}
		}
	}
	var need []string
	for _, api := range []struct {
		service string
		t       reflect.Type
	}{{"iam", reflect.TypeFor[IAMAPI]()}, {"iam", reflect.TypeFor[reach.IAM]()}, {"cloudtrail", reflect.TypeFor[CloudTrailAPI]()},
		{"secretsmanager", reflect.TypeFor[SecretsAPI]()}} {
		for i := range api.t.NumMethod() {
			if a := api.service + ":" + api.t.Method(i).Name; !slices.Contains(need, a) {
				need = append(need, a)
			}
		}
	}
	need = append(need, "sts:GetAccessKeyInfo", "sts:AssumeRole", "sts:AssumeRoot")
	for _, a := range need {
		if !allowed[a] {
			t.Errorf("the responder calls %s, which the README's policy does not allow", a)
		}
	}
	for a := range allowed {
		if !slices.Contains(need, a) {
			t.Errorf("the README's policy allows %s, which keyburn never calls: it is not minimal", a)
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), strings.TrimSpace(string(raw))) {
		t.Error("the README does not show docs/responder-policy.json as it is")
	}
}

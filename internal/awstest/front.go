package awstest

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Front is a loopback endpoint in front of moto for the calls moto does not
// implement: it answers sts:AssumeRoot (AWS's query protocol, XML) and
// cloudtrail:LookupEvents (AWS's JSON 1.1 protocol) itself, may answer
// sts:GetCallerIdentity for chosen keys, and passes every other call to
// moto unchanged (moto checks its signature). Point a client's endpoint at
// URL.
//
// It does not check the signatures of the calls it answers; it reports
// which key signed each one.
type Front struct {
	URL string

	// AssumeRoot answers sts:AssumeRoot; nil: moto's answer (it has none).
	AssumeRoot func(AssumeRootCall) (Credentials, *APIError)
	// CallerIdentity answers sts:GetCallerIdentity signed by a key it
	// knows (ok); other keys go to moto.
	CallerIdentity func(keyID string) (arn string, ok bool)
	// LookupEvents answers cloudtrail:LookupEvents; nil: a 400.
	LookupEvents func(LookupEventsCall) (LookupEventsPage, *APIError)

	mu    sync.Mutex
	calls []string
	// intercept: SetIntercept's.
	intercept func(action string) *APIError
}

// SetIntercept makes fn see each call passed on to moto, by action, first;
// a non-nil error is answered instead and moto never sees the call (a test
// kills the caller there, between two IAM calls). Nil removes it.
func (f *Front) SetIntercept(fn func(action string) *APIError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.intercept = fn
}

// Credentials are what AssumeRoot returns. Against moto, give an IAM
// user's key and no Token: moto reads a session token as an STS session's
// and fails the call.
type Credentials struct{ KeyID, Secret, Token string }

// APIError is an AWS error answer.
type APIError struct {
	Status        int
	Code, Message string
}

// AssumeRootCall is an sts:AssumeRoot request as the front read it.
type AssumeRootCall struct {
	SignedBy        string // the access key ID that signed it
	TargetPrincipal string
	TaskPolicyArn   string
	DurationSeconds string
}

// LookupEventsCall is a cloudtrail:LookupEvents request as the front read
// it, from its JSON body.
type LookupEventsCall struct {
	SignedBy string
	Region   string // from the signature's scope
	Body     struct {
		LookupAttributes []struct{ AttributeKey, AttributeValue string }
		StartTime        *float64 // epoch seconds, as the SDK sends them
		EndTime          *float64
		MaxResults       *int
		NextToken        *string
	}
}

// Event is one CloudTrail event of a LookupEvents answer.
type Event struct {
	ID, Name, Source, Region, SourceIP, UserAgent, AccessKeyID string
	RequestID                                                  string // the call's AWS request ID
	Time                                                       time.Time
}

// CallerIdentityRequestID is the request ID of every sts:GetCallerIdentity
// the front answers itself (CallerIdentity).
const CallerIdentityRequestID = "front-gci"

// LookupEventsPage is one page of a LookupEvents answer.
type LookupEventsPage struct {
	Events    []Event
	NextToken string
}

// NoEvents makes LookupEvents answer that the key made no call.
func (f *Front) NoEvents() {
	f.LookupEvents = func(LookupEventsCall) (LookupEventsPage, *APIError) { return LookupEventsPage{}, nil }
}

// Calls returns the calls the front saw, in order: "sts:AssumeRoot",
// "cloudtrail:LookupEvents", "sts:GetCallerIdentity" for those it
// answered, and "moto:ACTION" for those it passed on.
func (f *Front) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *Front) saw(call string) {
	f.mu.Lock()
	f.calls = append(f.calls, call)
	f.mu.Unlock()
}

// StartFront starts a front for moto at m.URL, closed at the test's end.
func StartFront(t testing.TB, m *Server) *Front {
	t.Helper()
	target, err := url.Parse(m.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.Out.Host = r.In.Host // the host the caller signed
	}, ModifyResponse: awsErrorShape}
	f := &Front{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		signer, region := signedBy(r.Header.Get("Authorization"))
		if target := r.Header.Get("X-Amz-Target"); strings.HasSuffix(target, ".LookupEvents") {
			f.saw("cloudtrail:LookupEvents")
			f.lookupEvents(w, body, signer, region)
			return
		}
		form, _ := url.ParseQuery(string(body))
		switch action := form.Get("Action"); {
		case action == "AssumeRoot" && f.AssumeRoot != nil:
			f.saw("sts:AssumeRoot")
			f.assumeRoot(w, form, signer)
			return
		case action == "GetCallerIdentity" && f.CallerIdentity != nil:
			if arn, ok := f.CallerIdentity(signer); ok {
				f.saw("sts:GetCallerIdentity")
				account := strings.Split(arn, ":")[4]
				w.Header().Set("Content-Type", "text/xml")
				w.Header().Set("X-Amzn-Requestid", CallerIdentityRequestID) // where the SDK reads it, as AWS sends it
				fmt.Fprintf(w, `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>`+
					`<Arn>%s</Arn><UserId>%s</UserId><Account>%s</Account></GetCallerIdentityResult>`+
					`<ResponseMetadata><RequestId>`+CallerIdentityRequestID+`</RequestId></ResponseMetadata></GetCallerIdentityResponse>`, esc(arn), esc(account), esc(account))
				return
			}
			f.saw("moto:" + action)
		default:
			f.saw("moto:" + action)
		}
		f.mu.Lock()
		intercept := f.intercept
		f.mu.Unlock()
		if intercept != nil {
			if e := intercept(form.Get("Action")); e != nil {
				writeError(w, e)
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// awsErrorShape rewrites moto's query-protocol errors, which wrap Error in
// an Errors element, into the shape IAM and STS send
// (<ErrorResponse><Error><Code>…), which the SDK reads; otherwise an
// AccessDenied from moto's policy check reaches the caller as UnknownError.
func awsErrorShape(resp *http.Response) error {
	if resp.StatusCode < 400 {
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		return err
	}
	s := string(body)
	if strings.Contains(s, "<ErrorResponse") && strings.Contains(s, "<Errors>") {
		s = strings.NewReplacer("<Errors>", "", "</Errors>", "").Replace(s)
	}
	resp.Body = io.NopCloser(strings.NewReader(s))
	resp.ContentLength = int64(len(s))
	resp.Header.Set("Content-Length", fmt.Sprint(len(s)))
	return nil
}

var credentialRE = regexp.MustCompile(`Credential=([A-Z0-9]+)/\d{8}/([a-z0-9-]+)/`)

// signedBy reads the key ID and region of a SigV4 Authorization header.
func signedBy(auth string) (keyID, region string) {
	m := credentialRE.FindStringSubmatch(auth)
	if m == nil {
		return "", ""
	}
	return m[1], m[2]
}

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

func (f *Front) assumeRoot(w http.ResponseWriter, form url.Values, signer string) {
	creds, apiErr := f.AssumeRoot(AssumeRootCall{SignedBy: signer, TargetPrincipal: form.Get("TargetPrincipal"),
		TaskPolicyArn: form.Get("TaskPolicyArn.arn"), DurationSeconds: form.Get("DurationSeconds")})
	w.Header().Set("Content-Type", "text/xml")
	if apiErr != nil {
		w.WriteHeader(apiErr.Status)
		fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>%s</Code>`+
			`<Message>%s</Message></Error><RequestId>front-assume-root-error</RequestId></ErrorResponse>`, esc(apiErr.Code), esc(apiErr.Message))
		return
	}
	fmt.Fprintf(w, `<AssumeRootResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRootResult><Credentials>`+
		`<AccessKeyId>%s</AccessKeyId><SecretAccessKey>%s</SecretAccessKey><SessionToken>%s</SessionToken><Expiration>%s</Expiration>`+
		`</Credentials></AssumeRootResult><ResponseMetadata><RequestId>front-assume-root</RequestId></ResponseMetadata></AssumeRootResponse>`,
		esc(creds.KeyID), esc(creds.Secret), esc(creds.Token), time.Now().Add(15*time.Minute).UTC().Format(time.RFC3339))
}

func (f *Front) lookupEvents(w http.ResponseWriter, body []byte, signer, region string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	fail := func(e *APIError) {
		w.WriteHeader(e.Status)
		json.NewEncoder(w).Encode(map[string]string{"__type": e.Code, "message": e.Message})
	}
	if f.LookupEvents == nil {
		fail(&APIError{Status: 400, Code: "UnknownOperationException", Message: "no LookupEvents here"})
		return
	}
	call := LookupEventsCall{SignedBy: signer, Region: region}
	if err := json.Unmarshal(body, &call.Body); err != nil {
		fail(&APIError{Status: 400, Code: "SerializationException", Message: err.Error()})
		return
	}
	page, apiErr := f.LookupEvents(call)
	if apiErr != nil {
		fail(apiErr)
		return
	}
	type resource struct{ ResourceName, ResourceType string }
	type event struct {
		EventId, EventName, EventSource, Username, AccessKeyId, CloudTrailEvent string
		EventTime                                                               float64
		ReadOnly                                                                string
		Resources                                                               []resource
	}
	out := struct {
		Events    []event
		NextToken string `json:",omitempty"`
	}{Events: []event{}, NextToken: page.NextToken}
	for _, e := range page.Events {
		detail, _ := json.Marshal(map[string]any{"eventVersion": "1.09", "eventID": e.ID, "eventName": e.Name, "eventSource": e.Source,
			"awsRegion": e.Region, "sourceIPAddress": e.SourceIP, "userAgent": e.UserAgent,
			"eventTime": e.Time.UTC().Format(time.RFC3339), "userIdentity": map[string]string{"accessKeyId": e.AccessKeyID}, "requestID": e.RequestID})
		out.Events = append(out.Events, event{EventId: e.ID, EventName: e.Name, EventSource: e.Source, AccessKeyId: e.AccessKeyID,
			EventTime: float64(e.Time.Unix()), ReadOnly: "true", CloudTrailEvent: string(detail)})
	}
	json.NewEncoder(w).Encode(out)
}

// writeError answers a query-protocol call (IAM, STS) with e, in the shape
// the SDK reads.
func writeError(w http.ResponseWriter, e *APIError) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(e.Status)
	fmt.Fprintf(w, `<ErrorResponse><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>front</RequestId></ErrorResponse>`,
		esc(e.Code), esc(e.Message))
}

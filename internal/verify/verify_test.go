package verify

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/keyburn/keyburn/internal/secret"
)

// fakeSTS answers by secret: "live…" is live, "wrong…" SignatureDoesNotMatch,
// anything else InvalidClientTokenId.
type fakeSTS struct {
	secret string
	calls  *atomic.Int64
}

func (f fakeSTS) GetCallerIdentity(context.Context, *sts.GetCallerIdentityInput, ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error) {
	f.calls.Add(1)
	switch {
	case strings.HasPrefix(f.secret, "live"):
		return &sts.GetCallerIdentityOutput{Arn: aws.String("arn:aws:iam::123456789012:user/a"), Account: aws.String("123456789012")}, nil
	case strings.HasPrefix(f.secret, "wrong"):
		return nil, &smithy.GenericAPIError{Code: "SignatureDoesNotMatch"}
	default:
		return nil, &smithy.GenericAPIError{Code: "InvalidClientTokenId"}
	}
}

func fake(calls *atomic.Int64) func(string, string, string, string) STSAPI {
	return func(_, _, sec, _ string) STSAPI { return fakeSTS{secret: sec, calls: calls} }
}

func secrets(ss ...string) []secret.Secret {
	var out []secret.Secret
	for _, s := range ss {
		out = append(out, secret.New(s))
	}
	return out
}

func TestVerifyOutcomes(t *testing.T) {
	tests := []struct {
		name    string
		account string
		secrets []string
		want    Status
		calls   int64
	}{
		{"live", "100000000000", []string{"live1"}, Live, 1},
		{"invalid stops at once", "100000000000", []string{"nope", "live1"}, Invalid, 1},
		{"wrong then live", "100000000000", []string{"wrong1", "live1"}, Live, 3}, // the wrong one is retried once
		{"all wrong", "100000000000", []string{"wrong1", "wrong2"}, WrongSecret, 4},
		{"canary: no call", "052310077262", []string{"live1"}, Canary, 0},
		{"no secret", "100000000000", nil, Skipped, 0},
		// The key ID does not encode its account and nothing can name it:
		// it might be a canary, so it is not called.
		{"account unknown: no call", "", []string{"live1"}, Skipped, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int64
			v := New(Options{testOnlyClient: fake(&calls), Backoff: 1})
			vd := v.Verify(context.Background(), "AKIAROSDW5AABZW3VLYZ", tt.account, secrets(tt.secrets...), secret.Secret{})
			if vd.Status != tt.want || calls.Load() != tt.calls {
				t.Errorf("Verify = %s after %d calls, want %s after %d", vd.Status, calls.Load(), tt.want, tt.calls)
			}
		})
	}
}

// TestVerifyDedupe verifies one pair from many goroutines at once: one call.
func TestVerifyDedupe(t *testing.T) {
	var calls atomic.Int64
	v := New(Options{testOnlyClient: fake(&calls)})
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if vd := v.Verify(context.Background(), "AKIAROSDW5AABZW3VLYZ", "100000000000", secrets("live1"), secret.Secret{}); vd.Status != Live {
				t.Errorf("status %s", vd.Status)
			}
		})
	}
	wg.Wait()
	if calls.Load() != 1 {
		t.Errorf("%d calls for one pair, want 1", calls.Load())
	}
}

const stsOK = `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>
<Arn>arn:aws:iam::123456789012:user/alice</Arn><UserId>AIDAEXAMPLE</UserId><Account>123456789012</Account>
</GetCallerIdentityResult><ResponseMetadata><RequestId>r1</RequestId></ResponseMetadata></GetCallerIdentityResponse>`

// TestVerifyFaults runs the real SDK against an httptest server that fails
// first: throttling and 5xx answers are retried, then reported as error
// (never invalid) when they persist.
func TestVerifyFaults(t *testing.T) {
	tests := []struct {
		name     string
		failures int // answers before success
		status   int
		body     string
		want     Status
		calls    int64
		cut      bool // the status line and part of the body, then the connection closes
	}{
		{name: "answer cut after its 200 status line, then ok", failures: 1, status: 200, body: stsOK[:40], want: Live, calls: 2, cut: true},
		{name: "answer cut always", failures: 99, status: 200, body: stsOK[:40], want: Error, calls: 3, cut: true},
		{"throttled then ok", 2, 400, `<ErrorResponse><Error><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>`, Live, 3, false},
		{"5xx then ok", 1, 503, `<ErrorResponse><Error><Code>ServiceUnavailable</Code><Message>x</Message></Error></ErrorResponse>`, Live, 2, false},
		{"5xx always", 99, 500, `<ErrorResponse><Error><Code>InternalFailure</Code><Message>x</Message></Error></ErrorResponse>`, Error, 3, false},
		{"invalid", 99, 403, `<ErrorResponse><Error><Code>InvalidClientTokenId</Code><Message>x</Message></Error></ErrorResponse>`, Invalid, 1, false},
		{"iam-shaped invalid", 99, 403, `<ErrorResponse><Errors><Error><Code>InvalidClientTokenId</Code><Message>x</Message></Error></Errors></ErrorResponse>`, Invalid, 1, false},
		{"expired", 99, 403, `<ErrorResponse><Error><Code>ExpiredToken</Code><Message>x</Message></Error></ErrorResponse>`, Expired, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if ua := r.Header.Get("User-Agent"); !strings.Contains(ua, "keyburn") {
					t.Errorf("User-Agent %q lacks keyburn", ua)
				}
				w.Header().Set("Content-Type", "text/xml")
				if n.Add(1) <= int64(tt.failures) && tt.cut {
					conn, buf, err := w.(http.Hijacker).Hijack()
					if err != nil {
						t.Error(err)
						return
					}
					fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n%s", len(stsOK), tt.body)
					buf.Flush()
					conn.Close()
					return
				}
				if n.Load() <= int64(tt.failures) {
					w.WriteHeader(tt.status)
					fmt.Fprint(w, tt.body)
					return
				}
				fmt.Fprint(w, stsOK)
			}))
			defer srv.Close()
			v := New(Options{Endpoint: srv.URL, Backoff: 1, PerAccountRate: 1000})
			vd := v.Verify(context.Background(), "AKIAROSDW5AABZW3VLYZ", "100000000000", secrets("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"), secret.Secret{})
			if vd.Status != tt.want || v.Calls() != tt.calls {
				t.Errorf("status %s after %d calls (%v), want %s after %d", vd.Status, v.Calls(), vd.ErrorText(), tt.want, tt.calls)
			}
			if vd.Status == Live && vd.ARN != "arn:aws:iam::123456789012:user/alice" {
				t.Errorf("ARN %q", vd.ARN)
			}
		})
	}
}

// TestPartitions: a key unknown to the global partition is tried in the
// others, and found live in aws-cn.
func TestPartitions(t *testing.T) {
	var calls atomic.Int64
	var regions []string
	var mu sync.Mutex
	v := New(Options{PartitionRegions: []string{"cn-north-1", "us-gov-west-1"}, Backoff: 1,
		testOnlyClient: func(region, _, _, _ string) STSAPI {
			mu.Lock()
			regions = append(regions, region)
			mu.Unlock()
			sec := "nope"
			if region == "cn-north-1" {
				sec = "live"
			}
			return fakeSTS{secret: sec, calls: &calls}
		}})
	vd := v.Verify(context.Background(), "AKIAROSDW5AABZW3VLYZ", "100000000000", secrets("s1"), secret.Secret{})
	if vd.Status != Live || strings.Join(regions, ",") != "us-east-1,cn-north-1" {
		t.Errorf("Verify = %s after regions %v, want live in cn-north-1 after us-east-1", vd.Status, regions)
	}
	if def := New(Options{}); strings.Join(def.opts.PartitionRegions, ",") != "cn-north-1,us-gov-west-1" {
		t.Errorf("default partitions = %v", def.opts.PartitionRegions)
	}
	if custom := New(Options{Endpoint: "http://127.0.0.1:1"}); len(custom.opts.PartitionRegions) != 0 {
		t.Errorf("with a custom endpoint, partitions = %v, want none", custom.opts.PartitionRegions)
	}
}

// TestCanaryAccounts: a canary is recognised by the account named by
// sts:GetAccessKeyInfo for an old-format key ID (no STS call with the key),
// and by the account STS answers with (never reported live).
func TestCanaryAccounts(t *testing.T) {
	tests := []struct {
		name      string
		account   string // decoded offline
		accountOf string // named by GetAccessKeyInfo
		canary    string
		want      Status
		calls     int64
	}{
		{"old format, named a canary", "", "999988887777", "999988887777", Canary, 0},
		{"old format, named another", "", "123456789012", "999988887777", Live, 1},
		{"STS names a canary", "100000000000", "", "123456789012", Canary, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls, infos atomic.Int64
			v := New(Options{testOnlyClient: fake(&calls), CanaryAccounts: []string{tt.canary},
				testOnlyAccountOf: func(string) (string, error) { infos.Add(1); return tt.accountOf, nil }})
			vd := v.Verify(context.Background(), "AKIAJQABLZS4A3QDU576", tt.account, secrets("live1"), secret.Secret{})
			if vd.Status != tt.want || calls.Load() != tt.calls {
				t.Errorf("Verify = %s after %d STS calls, want %s after %d", vd.Status, calls.Load(), tt.want, tt.calls)
			}
			if tt.account == "" && (infos.Load() != 1 || vd.Account != tt.accountOf) {
				t.Errorf("GetAccessKeyInfo calls %d, verdict account %q; want 1 and %q", infos.Load(), vd.Account, tt.accountOf)
			}
		})
	}
}

// TestMemoryHonoursTTL: a verdict held in memory is checked again once older
// than the cache's age limit, unless it has an end of its own.
func TestMemoryHonoursTTL(t *testing.T) {
	var calls atomic.Int64
	v := New(Options{testOnlyClient: fake(&calls), CacheTTL: time.Nanosecond})
	for range 2 {
		v.Verify(context.Background(), "AKIAROSDW5AABZW3VLYZ", "100000000000", secrets("live1"), secret.Secret{})
		time.Sleep(time.Millisecond)
	}
	if calls.Load() != 2 {
		t.Errorf("STS calls = %d, want 2: the first verdict had expired", calls.Load())
	}
	s := secret.New("live1")
	if err := v.Record(context.Background(), "ASIAROSDW5AABZW3VLYZ", s, Verdict{Status: Revoked, Until: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Millisecond)
	if vd := v.Verify(context.Background(), "ASIAROSDW5AABZW3VLYZ", "100000000000", []secret.Secret{s}, secret.Secret{}); vd.Status != Revoked || calls.Load() != 2 {
		t.Errorf("a revoked verdict valid for an hour: %s after %d calls, want revoked with no call", vd.Status, calls.Load())
	}
}

// TestAccountOfAsksOnce: the check stage and Verify both name an old-format
// key's account; a lookup that fails is not made twice.
func TestAccountOfAsksOnce(t *testing.T) {
	var infos, calls atomic.Int64
	v := New(Options{testOnlyClient: fake(&calls), testOnlyAccountOf: func(string) (string, error) {
		infos.Add(1)
		return "", fmt.Errorf("no answer")
	}})
	v.AccountOf(context.Background(), "AKIAJQABLZS4A3QDU576")
	vd := v.Verify(context.Background(), "AKIAJQABLZS4A3QDU576", "", secrets("live1"), secret.Secret{})
	if infos.Load() != 1 || vd.Status != Skipped || calls.Load() != 0 {
		t.Errorf("GetAccessKeyInfo asked %d times, verdict %s after %d STS calls; want once, skipped, none", infos.Load(), vd.Status, calls.Load())
	}
}

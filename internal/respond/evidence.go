package respond

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/smithy-go/middleware"
	"golang.org/x/time/rate"

	"github.com/keyburn/keyburn/internal/finding"
	"github.com/keyburn/keyburn/internal/store"
)

// Evidence: after a key is acted on, AWS's guidance is to review what it
// did. CloudTrail's event history (LookupEvents, 90 days, per region) is
// read by AccessKeyId from the leak to now, with the responder's
// credentials in the key's account: its own there, or role_name. Never with
// the leaked key.

// CloudTrailAPI is the CloudTrail call the responder makes.
type CloudTrailAPI interface {
	LookupEvents(ctx context.Context, in *cloudtrail.LookupEventsInput, opts ...func(*cloudtrail.Options)) (*cloudtrail.LookupEventsOutput, error)
}

const (
	// eventHistory is how far back CloudTrail's event history goes.
	eventHistory = 90 * 24 * time.Hour
	// evidencePages caps the pages read per region (50 events each).
	evidencePages = 20
	// lookupRate is CloudTrail's limit for LookupEvents: 2 per second per
	// account and region.
	lookupRate   = 2
	stepEvidence = "evidence"
)

// defaultEvidenceRegions are read when Options.EvidenceRegions is empty:
// us-east-1 also holds the events of global services (IAM, STS's global
// endpoint).
var defaultEvidenceRegions = []string{"us-east-1"}

// limiters keeps one rate limiter per account and region, across keys.
type limiters struct {
	mu    sync.Mutex
	m     map[string]*rate.Limiter
	every rate.Limit // 0: lookupRate
	burst int        // 0: 1
}

func (l *limiters) get(account, region string) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string]*rate.Limiter{}
	}
	k := account + "/" + region
	if l.m[k] == nil {
		l.m[k] = rate.NewLimiter(cmp.Or(l.every, lookupRate), max(l.burst, 1))
	}
	return l.m[k]
}

// cloudTrail returns the CloudTrail client for an account and region, or
// why there is none.
func (r *Responder) cloudTrail(account, region string) (CloudTrailAPI, string) {
	if r.opts.testOnlyCloudTrail != nil {
		return r.opts.testOnlyCloudTrail(account, region), ""
	}
	creds, ok := r.credsIn(account)
	if !ok {
		return nil, "keyburn has no credentials in account " + account + " (its own are in " + r.self.account + ", and no role_name is set to read there)"
	}
	o := cloudtrail.Options{Region: region, Credentials: creds, HTTPClient: r.opts.HTTPClient,
		APIOptions: []func(*middleware.Stack) error{awsmiddleware.AddUserAgentKeyValue("keyburn", "respond")}}
	if r.opts.Endpoint != "" {
		o.BaseEndpoint = aws.String(r.opts.Endpoint)
	}
	return cloudtrail.New(o), ""
}

// evidence reads what the key did from leakedAt to now and writes its
// summary to the audit log. It never fails the action: what it could not
// read, it says.
func (r *Responder) evidence(ctx context.Context, a auditor, leakedAt time.Time) (*finding.Evidence, error) {
	now := r.opts.Now()
	ev := &finding.Evidence{To: now, From: leakedAt, Regions: r.opts.EvidenceRegions}
	if len(ev.Regions) == 0 {
		ev.Regions = defaultEvidenceRegions
	}
	oldest := now.Add(-eventHistory)
	switch {
	case leakedAt.IsZero():
		ev.From = oldest
		ev.Notes = append(ev.Notes, "the leak time is unknown: read from the start of CloudTrail's 90-day event history")
	case leakedAt.Before(oldest):
		ev.From = oldest
		ev.Notes = append(ev.Notes, "the leak ("+leakedAt.UTC().Format(time.RFC3339)+") is older than CloudTrail's 90-day event history: "+
			"earlier calls are only in a trail's logs, if one was kept")
	}

	ips, names, regions := map[string]int{}, map[string]int{}, map[string]int{}
	var unread []string
	own, err := r.opts.Store.OwnCalls(ctx, a.keyID)
	if err != nil {
		unread = append(unread, "keyburn's own calls could not be read, so none is told apart: "+err.Error())
	}
	claimed, read := 0, 0
	for _, region := range ev.Regions {
		c, why := r.cloudTrail(a.account, region)
		if c == nil {
			unread = append(unread, why)
			break // the same for every region
		}
		if err := r.lookup(ctx, c, a, region, ev, own, &claimed, ips, names, regions); err != nil {
			unread = append(unread, region+": "+lookupErrText(err))
		} else {
			read++
		}
	}
	if read > 0 {
		// Said of what was read; after a failure to read, it would mislead.
		ev.Notes = append(ev.Notes, "CloudTrail delivers events within about 15 minutes: the last calls may not be here yet")
	}
	if claimed > 0 {
		ev.Notes = append(ev.Notes, fmt.Sprintf("%d call(s) had a User-Agent naming keyburn that keyburn has no record of making: counted as the key user's", claimed))
	}
	ev.Unread = strings.Join(unread, "; ")
	ev.SourceIPs, ev.EventNames, ev.CallRegions = ranked(ips), ranked(names), ranked(regions)
	out := outOK
	if ev.Unread != "" {
		out = outFailed
	}
	rctx, cancel := recording(ctx)
	defer cancel()
	return ev, a.write(rctx, store.AuditRecord{Action: stepEvidence, Outcome: out, Detail: ev.Summary()})
}

// lookup reads one region's events of the key, page by page, at
// CloudTrail's rate.
func (r *Responder) lookup(ctx context.Context, c CloudTrailAPI, a auditor, region string, ev *finding.Evidence, own map[string]store.OwnCall,
	claimed *int, ips, names, regions map[string]int) error {
	lim := r.limits.get(a.account, region)
	in := &cloudtrail.LookupEventsInput{
		LookupAttributes: []cttypes.LookupAttribute{{AttributeKey: cttypes.LookupAttributeKeyAccessKeyId, AttributeValue: aws.String(a.keyID)}},
		StartTime:        aws.Time(ev.From), EndTime: aws.Time(ev.To), MaxResults: aws.Int32(50),
	}
	for page := 0; ; page++ {
		if page == evidencePages {
			ev.Truncated = true
			return nil
		}
		if err := lim.Wait(ctx); err != nil {
			return err
		}
		out, err := c.LookupEvents(ctx, in)
		if err != nil {
			return err
		}
		for _, e := range out.Events {
			d := parseEvent(aws.ToString(e.CloudTrailEvent))
			if d.AccessKeyID != "" && d.AccessKeyID != a.keyID {
				continue // not this key's (a lookup answers only with it)
			}
			if c, ok := own[d.RequestID]; ok && d.RequestID != "" {
				// A call keyburn recorded making: listed apart.
				ev.Own++
				ev.OwnCalls = append(ev.OwnCalls, finding.OwnCall{At: cmp.Or(aws.ToTime(e.EventTime), c.At), Event: aws.ToString(e.EventName),
					RequestID: d.RequestID, SourceIP: d.SourceIP})
				continue
			}
			if strings.Contains(strings.ToLower(d.UserAgent), "keyburn") {
				*claimed++ // says it is keyburn; keyburn has no record of it
			}
			at := aws.ToTime(e.EventTime)
			if ev.Calls == 0 || at.Before(ev.First) {
				ev.First = at
			}
			if at.After(ev.Last) {
				ev.Last = at
			}
			ev.Calls++
			names[cmp.Or(aws.ToString(e.EventName), "?")]++
			ips[cmp.Or(d.SourceIP, "?")]++
			regions[cmp.Or(d.Region, region)]++
		}
		if aws.ToString(out.NextToken) == "" {
			return nil
		}
		in.NextToken = out.NextToken
	}
}

// eventDetail is the part of a CloudTrail event record keyburn reads.
type eventDetail struct {
	SourceIP     string `json:"sourceIPAddress"`
	UserAgent    string `json:"userAgent"`
	Region       string `json:"awsRegion"`
	RequestID    string `json:"requestID"`
	UserIdentity struct {
		AccessKeyID string `json:"accessKeyId"`
	} `json:"userIdentity"`
	AccessKeyID string `json:"-"`
}

// parseEvent reads a CloudTrailEvent document; a malformed one yields
// nothing (the event still counts, with "?" for what is missing).
func parseEvent(doc string) eventDetail {
	var d eventDetail
	if len(doc) > 1<<20 || json.Unmarshal([]byte(doc), &d) != nil {
		return eventDetail{}
	}
	d.AccessKeyID = d.UserIdentity.AccessKeyID
	return d
}

// ranked sorts counts, most first, then by value.
func ranked(m map[string]int) []finding.Count {
	out := make([]finding.Count, 0, len(m))
	for v, n := range m {
		out = append(out, finding.Count{Value: v, N: n})
	}
	slices.SortFunc(out, func(a, b finding.Count) int { return cmp.Or(cmp.Compare(b.N, a.N), cmp.Compare(a.Value, b.Value)) })
	return out
}

// lookupErrText says why CloudTrail could not be read, plainly.
func lookupErrText(err error) string {
	switch {
	case isCode(err, "AccessDeniedException"), isCode(err, "AccessDenied"):
		return "no permission (cloudtrail:LookupEvents is denied: " + errText(err) + ")"
	case isCode(err, "InvalidTimeRangeException"):
		return "outside CloudTrail's 90-day event history (" + errText(err) + ")"
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() >= 500 {
		return fmt.Sprintf("CloudTrail could not be read: it answered HTTP %d", re.HTTPStatusCode())
	}
	return fmt.Sprintf("CloudTrail could not be read: %s", errText(err))
}

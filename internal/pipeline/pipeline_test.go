package pipeline

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/keyburn/keyburn/internal/engine"
	"github.com/keyburn/keyburn/internal/finding"
)

// checker marks each finding it sees as verified live, and logs it.
type checker struct {
	log *[]string
	err error
}

func (c checker) Run(_ context.Context, fs []*finding.Finding) error {
	for _, f := range fs {
		*c.log = append(*c.log, "check "+f.KeyID)
		f.Verification = &finding.Verification{Status: "live"}
	}
	return c.err
}

func TestDo(t *testing.T) {
	a := func() *finding.Finding { return &finding.Finding{KeyID: "AKIAAAAAAAAAAAAAAAAA"} }
	b := func() *finding.Finding { return &finding.Finding{KeyID: "AKIABBBBBBBBBBBBBBBB"} }
	errScan, errCheck, errSink := errors.New("scan broke"), errors.New("state locked"), errors.New("disk full")
	tests := []struct {
		name     string
		found    func() []*finding.Finding
		scanErr  error
		noResult bool
		baseline bool // accept the first finding
		checkErr error
		keepNone bool
		failSink bool
		want     []string // events in order
		accepted int
		errs     []error // wanted in the outcome, in ScanErr, CheckErr, SinkErr
	}{
		{
			name:  "scan, check, sinks in order",
			found: func() []*finding.Finding { return []*finding.Finding{a(), b()} },
			want: []string{"scan", "check AKIAAAAAAAAAAAAAAAAA", "check AKIABBBBBBBBBBBBBBBB",
				"report 2 live", "notify 2"},
		},
		{
			name:     "an accepted finding is neither checked nor reported",
			found:    func() []*finding.Finding { return []*finding.Finding{a(), b()} },
			baseline: true,
			want:     []string{"scan", "check AKIABBBBBBBBBBBBBBBB", "report 1 live", "notify 1"},
			accepted: 1,
		},
		{
			name:    "a partial scan's findings are still checked and reported",
			found:   func() []*finding.Finding { return []*finding.Finding{a()} },
			scanErr: errScan,
			want:    []string{"scan", "check AKIAAAAAAAAAAAAAAAAA", "report 1 live", "notify 1"},
			errs:    []error{errScan},
		},
		{
			name:     "a scan with no result ends the run",
			scanErr:  errScan,
			noResult: true,
			want:     []string{"scan"},
			errs:     []error{errScan},
		},
		{
			name:     "a check that fails still reports",
			found:    func() []*finding.Finding { return []*finding.Finding{a()} },
			checkErr: errCheck,
			want:     []string{"scan", "check AKIAAAAAAAAAAAAAAAAA", "report 1 live", "notify 1"},
			errs:     []error{errCheck},
		},
		{
			name:     "keep narrows the report after the check",
			found:    func() []*finding.Finding { return []*finding.Finding{a(), b()} },
			keepNone: true,
			want:     []string{"scan", "check AKIAAAAAAAAAAAAAAAAA", "check AKIABBBBBBBBBBBBBBBB", "keep 2 live", "report 0 live", "notify 0"},
		},
		{
			name:     "a failing sink does not stop the next",
			found:    func() []*finding.Finding { return []*finding.Finding{a()} },
			failSink: true,
			want:     []string{"scan", "check AKIAAAAAAAAAAAAAAAAA", "report 1 live", "notify 1"},
			errs:     []error{errSink},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log []string
			r := Run{
				Scan: func(context.Context) (*engine.Result, error) {
					log = append(log, "scan")
					if tt.noResult {
						return nil, tt.scanErr
					}
					var fs []*finding.Finding
					if tt.found != nil {
						fs = tt.found()
					}
					return &engine.Result{Findings: fs}, tt.scanErr
				},
				Check: checker{log: &log, err: tt.checkErr},
				Sinks: []Sink{
					{Name: "write results", Take: func(_ context.Context, o *Outcome) error {
						live := 0
						for _, f := range o.Findings {
							if f.Verification != nil && f.Verification.Status == "live" {
								live++
							}
						}
						log = append(log, "report "+strconv.Itoa(live)+" live")
						if tt.failSink {
							return errSink
						}
						return nil
					}},
					{Name: "notify", Take: func(_ context.Context, o *Outcome) error {
						log = append(log, "notify "+strconv.Itoa(len(o.Findings)))
						return nil
					}},
				},
			}
			if tt.baseline {
				r.Baseline = finding.Baseline{a().Fingerprint(): true}
			}
			if tt.keepNone {
				r.Keep = func(fs []*finding.Finding) []*finding.Finding {
					live := 0
					for _, f := range fs {
						if f.Verification != nil {
							live++
						}
					}
					log = append(log, "keep "+strconv.Itoa(live)+" live")
					return nil
				}
			}
			out := r.Do(context.Background())
			if !slices.Equal(log, tt.want) {
				t.Errorf("events:\n  %s\nwant:\n  %s", strings.Join(log, "\n  "), strings.Join(tt.want, "\n  "))
			}
			if out.Accepted != tt.accepted {
				t.Errorf("Accepted = %d, want %d", out.Accepted, tt.accepted)
			}
			got := []error{out.ScanErr, out.CheckErr, out.SinkErr}
			for _, want := range tt.errs {
				if !slices.ContainsFunc(got, func(e error) bool { return errors.Is(e, want) }) {
					t.Errorf("outcome errors %v: want %v among them", got, want)
				}
			}
			if complete := len(tt.errs) == 0; out.Complete() != complete {
				t.Errorf("Complete() = %v, want %v", out.Complete(), complete)
			}
			if tt.failSink && !strings.Contains(out.SinkErr.Error(), "write results: disk full") {
				t.Errorf("SinkErr = %v: want it to name the sink", out.SinkErr)
			}
		})
	}
}

func TestDoNoScan(t *testing.T) {
	if out := (Run{}).Do(context.Background()); out.ScanErr == nil {
		t.Error("a run without a scan: want an error")
	}
	out := Run{Scan: func(context.Context) (*engine.Result, error) { return nil, nil }}.Do(context.Background())
	if out.ScanErr == nil {
		t.Error("a scan with neither result nor error: want an error")
	}
}

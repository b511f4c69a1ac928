package report

import (
	"cmp"
	"embed"
	"html/template"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/keyburn/keyburn/internal/finding"
)

//go:embed templates/report.html.tmpl
var templates embed.FS

// htmlReport is parsed when first used, not at every start of the CLI.
var htmlReport = sync.OnceValue(func() *template.Template {
	return template.Must(template.ParseFS(templates, "templates/report.html.tmpl"))
})

// AuditStep is one step of a key's audit trail, as the HTML report shows
// it.
type AuditStep struct {
	At, Step, Outcome, Detail string
}

// severityRank orders severities, most severe first.
func severityRank(s string) int {
	if i := slices.Index([]string{finding.SeverityCritical, "high", "medium", "low"}, s); i >= 0 {
		return i
	}
	return 4
}

// htmlKey is one row of the HTML report.
type htmlKey struct {
	KeyID, Account, Secret, Severity, Verdict, Principal string
	Reach                                                []string // the summary first, then why
	Action, ActionWhy                                    string
	Acted                                                bool
	Evidence                                             []string
	// Notes are what a reader must know besides: who vouched for the key,
	// where its replacement is, what to do with AWS's quarantine.
	Notes []string
	Audit []AuditStep
	Where []string
	More  int
}

// maxWhere bounds the locations shown per key.
const maxWhere = 5

// HTML writes one self-contained HTML page (no script, no external
// asset): keys by severity, where each was found, verdict, what it could
// do, the action and its evidence, and the audit trail when opts.Audit
// gives one. Every value is escaped by html/template: a file name is as
// hostile as any input. Secrets are always redacted.
func HTML(w io.Writer, fs []*finding.Finding, opts Options) error {
	data := struct {
		Title, Generated, Version string
		Count                     map[string]int
		Live, Acted               int
		Keys                      []htmlKey
	}{Title: opts.Title, Generated: opts.Generated, Version: cmp.Or(opts.Version, "dev"),
		Count: map[string]int{finding.SeverityCritical: 0, "high": 0, "medium": 0, "low": 0}}
	sorted := slices.Clone(fs)
	slices.SortStableFunc(sorted, func(a, b *finding.Finding) int {
		return cmp.Or(cmp.Compare(severityRank(a.Severity), severityRank(b.Severity)), cmp.Compare(a.KeyID, b.KeyID))
	})
	for _, f := range sorted {
		data.Count[f.Severity]++
		k := htmlKey{KeyID: cmp.Or(f.KeyID, "(no key ID)"), Account: f.AccountID, Severity: f.Severity, Verdict: "not verified"}
		if f.Paired() {
			k.Secret = f.Secret.Redacted()
		}
		if v := f.Verification; v != nil {
			k.Verdict, k.Principal = v.Status, v.ARN
			if v.Status == "live" {
				data.Live++
			}
			if v.Reach != nil {
				k.Reach = strings.Split(v.Reach.Summary(), "; ")
			}
		}
		if r := f.Response; r != nil {
			k.Action, k.ActionWhy = r.Action, cmp.Or(r.Error, r.Reason)
			switch r.Action {
			case "deactivated", "deleted", "deactivated, deletion scheduled", "sessions revoked":
				k.Acted = true
				data.Acted++
			}
			if r.Evidence != nil {
				k.Evidence = strings.Split(r.Evidence.Summary(), "; ")
			}
			if rp := r.Replacement; rp != nil {
				k.Notes = append(k.Notes, "replacement key "+rp.KeyID+", in AWS Secrets Manager as "+rp.Secret+": move the application to it")
			}
		}
		if f.Vouched != nil {
			k.Notes = append([]string{"vouched for by " + f.Vouched.By + " (no secret: AWS found the key exposed)"}, k.Notes...)
		}
		if v := f.Verification; v != nil && len(v.Quarantine) > 0 {
			k.Notes = append(k.Notes, finding.QuarantineAdvice(v.Quarantine, f.Response != nil && f.Response.Action == "deleted"))
		}
		if opts.Audit != nil && f.KeyID != "" {
			k.Audit = opts.Audit(f.KeyID)
		}
		for i, l := range f.Locations {
			if i == maxWhere {
				k.More = len(f.Locations) - maxWhere
				break
			}
			k.Where = append(k.Where, locationText(l, f.Secret))
		}
		data.Keys = append(data.Keys, k)
	}
	return htmlReport().Execute(w, data)
}

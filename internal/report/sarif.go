package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/owenrumney/go-sarif/v2/sarif"

	"github.com/keyburn/keyburn/internal/finding"
)

const infoURI = "https://github.com/keyburn/keyburn"

// SARIF writes a SARIF 2.1.0 log that GitHub code scanning accepts: one
// result per location of each finding, a relative artifact URI, a 1-based
// region, and the finding's fingerprint as a partial fingerprint so that
// code scanning tracks it across runs.
func SARIF(w io.Writer, fs []*finding.Finding, opts Options) error {
	rep, err := sarif.New(sarif.Version210)
	if err != nil {
		return fmt.Errorf("sarif: %w", err)
	}
	run := sarif.NewRunWithInformationURI("keyburn", infoURI)
	if opts.Version != "" {
		run.Tool.Driver.Version = &opts.Version
	}
	seenRule := map[string]bool{}
	for _, f := range fs {
		if !seenRule[f.Rule] {
			seenRule[f.Rule] = true
			run.AddRule(f.Rule).
				WithName("LeakedAWSCredential").
				WithShortDescription(sarif.NewMultiformatMessageString("AWS access key leaked")).
				WithFullDescription(sarif.NewMultiformatMessageString("An AWS access key ID, possibly with its secret access key, is committed in plain text.")).
				WithTextHelp("Deactivate and delete the key in IAM (keyburn --verify --respond=delete does both), create a new one kept in a secret store, and remove the key from the file and from git history.").
				WithProperties(sarif.Properties{"security-severity": "9.0", "tags": []string{"security", "secret"}})
		}
		level := "error"
		if f.Severity != "high" && f.Severity != finding.SeverityCritical {
			level = "warning"
		}
		for _, l := range f.Locations {
			msg := fmt.Sprintf("AWS access key %s", f.KeyID)
			if f.KeyID == "" {
				msg = "AWS secret access key without its key ID"
			}
			if f.AccountID != "" {
				msg += " of account " + f.AccountID
			}
			if f.Paired() {
				msg += fmt.Sprintf(", with its secret access key %s", f.Secret.Redacted())
			} else {
				msg += " (no secret found near it)"
			}
			if v := f.Verification; v != nil {
				msg += "; verified " + v.Status
				if v.Root {
					msg = "ROOT " + msg + "; it is the root user's key: it can do everything in account " + v.Account
				} else if v.Reach != nil {
					msg += "; reach: " + v.Reach.Summary()
				}
			}
			if r := f.Response; r != nil {
				msg += "; action " + r.Action
				if r.Evidence != nil {
					msg += "; CloudTrail: " + r.Evidence.Summary()
				}
			}
			if l.Commit != "" {
				msg += "; added in commit " + l.Commit
			}
			if l.Encoding != "" {
				msg += "; " + hiddenBy(l.Encoding)
			}
			if l.Binary {
				msg += "; a string in a binary file"
			}
			res := run.CreateResultForRule(f.Rule).
				WithLevel(level).
				WithMessage(sarif.NewTextMessage(msg)).
				WithPartialFingerPrints(map[string]any{"keyburn/v1": f.Fingerprint()})
			region := sarif.NewRegion().WithStartLine(max(1, l.Line)).WithStartColumn(max(1, l.Column))
			if l.Encoding == "" && f.KeyID != "" { // an encoded key's length in the file is not its own
				region = region.WithEndColumn(max(1, l.Column) + len(f.KeyID))
			}
			res.AddLocation(sarif.NewLocationWithPhysicalLocation(
				sarif.NewPhysicalLocation().
					WithArtifactLocation(sarif.NewSimpleArtifactLocation(artifactURI(l.File))).
					WithRegion(region)))
		}
	}
	rep.AddRun(run)
	return rep.PrettyWrite(w)
}

// artifactURI makes a path relative and URI-shaped, as code scanning wants.
func artifactURI(p string) string {
	p = strings.TrimPrefix(p, "./")
	return strings.ReplaceAll(p, " ", "%20")
}

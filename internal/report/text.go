package report

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/keyburn/keyburn/internal/finding"
	"github.com/keyburn/keyburn/internal/secret"
)

const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiRed    = "\x1b[31m"
	ansiYellow = "\x1b[33m"
	ansiDim    = "\x1b[2m"
)

// Text writes findings for people: one block per credential, its secret
// redacted, then every place it was seen.
func Text(w io.Writer, fs []*finding.Finding, opts Options) error {
	bw := bufio.NewWriter(w)
	paint := func(code, s string) string {
		if !opts.Color {
			return s
		}
		return code + s + ansiReset
	}
	for i, f := range fs {
		if i > 0 {
			bw.WriteString("\n")
		}
		sevColor := ansiYellow
		if f.Severity == "high" || f.Severity == finding.SeverityCritical {
			sevColor = ansiRed
		}
		id := f.KeyID
		if id == "" {
			id = "(secret without key ID)"
		}
		head := paint(ansiBold+sevColor, id)
		fmt.Fprintf(bw, "%s  %s  %s", head, f.Rule, paint(sevColor, f.Severity))
		if f.AccountID != "" {
			fmt.Fprintf(bw, "  account %s", f.AccountID)
		}
		if f.Temporary {
			bw.WriteString("  temporary")
		}
		bw.WriteString("\n")
		switch {
		case f.Paired() && opts.ShowSecret:
			fmt.Fprintf(bw, "  secret       %s\n", f.Secret.Reveal())
		case f.Vouched != nil:
			fmt.Fprintf(bw, "  vouched by   %s", Printable(f.Vouched.By))
			if f.Vouched.Event != "" {
				fmt.Fprintf(bw, "  %s", Printable(f.Vouched.Event))
			}
			bw.WriteString(paint(ansiDim, "  (no secret: AWS found the key exposed)") + "\n")
		case f.Paired():
			fmt.Fprintf(bw, "  secret       %s  %s\n", f.Secret.Redacted(), paint(ansiDim, "sha256:"+f.Secret.SHA256()[:16]))
		default:
			fmt.Fprintf(bw, "  secret       %s\n", paint(ansiDim, "none found near the key ID (unverifiable)"))
		}
		if !f.SessionToken.IsZero() {
			fmt.Fprintf(bw, "  token        %s\n", f.SessionToken.Redacted())
		}
		if v := f.Verification; v != nil {
			fmt.Fprintf(bw, "  verdict      %s", v.Status)
			if v.ARN != "" {
				fmt.Fprintf(bw, "  %s", v.ARN)
			}
			if v.Error != "" {
				fmt.Fprintf(bw, "  (%s)", Printable(v.Error))
			}
			bw.WriteString("\n")
		}
		if v := f.Verification; v != nil && v.Reach != nil {
			for i, part := range strings.Split(v.Reach.Summary(), "; ") {
				label := "reach      "
				if i > 0 {
					label = "           "
				}
				fmt.Fprintf(bw, "  %s  %s\n", label, part)
			}
		}
		if v := f.Verification; v != nil && v.Root {
			fmt.Fprintf(bw, "  ROOT KEY     %s\n", paint(ansiBold+ansiRed, "the account's root user: it can do everything in account "+v.Account))
			if r := f.Response; r == nil || r.Action != "deleted" {
				fmt.Fprintf(bw, "  to do        %s\n", finding.RootKeyAdvice(f.KeyID, v.Account))
			}
		}
		if r := f.Response; r != nil {
			fmt.Fprintf(bw, "  action       %s", r.Action)
			if r.At != "" {
				fmt.Fprintf(bw, " at %s", r.At)
			}
			if r.DueAt != "" {
				fmt.Fprintf(bw, "; deletion due at %s", r.DueAt)
			}
			switch {
			case r.Error != "":
				fmt.Fprintf(bw, "  (%s)", Printable(r.Error))
			case r.Reason != "":
				fmt.Fprintf(bw, "  (%s)", Printable(r.Reason))
			}
			bw.WriteString("\n")
			if rp := r.Replacement; rp != nil {
				fmt.Fprintf(bw, "  replacement  %s, in AWS Secrets Manager as %s: move the application to it\n", rp.KeyID, Printable(rp.Secret))
			}
			if r.Evidence != nil {
				// One clause a line: the summary is long.
				for i, part := range strings.Split(r.Evidence.Summary(), "; ") {
					label := "evidence   "
					if i > 0 {
						label = "           "
					}
					fmt.Fprintf(bw, "  %s  %s\n", label, part)
				}
			}
		}
		if v := f.Verification; v != nil && len(v.Quarantine) > 0 {
			fmt.Fprintf(bw, "  quarantine   %s\n", finding.QuarantineAdvice(v.Quarantine, f.Response != nil && f.Response.Action == "deleted"))
		}
		for j, l := range f.Locations {
			label := "found in    "
			if j > 0 {
				label = "            "
			}
			fmt.Fprintf(bw, "  %s %s\n", label, Printable(locationText(l, f.Secret)))
		}
		fmt.Fprintf(bw, "  fingerprint  %s\n", paint(ansiDim, f.Fingerprint()))
	}
	return bw.Flush()
}

// hiddenBy says how a key was hidden, from a Location's Encoding:
// "decoded from base64, then percent-encoding", "joined from string
// literals".
func hiddenBy(encoding string) string {
	switch encoding {
	case "concatenation":
		return "joined from string literals"
	case "utf-16le":
		return "a UTF-16LE string"
	}
	var parts []string
	for _, e := range strings.Split(encoding, ">") {
		if e == "percent" {
			e = "percent-encoding"
		}
		parts = append(parts, e)
	}
	return "decoded from " + strings.Join(parts, ", then ")
}

func locationText(l finding.Location, headline secret.Secret) string {
	var b strings.Builder
	if l.Staged {
		b.WriteString("(staged) ") // in the index only: no commit has it
	}
	if l.Line > 0 {
		fmt.Fprintf(&b, "%s:%d:%d", l.File, l.Line, l.Column)
	} else {
		b.WriteString(l.File) // not a place in a file: a notice
	}
	other := !l.Secret.IsZero() && l.Secret.Reveal() != headline.Reveal()
	switch {
	case other && l.SecretFile != "":
		fmt.Fprintf(&b, " (another secret, %s, in %s)", l.Secret.Redacted(), l.SecretFile)
	case other:
		fmt.Fprintf(&b, " (another secret, %s, on line %d)", l.Secret.Redacted(), l.SecretLine)
	case l.SecretFile != "":
		fmt.Fprintf(&b, " (secret in %s)", l.SecretFile)
	case l.SecretLine > 0 && l.SecretLine != l.Line:
		fmt.Fprintf(&b, " (secret on line %d)", l.SecretLine)
	}
	if l.Encoding != "" {
		fmt.Fprintf(&b, " (%s)", hiddenBy(l.Encoding))
	}
	if l.Binary {
		b.WriteString(" (a string in a binary file)")
	}
	if l.Commit != "" {
		c := l.Commit
		if len(c) > 12 {
			c = c[:12]
		}
		fmt.Fprintf(&b, "  commit %s", c)
		if l.Author != "" {
			fmt.Fprintf(&b, " by %s", l.Author)
		}
		if l.Date != "" {
			fmt.Fprintf(&b, " on %s", l.Date)
		}
		if l.Ref != "" {
			fmt.Fprintf(&b, " in %s", l.Ref)
			if n := len(l.Refs) - 1; n > 0 {
				fmt.Fprintf(&b, " (+%d more)", n)
			}
		}
	}
	if l.Unreachable {
		b.WriteString("  unreachable")
		if l.Commit == "" && l.Blob != "" {
			fmt.Fprintf(&b, " blob %s", l.Blob)
		}
	}
	return b.String()
}

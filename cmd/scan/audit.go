package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/keyburn/keyburn/internal/store"
)

const auditUsage = `usage: keyburn scan audit [--state FILE] [--key KEYID] [--format text|json]

Prints the audit log: every step taken on a key (owner check, last use,
deactivate, delete), who took it, when, AWS's request ID, and the key's
status before and after. Secrets are never in it.

Flags:
`

func runAudit(ctx context.Context, args []string, stdout io.Writer, u *ui) (int, error) {
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	state := fs.String("state", defaultState(), "the state `file`")
	key := fs.String("key", "", "only this key `ID`")
	format := fs.String("format", "text", "text or json")
	fs.Usage = func() { fmt.Fprint(u.w, auditUsage); fs.PrintDefaults() }
	if err := parseFlags(fs, args, u); err != nil {
		return exitError, err
	}
	if _, err := os.Stat(*state); err != nil {
		return exitError, fmt.Errorf("state %s: %w", *state, err)
	}
	st, err := store.Open(*state)
	if err != nil {
		return exitError, err
	}
	defer st.Close()
	log, err := st.AuditLog(ctx, *key)
	if err != nil {
		return exitError, err
	}
	switch *format {
	case "json":
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if log == nil {
			log = []store.AuditRecord{}
		}
		return exitClean, enc.Encode(log)
	case "text":
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "AT\tKEY\tACTION\tOUTCOME\tBEFORE\tAFTER\tUSER\tACCOUNT\tREQUEST\tDETAIL\tACTOR")
		for _, r := range log {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.At.UTC().Format(time.RFC3339), r.KeyID, r.Action,
				r.Outcome, r.Before, r.After, r.UserName, r.Account, r.RequestID, r.Detail, r.Actor)
		}
		return exitClean, tw.Flush()
	default:
		return exitError, fmt.Errorf("--format %q: want text or json", *format)
	}
}

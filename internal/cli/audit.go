package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	flag "github.com/spf13/pflag"
	"io"
	"strings"
	"time"

	"github.com/keyburn/keyburn/internal/store"
)

const auditUsage = `usage: keyburn scan audit [--state FILE] [--key KEYID] [--format text|json] [-v]
       keyburn scan audit [--state FILE] --requeue ID|all ...

Prints the deletions still pending (with the time each is due), the audit
log: every step taken on a key (last use, reach, owner check, deactivate,
delete, cancelled deletions, revoked sessions, evidence), when, and the key's
status before and after; the notifications not delivered (waiting for a
retry, or parked with the reason); and the receiver's deliveries parked after
failing (a GitHub or AWS outage outlasting their retries), with the reason.
--requeue puts parked deliveries back in the queue ("all" for every one); the
receiver sharing the state file picks them up. -v adds each step's detail, AWS
request ID and actor; JSON has every field. Secrets are never in it.

Flags:
`

// auditWidth is the widest line of the text view without -v: a terminal
// of 100 columns shows it unwrapped.
const auditWidth = 100

// auditReport is the JSON form.
type auditReport struct {
	PendingDeletions []store.Deletion    `json:"pending_deletions"`
	Records          []store.AuditRecord `json:"records"`
	// Notifications are those not sent: waiting for a retry, or parked
	// after too many failures, with the reason.
	Notifications []undelivered `json:"undelivered_notifications"`
	// Parked are the receiver's deliveries parked after failing.
	Parked []parked `json:"parked_deliveries"`
}

// parked is a parked delivery, as the audit shows it.
type parked struct {
	ID        string `json:"id"`
	Event     string `json:"event"`
	What      string `json:"what,omitempty"` // its dedupe key: repository, ref and range, or alert
	Attempts  int    `json:"attempts"`
	LastError string `json:"last_error"`
}

// undelivered is a notification not sent, as the audit shows it.
type undelivered struct {
	Target    string `json:"target"` // kind and fingerprint, never the URL
	About     string `json:"about"`  // key, event, action, repository
	Status    string `json:"status"`
	Attempts  int    `json:"attempts"`
	LastError string `json:"last_error,omitempty"`
}

func runAudit(ctx context.Context, args []string, stdout io.Writer, u *ui) (int, error) {
	fset := flag.NewFlagSet("audit", flag.ContinueOnError)
	state := fset.String("state", "", "the state: a `file`, or a postgres:// URL; default $KEYBURN_STATE_URL, else "+stateDefault)
	key := fset.String("key", "", "only this key `ID`")
	format := fset.String("format", "text", "text or json")
	verbose := fset.BoolP("verbose", "v", false, "add each step's detail, request ID and actor")
	requeue := fset.StringSlice("requeue", nil, "put the parked delivery `ID` back in the queue (repeat, or \"all\")")
	if err := parseFlags(fset, args, u, auditUsage, stdout); err != nil {
		return exitError, err
	}
	*state = store.Where(*state)
	if *format != "text" && *format != "json" {
		return exitError, fmt.Errorf("--format %q: want text or json", *format)
	}
	if len(*requeue) > 0 {
		return runRequeue(ctx, *state, *requeue, u)
	}
	rep := auditReport{PendingDeletions: []store.Deletion{}, Records: []store.AuditRecord{}, Notifications: []undelivered{}, Parked: []parked{}}
	switch exists, err := store.Exists(*state); {
	case err != nil:
		return exitError, fmt.Errorf("state %s: %w", store.Describe(*state), err)
	case !exists:
		// Nothing was ever recorded here; do not create the file.
	default:
		st, err := store.Open(*state)
		if err != nil {
			return exitError, err
		}
		defer st.Close()
		pending, err := st.PendingDeletions(ctx)
		if err != nil {
			return exitError, err
		}
		log, err := st.AuditLog(ctx, *key)
		if err != nil {
			return exitError, err
		}
		for _, d := range pending {
			if *key == "" || d.KeyID == *key {
				rep.PendingDeletions = append(rep.PendingDeletions, d)
			}
		}
		rep.Records = append(rep.Records, log...)
		ns, err := st.Notifications(ctx)
		if err != nil {
			return exitError, err
		}
		for _, n := range ns {
			if n.Status == store.Sent || *key != "" && !strings.HasPrefix(n.Dedupe, *key+" ") {
				continue
			}
			rep.Notifications = append(rep.Notifications, undelivered{Target: n.Target, About: n.Dedupe, Status: n.Status,
				Attempts: n.Attempts, LastError: n.LastError})
		}
		if *key == "" {
			ds, err := st.Parked(ctx)
			if err != nil {
				return exitError, err
			}
			for _, d := range ds {
				rep.Parked = append(rep.Parked, parked{ID: d.ID, Event: d.Event, What: d.DedupeKey, Attempts: d.Attempts, LastError: d.LastError})
			}
		}
	}
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return exitClean, enc.Encode(rep)
	}
	if len(rep.Records) == 0 && len(rep.PendingDeletions) == 0 && len(rep.Notifications) == 0 && len(rep.Parked) == 0 {
		u.printf("nothing recorded in %s", store.Describe(*state))
		return exitClean, nil
	}
	return exitClean, writeAudit(stdout, rep, time.Now(), *verbose)
}

// wrap breaks s into lines of at most width runes at spaces (a longer
// word gets a line of its own); lines after the first are indented by two.
func wrap(s string, width int) []string {
	var lines []string
	var b strings.Builder
	for _, w := range strings.Fields(s) {
		if b.Len() > 0 && len([]rune(b.String()))+1+len([]rune(w)) > width {
			lines = append(lines, b.String())
			b.Reset()
			b.WriteString(" ")
		}
		if b.Len() > 0 {
			b.WriteString(" ")
		}
		b.WriteString(w)
	}
	if b.Len() > 0 {
		lines = append(lines, b.String())
	}
	return lines
}

// writeAudit writes the text view: pending deletions, then the log, one
// line each and at most auditWidth columns; verbose adds a line of detail
// under each record.
func writeAudit(w io.Writer, rep auditReport, now time.Time, verbose bool) error {
	var b strings.Builder
	line := func(s string) {
		if !verbose && len([]rune(s)) > auditWidth {
			s = string([]rune(s)[:auditWidth-1]) + "…"
		}
		b.WriteString(strings.TrimRight(s, " ") + "\n")
	}
	if n := len(rep.PendingDeletions); n > 0 {
		line(fmt.Sprintf("PENDING DELETIONS (%d)", n))
		for _, d := range rep.PendingDeletions {
			when := "due now"
			if left := d.DueAt.Sub(now); left > 0 {
				when = "in " + left.Round(time.Minute).String()
			}
			line(fmt.Sprintf("  %-20s  due %s (%s)  user %s  account %s", d.KeyID, d.DueAt.UTC().Format("2006-01-02 15:04:05Z"),
				when, d.UserName, d.Account))
		}
		b.WriteString("\n")
	}
	if len(rep.Records) > 0 {
		line(fmt.Sprintf("%-20s  %-20s  %-15s  %-9s  %s", "AT (UTC)", "KEY", "STEP", "OUTCOME", "STATUS  USER"))
		for _, r := range rep.Records {
			status := r.Before
			if r.After != "" && r.After != r.Before {
				status += "→" + r.After
			}
			line(fmt.Sprintf("%-20s  %-20s  %-15s  %-9s  %-17s %s", r.At.UTC().Format("2006-01-02 15:04:05"), r.KeyID,
				r.Action, r.Outcome, status, r.UserName))
			if r.Action == "evidence" && !verbose {
				// What the key did is the point of this record: shown
				// whole, a clause a line, wrapped to the width.
				for _, part := range strings.Split(r.Detail, "; ") {
					for _, l := range wrap(part, auditWidth-6) {
						line("    " + l)
					}
				}
			}
			if verbose {
				var parts []string
				for _, p := range [][2]string{{"", r.Detail}, {"account ", r.Account}, {"request ", r.RequestID}, {"by ", r.Actor}} {
					if p[1] != "" {
						parts = append(parts, p[0]+p[1])
					}
				}
				if len(parts) > 0 {
					line("    " + strings.Join(parts, "; "))
				}
			}
		}
	}
	if n := len(rep.Notifications); n > 0 {
		b.WriteString("\n")
		line(fmt.Sprintf("NOTIFICATIONS NOT DELIVERED (%d)", n))
		for _, u := range rep.Notifications {
			line(fmt.Sprintf("  %-6s  %-23s  %d attempt(s)  %s", u.Status, u.Target, u.Attempts, u.About))
			if u.LastError != "" {
				line("    " + u.LastError)
			}
		}
	}
	if n := len(rep.Parked); n > 0 {
		b.WriteString("\n")
		line(fmt.Sprintf("PARKED DELIVERIES (%d): 'keyburn scan audit --requeue ID' (or all) retries them", n))
		for _, d := range rep.Parked {
			line(fmt.Sprintf("  %-36s  %-22s  %d attempt(s)", d.ID, d.Event, d.Attempts))
			if d.What != "" {
				line("    " + d.What)
			}
			line("    " + d.LastError)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// runRequeue puts parked deliveries back in the receiver's queue.
func runRequeue(ctx context.Context, state string, ids []string, u *ui) (int, error) {
	if exists, err := store.Exists(state); err != nil || !exists {
		return exitError, fmt.Errorf("state %s: nothing recorded there (%v)", store.Describe(state), err)
	}
	st, err := store.Open(state)
	if err != nil {
		return exitError, err
	}
	defer st.Close()
	if len(ids) == 1 && ids[0] == "all" {
		ids = nil
	}
	n, err := st.Requeue(ctx, ids...)
	if err != nil {
		return exitError, err
	}
	u.printf("%d parked deliver%s requeued", n, map[bool]string{true: "y", false: "ies"}[n == 1])
	if n == 0 {
		return exitError, errors.New("nothing requeued: no parked delivery by that ID ('keyburn scan audit' lists them)")
	}
	return exitClean, nil
}

package report

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keyburn/keyburn/internal/finding"
	"github.com/keyburn/keyburn/internal/secret"
	"github.com/keyburn/keyburn/internal/testtools"
)

// chromium finds Debian's Chromium; without it the test fails (testtools),
// unless KEYBURN_SKIP_MISSING names chromium; .ci/run installs it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{os.Getenv("KEYBURN_CHROMIUM"), "chromium", "chromium-browser"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testtools.Missing(t, "chromium", "scripts/install-test-tools, or apt-get install chromium", "the HTML report's browser test")
	return ""
}

// runChromium runs headless Chromium on a local file with the flags a
// closed network needs, bounded in time.
func runChromium(t *testing.T, bin, page string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--hide-scrollbars", "--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, bin, append(append(base, args...), "file://"+page)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, errOut.String())
	}
	return out.Bytes()
}

// fourUsers is an organisation scan's findings for the four users of a
// triage: an administrator and an IAM manager (critical, deleted), a
// reader (high, left for later by respond_min_severity), an empty user
// (medium), and a file name written to attack the page.
func fourUsers() []*finding.Finding {
	mk := func(id, sev, user string, reach *finding.Reach, resp *finding.Response, file string) *finding.Finding {
		return &finding.Finding{Rule: "aws-access-key", Severity: sev, KeyID: id, AccountID: "123456789012", Secret: secret.New("5cz5JaTvHLCR/Obl71LPbATNwC0uUNDJVdJQXksF"),
			Locations:    []finding.Location{{File: file, Line: 2, Column: 19, Commit: "f14d7debf9775f957cf4f1e8176da0786431f72b", Author: "Dev <dev@example.invalid>", Date: "2026-11-20T09:00:00Z"}},
			Verification: &finding.Verification{Status: "live", ARN: "arn:aws:iam::123456789012:user/" + user, Account: "123456789012", Reach: reach}, Response: resp}
	}
	ev := &finding.Evidence{From: time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC), Regions: []string{"us-east-1"},
		Calls: 2, First: time.Date(2026, 11, 27, 22, 14, 5, 0, time.UTC), Last: time.Date(2026, 11, 27, 22, 15, 0, 0, time.UTC),
		SourceIPs: []finding.Count{{Value: "203.0.113.9", N: 2}}, EventNames: []finding.Count{{Value: "ListBuckets", N: 2}}, CallRegions: []finding.Count{{Value: "us-east-1", N: 2}}}
	return []*finding.Finding{
		mk("AKIAEMPTYEMPTYEMPTY2", "medium", "empty", &finding.Reach{Level: finding.ReachNone}, &finding.Response{Action: "skipped", Reason: "severity medium is below respond_min_severity critical: reported, not acted on"}, "services/empty.env"),
		mk("AKIAREADERREADERREA2", "high", "reader", &finding.Reach{Level: finding.ReachData, Why: []string{"data: s3:GetObject (read-data (attached to group readers))"}},
			&finding.Response{Action: "skipped", Reason: "severity high is below respond_min_severity critical: reported, not acted on"}, "<script>alert(1)</script>.env"),
		mk("AKIAADMINADMINADMIN2", "critical", "admin", &finding.Reach{Level: finding.ReachAdmin, Why: []string{"admin: * on * (AdministratorAccess (attached to user admin))"}},
			&finding.Response{Action: "deleted", At: "2026-11-28T10:00:00Z", Evidence: ev}, "deploy/prod.env"),
		mk("AKIAIAMMGRIAMMGRIAM2", "critical", "iam-manager", &finding.Reach{Level: finding.ReachIAM, Why: []string{"iam: iam:* (manage-iam (inline in user iam-manager))"}},
			&finding.Response{Action: "deleted", At: "2026-11-28T10:00:01Z"}, "infra/iam.tf"),
	}
}

// TestHTMLInChromium renders the HTML report of the four users in headless
// Chromium: the rendered page lists the keys by severity (critical first),
// with what each could do, the action, the evidence and the audit trail;
// a hostile file name stays text (no script runs, no element is made);
// nothing is fetched (the page has no external asset); and a screenshot
// shows the severity badges in their colours.
func TestHTMLInChromium(t *testing.T) {
	bin := chromium(t)
	var buf bytes.Buffer
	audit := func(keyID string) []AuditStep {
		return []AuditStep{{At: "2026-11-28T10:00:00Z", Step: "owner-check", Outcome: "ok"}, {At: "2026-11-28T10:00:00Z", Step: "delete", Outcome: "ok"}}
	}
	if err := HTML(&buf, fourUsers(), Options{Title: "github.com/acme", Generated: "2026-11-28 10:00 UTC", Version: "test", Audit: audit}); err != nil {
		t.Fatal(err)
	}
	if regexp.MustCompile(`(?i)(src|href)\s*=|@import|url\(`).Match(buf.Bytes()) {
		t.Fatal("the page refers to something outside itself")
	}
	if strings.Contains(buf.String(), "5cz5JaTvHLCR/Obl71LPbATNwC0uUNDJVdJQXksF") {
		t.Fatal("the page holds a secret")
	}
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	if err := os.WriteFile(page, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	dom := string(runChromium(t, bin, page, "--dump-dom"))
	text := regexp.MustCompile(`<[^>]+>`).ReplaceAllString(dom, " ")
	order := []string{"AKIAADMINADMINADMIN2", "AKIAIAMMGRIAMMGRIAM2", "AKIAREADERREADERREA2", "AKIAEMPTYEMPTYEMPTY2"}
	last := -1
	for _, id := range order {
		i := strings.Index(text, id)
		if i < 0 || i < last {
			t.Fatalf("rendered page: %s missing or out of severity order:\n%s", id, text)
		}
		last = i
	}
	for _, want := range []string{"administrator: it can do everything", "can manage IAM", "can read data", "nothing notable",
		"below respond_min_severity critical", "CloudTrail evidence", "from 203.0.113.9 (2)", "audit trail (2 steps)", "2 critical", "4 verified live", "2 out of use now"} {
		if !strings.Contains(strings.Join(strings.Fields(text), " "), want) {
			t.Errorf("rendered page lacks %q", want)
		}
	}
	if strings.Contains(dom, "<script>alert(1)</script>") || !strings.Contains(dom, "&lt;script&gt;alert(1)&lt;/script&gt;.env") {
		t.Error("the hostile file name became markup")
	}

	shot := filepath.Join(dir, "report.png")
	runChromium(t, bin, page, "--screenshot="+shot, "--window-size=1280,900")
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 1280 || b.Dy() != 900 {
		t.Fatalf("screenshot %v, want 1280x900", b)
	}
	if !hasColour(img, 0xb3, 0x26, 0x1e) || !hasColour(img, 0x1b, 0x1f, 0x24) {
		t.Error("the screenshot shows no critical badge or no header: the page did not render as designed")
	}
	if os.Getenv("KEEP_SCREENSHOT") != "" {
		data, _ := os.ReadFile(shot)
		os.WriteFile(os.Getenv("KEEP_SCREENSHOT"), data, 0o644)
	}
}

// hasColour reports whether some pixel of img is the colour r, g, b (within
// a little, for anti-aliasing).
func hasColour(img image.Image, r, g, b uint8) bool {
	near := func(x uint32, y uint8) bool { d := int(x>>8) - int(y); return d > -6 && d < 6 }
	bounds := img.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y; y += 2 {
		for x := bounds.Min.X; x < bounds.Max.X; x += 2 {
			pr, pg, pb, _ := img.At(x, y).RGBA()
			if near(pr, r) && near(pg, g) && near(pb, b) {
				return true
			}
		}
	}
	return false
}

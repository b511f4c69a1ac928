// Package report writes findings: text for people, JSON and JSON Lines with
// the fields of the finding format (docs/architecture.md), SARIF 2.1.0 for
// GitHub code scanning, and one self-contained HTML page to hand around. A
// secret is written redacted unless Options.ShowSecret (never in HTML).
package report

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/keyburn/keyburn/internal/finding"
)

// Formats lists the formats Write accepts.
var Formats = []string{"text", "json", "jsonl", "sarif", "html"}

// Options configures output.
type Options struct {
	ShowSecret bool   // write full secrets (the user asked for them)
	Color      bool   // ANSI colour in text (only on a terminal)
	Version    string // keyburn's version, for SARIF and HTML

	// For the HTML report: what was scanned, when, and each key's audit
	// trail (nil: none shown).
	Title, Generated string
	Audit            func(keyID string) []AuditStep
}

// Write writes findings in format.
func Write(w io.Writer, format string, fs []*finding.Finding, opts Options) error {
	switch format {
	case "text":
		return Text(w, fs, opts)
	case "json":
		return JSON(w, fs, opts)
	case "jsonl":
		return JSONL(w, fs, opts)
	case "sarif":
		return SARIF(w, fs, opts)
	case "html":
		return HTML(w, fs, opts)
	default:
		return fmt.Errorf("unknown format %q (want text, json, jsonl, sarif or html)", format)
	}
}

// Record is the JSON form of a finding. The first location is flattened into
// file, line, column, commit …; locations lists them all when there are more.
type Record struct {
	Rule                 string                `json:"rule"`
	Severity             string                `json:"severity"`
	KeyID                string                `json:"key_id"`
	AccountID            string                `json:"account_id"`
	Temporary            bool                  `json:"temporary,omitempty"`
	Paired               bool                  `json:"paired"`
	Secret               string                `json:"secret,omitempty"` // only with --show-secret
	SecretRedacted       string                `json:"secret_redacted"`
	SecretSHA256         string                `json:"secret_sha256"`
	SessionTokenRedacted string                `json:"session_token_redacted,omitempty"`
	Fingerprint          string                `json:"fingerprint"`
	File                 string                `json:"file"`
	Line                 int                   `json:"line"`
	Column               int                   `json:"column"`
	SecretLine           int                   `json:"secret_line,omitempty"`
	SecretFile           string                `json:"secret_file,omitempty"`
	Commit               string                `json:"commit,omitempty"`
	Author               string                `json:"author,omitempty"`
	Date                 string                `json:"date,omitempty"`
	Ref                  string                `json:"ref,omitempty"`
	Refs                 []string              `json:"refs,omitempty"`
	Blob                 string                `json:"blob,omitempty"`
	Staged               bool                  `json:"staged,omitempty"`
	Unreachable          bool                  `json:"unreachable,omitempty"`
	Locations            []finding.Location    `json:"locations,omitempty"`
	Vouched              *finding.Vouch        `json:"vouched,omitempty"`
	Verification         *finding.Verification `json:"verification,omitempty"`
	Response             *finding.Response     `json:"response,omitempty"`
}

// NewRecord converts a finding.
func NewRecord(f *finding.Finding, opts Options) Record {
	loc := f.Locations[0]
	r := Record{
		Rule: f.Rule, Severity: f.Severity, KeyID: f.KeyID, AccountID: f.AccountID,
		Temporary: f.Temporary, Paired: f.Paired(),
		SecretRedacted: f.Secret.Redacted(), SecretSHA256: f.Secret.SHA256(),
		SessionTokenRedacted: f.SessionToken.Redacted(),
		Fingerprint:          f.Fingerprint(),
		File:                 loc.File, Line: loc.Line, Column: loc.Column, SecretLine: loc.SecretLine,
		SecretFile: loc.SecretFile, Commit: loc.Commit, Author: loc.Author, Date: loc.Date, Ref: loc.Ref,
		Refs: loc.Refs, Blob: loc.Blob, Staged: loc.Staged, Unreachable: loc.Unreachable,
		Vouched: f.Vouched, Verification: f.Verification, Response: f.Response,
	}
	if opts.ShowSecret {
		r.Secret = f.Secret.Reveal()
	}
	if len(f.Locations) > 1 {
		r.Locations = f.Locations
	}
	return r
}

// JSON writes the findings as one JSON array.
func JSON(w io.Writer, fs []*finding.Finding, opts Options) error {
	recs := make([]Record, 0, len(fs))
	for _, f := range fs {
		recs = append(recs, NewRecord(f, opts))
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(recs)
}

// JSONL writes one JSON object per line.
func JSONL(w io.Writer, fs []*finding.Finding, opts Options) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, f := range fs {
		if err := enc.Encode(NewRecord(f, opts)); err != nil {
			return err
		}
	}
	return nil
}

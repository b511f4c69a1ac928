package engine

import (
	"testing"

	"github.com/keyburn/keyburn/internal/finding"
	"github.com/keyburn/keyburn/internal/source"
	"github.com/keyburn/keyburn/internal/vectors"
)

// TestVectors runs every detection vector through the engine, decoders
// included: a plain vector must give the same findings as the detector's
// own test expects, and an encoded one must be found, paired, and noted
// with its encoding.
func TestVectors(t *testing.T) {
	m := matcher(t, "")
	vs, err := vectors.Load("../../testdata/vectors", 20)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			coll := finding.NewCollector()
			for _, mt := range Matches(m, source.Whole(v.Body, source.Provenance{Path: v.Name}), DefaultDecodeDepth) {
				coll.Add(mt)
			}
			var found []vectors.Found
			for _, f := range coll.Findings() {
				vf := vectors.Found{Rule: f.Rule, KeyID: f.KeyID, Secret: f.Secret, SessionToken: f.SessionToken}
				for _, loc := range f.Locations {
					vf.Encodings = append(vf.Encodings, loc.Encoding)
				}
				found = append(found, vf)
			}
			for _, e := range v.Check(found) {
				t.Error(e)
			}
		})
	}
}

// TestDecodedLocation: a decoded key is located at its encoded text, and
// its secret's line is that of the encoded secret.
func TestDecodedLocation(t *testing.T) {
	m := matcher(t, "")
	v := vectorNamed(t, "base64-k8s-secret")
	{
		ms := Matches(m, source.Whole(v.Body, source.Provenance{Path: "secret.yaml"}), DefaultDecodeDepth)
		if len(ms) != 1 {
			t.Fatalf("got %d matches, want 1", len(ms))
		}
		loc := ms[0].Location
		if loc.Line != 7 || loc.Column != 22 || loc.SecretLine != 8 || loc.Encoding != "base64" {
			t.Errorf("located at %d:%d, secret line %d, encoding %q; want 7:22, secret line 8, base64", loc.Line, loc.Column, loc.SecretLine, loc.Encoding)
		}
	}
}

func vectorNamed(t *testing.T, name string) vectors.Vector {
	t.Helper()
	vs, err := vectors.Load("../../testdata/vectors", 20)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("vector %s is missing", name)
	return vectors.Vector{}
}

func TestLooksConfig(t *testing.T) {
	for _, tc := range []struct {
		text string
		want bool
	}{
		{"apiVersion: v1\nkind: Secret\n", true},
		{"# comment\n\nAWS_REGION=eu-west-1\n", true},
		{"  {\"auths\": {}}", true},
		{"[default]\naws_access_key_id = x\n", true},
		{"---\nfoo: bar\n", true},
		{"export AWS=1\n", false},
		{"package main\n\nimport \"fmt\"\n", false},
		{"#!/bin/sh\nA=1\n", false},
		{"// Copyright 2009\npackage x\n", false},
		{"import os\n", false},
		{"http://example.com\n", false},
		{"", false},
	} {
		if got := looksConfig([]byte(tc.text)); got != tc.want {
			t.Errorf("looksConfig(%q) = %v, want %v", tc.text, got, tc.want)
		}
	}
}

// TestNestedWithoutPath: a history's blobs have no path when scanned; one
// that reads as configuration gets every run decoded, so base64 inside
// base64 is found there as in a named .yaml file.
func TestNestedWithoutPath(t *testing.T) {
	m := matcher(t, "")
	v := vectorNamed(t, "base64-nested.yaml")
	ms := Matches(m, source.Whole(v.Body, source.Provenance{}), DefaultDecodeDepth)
	if len(ms) != 1 || v.Pairs[ms[0].KeyID] == "" || ms[0].Location.Encoding != "base64>base64" {
		t.Fatalf("got %d matches, want the key of %s decoded from base64>base64", len(ms), v.Name)
	}
}

// TestJoinedIsMedium: a key ID joined from string literals is an evasion
// (or a test building a key), reported one level below a plain pair.
func TestJoinedIsMedium(t *testing.T) {
	v := vectorNamed(t, "concat-plus")
	ms := Matches(matcher(t, ""), source.Whole(v.Body, source.Provenance{Path: "app.js"}), DefaultDecodeDepth)
	if len(ms) != 1 || ms[0].Severity != "medium" || ms[0].Location.Line != 1 || ms[0].Location.Column != 22 {
		t.Fatalf("got %d matches (%+v), want one of severity medium at 1:22", len(ms), ms)
	}
}

// Package buildinfo says which version of keyburn a binary is, for both
// binaries (keyburn and keyburn-webhook) alike.
package buildinfo

import "runtime/debug"

// version is set at build time with -ldflags
// "-X github.com/keyburn/keyburn/internal/buildinfo.version=…" (the
// release script does).
var version = ""

// Version is the version of this binary: the one stamped in at build
// time, else the module version of "go install …@v1.2.3", else the commit
// it was built from ("dev-0123456789ab", "+modified" for a dirty tree),
// else "dev".
func Version() string {
	if version != "" {
		return version
	}
	return buildVersion()
}

// buildVersion reads the version from the binary's build information.
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "+modified"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev == "" {
		return "dev"
	}
	return "dev-" + rev + modified
}

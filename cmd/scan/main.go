// Command scan is keyburn under the short path the README's first command
// runs (go run ./cmd/scan dir .); cmd/keyburn is the same command under
// the name it installs as. Package cli has it all.
package main

import "github.com/keyburn/keyburn/internal/cli"

func main() { cli.Main() }

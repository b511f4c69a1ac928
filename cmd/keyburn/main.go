// Command keyburn finds leaked AWS access keys, proves whether they are
// live, and kills the live ones (package cli has it all):
//
//	go install github.com/keyburn/keyburn/cmd/keyburn@latest
package main

import "github.com/keyburn/keyburn/internal/cli"

func main() { cli.Main() }

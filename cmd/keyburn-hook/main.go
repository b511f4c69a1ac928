// Command keyburn-hook is the pre-commit hook's lean entry: it answers a
// clean commit in milliseconds and hands anything else to keyburn
// (package hook has it all):
//
//	go install github.com/keyburn/keyburn/cmd/keyburn-hook@latest
package main

import "github.com/keyburn/keyburn/internal/hook"

func main() { hook.Main() }

// Command webhook is keyburn-webhook under a short path (go run
// ./cmd/webhook); cmd/keyburn-webhook is the same command under the name it
// installs as. Package receiver has it all.
package main

import "github.com/keyburn/keyburn/internal/receiver"

func main() { receiver.Main() }

// Command keyburn-webhook receives GitHub push and secret-scanning webhooks
// for keyburn (package receiver has it all):
//
//	go install github.com/keyburn/keyburn/cmd/keyburn-webhook@latest
package main

import "github.com/keyburn/keyburn/internal/receiver"

func main() { receiver.Main() }

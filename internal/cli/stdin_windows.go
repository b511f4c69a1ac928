package cli

import "io"

// pollable returns r unchanged: Windows console and pipe handles cannot be
// switched to the poller, so Ctrl-C ends a scan of standard input when the
// process exits.
func pollable(r io.Reader) (io.Reader, func()) { return r, func() {} }

// Command webhook receives GitHub push webhooks for keyburn: every delivery is
// checked (X-Hub-Signature-256), stored durably, and answered within
// GitHub's time limit; workers then scan what each push adds.
//
//	KEYBURN_WEBHOOK_SECRET=… webhook --listen :8080
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/keyburn/keyburn/internal/store"
)

const usage = `usage: webhook --listen ADDR [--state FILE] [--secret-file FILE]

Receives GitHub push webhooks. The secret comes from KEYBURN_WEBHOOK_SECRET or
--secret-file (never a flag: flags show in ps); without one it refuses to start.

Endpoints: POST /webhook, GET /healthz, GET /readyz, GET /metrics.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "keyburn webhook:", err)
		os.Exit(2)
	}
}

type config struct {
	listen     string
	state      string
	secretFile string
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	var c config
	fs := flag.NewFlagSet("webhook", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.listen, "listen", "", "address to listen on, such as :8080")
	fs.StringVar(&c.state, "state", "keyburn.db", "the state `file`: delivery queue, verdicts, audit log")
	fs.StringVar(&c.secretFile, "secret-file", "", "read the webhook secret from this `file`")
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.listen == "" {
		fs.Usage()
		return errors.New("--listen is required")
	}
	secret, err := loadSecret(c.secretFile)
	if err != nil {
		return err
	}
	st, err := store.Open(c.state)
	if err != nil {
		return err
	}
	defer st.Close()
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	srv := newServer(c.listen, &handler{secret: secret, store: st, log: log, metrics: newMetrics()})
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("listening", "addr", c.listen, "state", c.state)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	log.Info("shutting down: draining requests in flight")
	return srv.Shutdown(shutdown)
}

// loadSecret reads the webhook secret from a file or KEYBURN_WEBHOOK_SECRET.
func loadSecret(file string) ([]byte, error) {
	s := os.Getenv("KEYBURN_WEBHOOK_SECRET")
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read the webhook secret: %w", err)
		}
		s = strings.TrimRight(string(data), "\r\n")
	}
	if s == "" {
		return nil, errors.New("no webhook secret: set KEYBURN_WEBHOOK_SECRET or --secret-file (GitHub's webhook settings hold the same secret)")
	}
	return []byte(s), nil
}

// newServer builds the HTTP server with every timeout set.
func newServer(addr string, h *handler) *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /webhook", h.webhook)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		depth, err := h.store.QueueDepth(r.Context())
		if err != nil {
			http.Error(w, "state unavailable", http.StatusServiceUnavailable)
			return
		}
		for st, n := range depth {
			h.metrics.queue.WithLabelValues(st).Set(float64(n))
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(h.metrics.reg, promhttp.HandlerOpts{}))
	return &http.Server{
		Addr:              addr,
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}

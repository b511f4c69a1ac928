//go:build unix

package pgtest

import (
	"context"
	"database/sql"
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// TestCluster: two tests' databases are apart, and the cluster answers on
// loopback.
func TestCluster(t *testing.T) {
	a, b := URL(t), URL(t)
	if a == b {
		t.Fatalf("one database for two tests: %s", a)
	}
	db, err := sql.Open("pgx", a)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v string
	if err := db.QueryRowContext(context.Background(), "SELECT current_setting('listen_addresses')").Scan(&v); err != nil || v != "127.0.0.1" {
		t.Errorf("listen_addresses %q, %v; want 127.0.0.1 only", v, err)
	}
}

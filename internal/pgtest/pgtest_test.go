//go:build unix

package pgtest

import (
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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

// TestReapsAClusterWhoseOwnerDied: a cluster left by a test process that
// was killed (its owner file names a process that is gone) is stopped and
// removed by the next start.
func TestReapsAClusterWhoseOwnerDied(t *testing.T) {
	bin, err := binDir()
	if err != nil {
		t.Skip("no PostgreSQL: TestCluster says so")
	}
	s, err := start(bin)
	if err != nil {
		t.Fatal(err)
	}
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(s.dir, "owner"), []byte(strconv.Itoa(gone.Process.Pid)), 0o644)
	reap(bin)
	if _, err := os.Stat(s.dir); !os.IsNotExist(err) {
		s.stop()
		t.Fatalf("the orphan cluster's directory is still there: %v", err)
	}
	db, _ := sql.Open("pgx", s.url("postgres"))
	defer db.Close()
	if err := db.PingContext(context.Background()); err == nil {
		t.Error("the orphan cluster still answers")
	}
}

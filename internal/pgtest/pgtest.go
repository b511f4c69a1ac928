//go:build unix

// Package pgtest runs a throwaway PostgreSQL cluster for a test binary:
// initdb and pg_ctl in a temporary directory (as an unprivileged user when
// the tests run as root, which PostgreSQL refuses to be), listening on a
// free loopback port and nowhere else, without fsync. Each test gets a
// database of its own. Without PostgreSQL a test fails, naming what to
// install, unless KEYBURN_SKIP_MISSING names postgresql (testtools).
package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver

	"github.com/keyburn/keyburn/internal/testtools"
)

// nobody is the user the cluster runs as when the tests run as root.
const nobody = 65534

var (
	once    sync.Once
	cluster *server
	failed  error
	mu      sync.Mutex
	dbs     int
)

type server struct {
	dir, pgCtl string
	port       int
	cred       *syscall.Credential
}

// URL returns the URL of a new, empty database in the test binary's
// cluster, starting the cluster on first use.
func URL(t testing.TB) string {
	t.Helper()
	bin, err := binDir()
	if err != nil {
		testtools.Missing(t, "postgresql", "apt-get install postgresql: initdb and pg_ctl", "the tests of the shared PostgreSQL state")
		return ""
	}
	once.Do(func() { cluster, failed = start(bin) })
	if failed != nil {
		t.Fatalf("start PostgreSQL: %v", failed)
	}
	mu.Lock()
	dbs++
	name := fmt.Sprintf("keyburn_test_%d", dbs)
	mu.Unlock()
	admin, err := sql.Open("pgx", cluster.url("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	return cluster.url(name)
}

// Private starts a cluster of the test's own, stopped when it ends, and
// returns the URL of a database in it: for a package whose TestMain cannot
// call Stop.
func Private(t testing.TB) string {
	t.Helper()
	bin, err := binDir()
	if err != nil {
		testtools.Missing(t, "postgresql", "apt-get install postgresql: initdb and pg_ctl", "the tests of the shared PostgreSQL state")
		return ""
	}
	s, err := start(bin)
	if err != nil {
		t.Fatalf("start PostgreSQL: %v", err)
	}
	t.Cleanup(s.stop)
	return s.url("postgres")
}

// Stop stops the cluster, if one was started, and removes its files: call
// it from TestMain once the tests have run.
func Stop() {
	if cluster != nil {
		cluster.stop()
		cluster = nil
	}
}

func (s *server) stop() {
	cmd := exec.Command(s.pgCtl, "-D", filepath.Join(s.dir, "data"), "-m", "immediate", "-w", "stop")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	_ = cmd.Run()
	os.RemoveAll(s.dir)
}

func (s *server) url(db string) string {
	return fmt.Sprintf("postgres://keyburn@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// binDir finds the directory of initdb and pg_ctl: PATH, else Debian's.
func binDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) == 0 {
		return "", errors.New("initdb not found")
	}
	return filepath.Dir(matches[len(matches)-1]), nil
}

func start(bin string) (*server, error) {
	reap(bin)
	dir, err := os.MkdirTemp("", "keyburn-pg-")
	if err != nil {
		return nil, err
	}
	// The test process that owns the cluster: a later one stops it if
	// this one was killed before it could (a timeout, SIGKILL).
	if err := os.WriteFile(filepath.Join(dir, "owner"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, err
	}
	s := &server{dir: dir, pgCtl: filepath.Join(bin, "pg_ctl")}
	if os.Geteuid() == 0 {
		s.cred = &syscall.Credential{Uid: nobody, Gid: nobody}
		if err := os.Chown(dir, nobody, nobody); err != nil {
			return nil, err
		}
	}
	run := func(name string, args ...string) error {
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %w: %s", name, err, out)
		}
		return nil
	}
	data := filepath.Join(dir, "data")
	if err := run("initdb", "-D", data, "-U", "keyburn", "-A", "trust", "-E", "UTF8", "--no-sync"); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	opts := "-h 127.0.0.1 -p " + strconv.Itoa(s.port) + " -k " + dir + " -F"
	if err := run("pg_ctl", "-D", data, "-l", filepath.Join(dir, "log"), "-w", "-t", "60", "-o", opts, "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "log"))
		return nil, fmt.Errorf("%w\n%s", err, log)
	}
	return s, nil
}

// reap stops and removes the clusters of test processes that are gone:
// one killed before its Stop leaves its postgres running.
func reap(bin string) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "keyburn-pg-*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, "owner"))
		if err != nil {
			continue // being set up, or not ours
		}
		pid, err := strconv.Atoi(string(b))
		if err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); err == nil || errors.Is(err, syscall.EPERM) {
			continue // its owner lives
		}
		s := &server{dir: dir, pgCtl: filepath.Join(bin, "pg_ctl")}
		if os.Geteuid() == 0 {
			s.cred = &syscall.Credential{Uid: nobody, Gid: nobody}
		}
		s.stop()
	}
}

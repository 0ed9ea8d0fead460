package postgres_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/internal/testenv"
	"github.com/freshen-io/freshen/ledger/ledgertest"
	"github.com/freshen-io/freshen/ledger/postgres"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopSharedPostgres()
	os.Exit(code)
}

// open opens a ledger in a fresh schema of the package's server.
func open(t *testing.T, schema string, now func() time.Time) *postgres.Ledger {
	t.Helper()
	l, err := postgres.Open(context.Background(), postgres.Config{DSN: testenv.SharedPostgres(t).DSN, Schema: schema, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestConformance(t *testing.T) {
	ledgertest.Run(t, func(t *testing.T, now func() time.Time) freshen.Ledger {
		return open(t, testenv.UniqueSchema("ledger"), now)
	})
}

func TestShared(t *testing.T) {
	ledgertest.RunShared(t, func(t *testing.T) (freshen.Ledger, freshen.Ledger) {
		schema := testenv.UniqueSchema("shared")
		return open(t, schema, time.Now), open(t, schema, time.Now)
	})
}

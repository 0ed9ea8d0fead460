package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/freshen-io/freshen/embed/openai/openaitest"
	"github.com/freshen-io/freshen/internal/testenv"
)

// migrateStatus is the JSON of `freshen migrate status`.
type migrateStatus struct {
	Serving struct {
		ID int `json:"id"`
	} `json:"serving"`
	Other *struct {
		ID      int    `json:"id"`
		State   string `json:"state"`
		Objects int    `json:"objects"`
		Of      int    `json:"of"`
		Backlog int    `json:"backlog"`
		Tokens  int64  `json:"tokens"`
	} `json:"other"`
}

// TestMigrateModelIntoPgvector changes the embedding model of a running
// service that writes to pgvector (the built-in model, 512 values, to an
// OpenAI-compatible server's, 32): `migrate plan` prices it; `migrate
// start` builds a second table beside the serving one while documents
// are edited; `kill -9` in the middle loses nothing (the restarted
// service resumes the build); search uses the old model until `switch`
// and the new one after it, and so does the stable view applications
// query; `rollback` moves both back.
func TestMigrateModelIntoPgvector(t *testing.T) {
	dsn := testenv.SharedPGlite(t).DSN
	table := testenv.UniqueTable("mig")
	testMigrateModel(t, fmt.Sprintf("index:\n  type: pgvector\n  dsn: %q\n  table: %s\n", dsn, table), "", dsn, table)
}

// TestMigrateModelAndChunkingEmbedded is the same migration on the
// embedded index, with other chunk settings too: the new generation
// lives in data-dir/gen-2 until it serves.
func TestMigrateModelAndChunkingEmbedded(t *testing.T) {
	testMigrateModel(t, "", "chunk: {min-tokens: 32, target-tokens: 80, max-tokens: 160}\n", "", "")
}

// testMigrateModel migrates to the model of an OpenAI-compatible test
// server (and nextYAML's settings); with a pgvector table (dsn, table)
// it also checks the published view.
func testMigrateModel(t *testing.T, indexYAML, nextYAML, dsn, table string) {
	w := newWorldWith(t, "1h", 0, indexYAML)
	// The new model's server, slowed by a rate limit so that the build
	// takes long enough to be killed in the middle.
	fake := openaitest.New(t, openaitest.Options{Model: "next-embed", Embedder: openaitest.Hash{Dim: 32, MaxTokens: 512}, Record: true})

	// The demo corpus, in the bucket and indexed by generation 1.
	root := filepath.Join("..", "..", "examples", "corpus")
	var keys []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, _ := os.ReadFile(p)
		key, _ := filepath.Rel(root, p)
		w.put(key, "", body)
		keys = append(keys, key)
		return nil
	})
	waitFor(t, 3*time.Minute, "generation 1 indexed", func() (bool, string) {
		var s status
		w.get("/v1/status", &s)
		return s.Objects == len(keys) && s.Backlog == 0, fmt.Sprintf("%d of %d objects", s.Objects, len(keys))
	})

	next := filepath.Join(t.TempDir(), "next.yaml")
	cur, _ := os.ReadFile(w.cfg)
	os.WriteFile(next, append(cur, fmt.Appendf(nil, `embedder:
  type: openai
  base-url: %s
  model: next-embed
  dim: 32
  max-tokens: 512
  rpm: 120
  batch: {max-texts: 16}
%s`, fake.URL(), nextYAML)...), 0o644)
	migrate := func(wantFail bool, args ...string) string {
		return w.freshen(wantFail, append([]string{"migrate"}, append(args, "--config", next)...)...)
	}
	var plan struct {
		Changes  []string `json:"changes"`
		Target   string   `json:"target"`
		Estimate struct {
			Objects int   `json:"objects"`
			Chunks  int   `json:"chunks"`
			Tokens  int64 `json:"tokens"`
		} `json:"estimate"`
	}
	if err := json.Unmarshal([]byte(migrate(false, "plan", "--json")), &plan); err != nil {
		t.Fatal(err)
	}
	if plan.Estimate.Objects != len(keys) || plan.Estimate.Tokens == 0 || table != "" && !strings.Contains(plan.Target, table+"_g2") {
		t.Fatalf("plan: %+v", plan)
	}
	t.Logf("plan: %v into %s: %d objects, %d chunks, %d tokens", plan.Changes, plan.Target, plan.Estimate.Objects, plan.Estimate.Chunks, plan.Estimate.Tokens)
	if fake.Stats().Requests != 0 {
		t.Fatalf("plan called the provider %d times", fake.Stats().Requests)
	}
	migrate(false, "start")
	migrate(true, "start") // one migration at a time

	status := func() migrateStatus {
		var s migrateStatus
		if err := json.Unmarshal([]byte(migrate(false, "status", "--json")), &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	// Kill -9 once the build is under way, edit while it is down, and
	// start again: the build resumes where it was.
	waitFor(t, time.Minute, "the build to start", func() (bool, string) {
		s := status()
		return s.Other != nil && s.Other.Objects > 0, fmt.Sprintf("%+v", s.Other)
	})
	before := status().Other
	w.kill()
	t.Logf("killed -9 at %d of %d objects of generation 2", before.Objects, before.Of)
	w.put("handbook/onboarding.md", "", []byte("# Onboarding\n\nEdited while freshen was down: bring your own helmet.\n"))
	w.start()
	for i := range 5 {
		w.put(fmt.Sprintf("notes/new-%d.md", i), "", fmt.Appendf(nil, "# New %d\n\nA note written during the migration, number %d.\n", i, i))
	}

	searchSaw := func(q string) bool {
		var hits []hit
		if code := w.get("/v1/search?q="+urlQuery(q), &hits); code != 200 {
			t.Fatalf("search: %d", code)
		}
		for _, r := range fake.Requests() {
			if slices.Contains(r.Input, q) {
				return true
			}
		}
		return false
	}
	if searchSaw("query during the build") {
		t.Fatal("search used the new model before the switch")
	}
	waitFor(t, 3*time.Minute, "generation 2 built", func() (bool, string) {
		s := status()
		return s.Other != nil && s.Other.Objects == s.Other.Of && s.Other.Backlog == 0, fmt.Sprintf("%+v", s.Other)
	})
	if searchSaw("query after the build, before the switch") {
		t.Fatal("search used the new model before the switch")
	}
	view := func() string {
		if table == "" {
			return "(no view)"
		}
		conn, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		var def string
		if err := conn.QueryRow(context.Background(), `SELECT definition FROM pg_views WHERE viewname = $1`, table+"_live").Scan(&def); err != nil {
			t.Fatalf("the view %s_live: %v", table, err)
		}
		return def
	}
	if def := view(); table != "" && (!strings.Contains(def, table) || strings.Contains(def, table+"_g2")) {
		t.Fatalf("before the switch the view reads %s", def)
	}

	waitFor(t, time.Minute, "a switch", func() (bool, string) {
		cmd := exec.Command(freshenBin, "migrate", "switch", "--config", next)
		cmd.Env = append(os.Environ(), w.gw.Env()...)
		b, _ := cmd.CombinedOutput()
		out := string(b)
		if strings.Contains(out, "serves search now") {
			return true, ""
		}
		if !strings.Contains(out, "not complete") {
			t.Fatalf("switch: %s", out)
		}
		return false, out
	})
	waitFor(t, 20*time.Second, "the service to switch", func() (bool, string) {
		var s struct{ Generation int }
		w.get("/v1/status", &s)
		return s.Generation == 2, fmt.Sprint(s.Generation)
	})
	if !searchSaw("query after the switch") {
		t.Fatal("search did not use the new model after the switch")
	}
	if def := view(); table != "" && !strings.Contains(def, table+"_g2") {
		t.Fatalf("after the switch the view reads %s", def)
	}
	// The new generation is exact, and its edits are in.
	if v := w.verify(false, "verify", "--config", next, "--json"); v["missing"].(float64) != 0 || v["orphans"].(float64) != 0 || v["mismatched"].(float64) != 0 {
		t.Fatalf("verify after the switch: %v", v)
	}
	var hits []hit
	w.get("/v1/search?q="+urlQuery("A note written during the migration")+"&k=10&prefix=notes/new-", &hits)
	if len(hits) != 5 {
		t.Fatalf("the notes written during the migration: %d hits", len(hits))
	}

	migrate(false, "rollback")
	waitFor(t, 20*time.Second, "the rollback", func() (bool, string) {
		var s struct{ Generation int }
		w.get("/v1/status", &s)
		return s.Generation == 1, fmt.Sprint(s.Generation)
	})
	if def := view(); table != "" && (!strings.Contains(def, table) || strings.Contains(def, table+"_g2")) {
		t.Fatalf("after the rollback the view reads %s", def)
	}
	if searchSaw("query after the rollback") {
		t.Fatal("search used the new model after the rollback")
	}
}

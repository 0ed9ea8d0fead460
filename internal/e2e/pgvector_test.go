package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/jackc/pgx/v5"
	pgv "github.com/pgvector/pgvector-go"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/internal/testenv"
)

// pgvectorRows reads the table with plain SQL.
func (b *bundle) pgvectorRows() ([]chunkRow, map[freshen.ChunkID][]float32) {
	b.t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, string(b.conf.Index.DSN))
	if err != nil {
		b.t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT chunk_id, key, chunk_hash, ordinal, text, embedding::text FROM `+b.conf.Index.Table)
	if err != nil {
		b.t.Fatal(err)
	}
	defer rows.Close()
	var out []chunkRow
	vecs := map[freshen.ChunkID][]float32{}
	for rows.Next() {
		var r chunkRow
		var id, hash, vec string
		if err := rows.Scan(&id, &r.Key, &hash, &r.Ordinal, &r.Text, &vec); err != nil {
			b.t.Fatal(err)
		}
		var v pgv.Vector
		if err := v.Parse(vec); err != nil {
			b.t.Fatal(err)
		}
		r.ID, r.Hash = freshen.ChunkID(id), freshen.ChunkHash(hash)
		out = append(out, r)
		vecs[r.ID] = v.Slice()
	}
	if err := rows.Err(); err != nil {
		b.t.Fatal(err)
	}
	sortRows(out)
	return out, vecs
}

// TestRunIntoPgvector: versitygw's webhook events drive `freshen run`
// into a pgvector table; after PUT, overwrite, DELETE, DeleteObjects,
// copy and rename, the table read with plain SQL equals the chunks of
// the bucket's bytes. Then `verify` finds rows tampered with in SQL, and
// `verify --repair` fixes them without embedding.
func TestRunIntoPgvector(t *testing.T) {
	dsn := testenv.SharedPGlite(t).DSN
	table := testenv.UniqueTable("e2e")
	w := newWorldWith(t, "1h", 0, fmt.Sprintf("index:\n  type: pgvector\n  dsn: %q\n  table: %s\n", dsn, table))
	doc := func(i int) []byte { return []byte(markdownDoc(int64(i), 3, 3)) }
	for i := 0; i < 6; i++ {
		w.put(fmt.Sprintf("guide/%d 100%%.md", i), "text/markdown", doc(i))
	}
	w.exact(30 * time.Second)
	// Overwrite, delete, batch delete, copy and rename (copy + delete).
	w.put("guide/0 100%.md", "text/markdown", doc(100))
	testenv.Delete(t, w.client, w.bucket, "guide/1 100%.md")
	_, err := w.client.DeleteObjects(context.Background(), &s3.DeleteObjectsInput{Bucket: aws.String(w.bucket),
		Delete: &types.Delete{Objects: []types.ObjectIdentifier{{Key: aws.String("guide/2 100%.md")}, {Key: aws.String("guide/3 100%.md")}}}})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Copy(t, w.client, w.bucket, "guide/4 100%.md", "copies/four+más.md", nil)
	testenv.Copy(t, w.client, w.bucket, "guide/5 100%.md", "renamed/five.md", nil)
	testenv.Delete(t, w.client, w.bucket, "guide/5 100%.md")
	w.exact(30 * time.Second)

	// verify: an exact table has no drift.
	rep := w.verify(false, "verify", "--config", w.cfg, "--json")
	if rep["missing"] != 0.0 || rep["orphans"] != 0.0 || rep["mismatched"] != 0.0 || rep["chunks_checked"] == 0.0 {
		t.Fatalf("verify of an exact table: %v", rep)
	}
	// Tamper in SQL: delete two rows, add a foreign one, change a text.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	got, _ := w.indexRows()
	for _, q := range []string{
		`DELETE FROM ` + table + ` WHERE chunk_id IN ('` + string(got[0].ID) + `', '` + string(got[1].ID) + `')`,
		`INSERT INTO ` + table + ` (chunk_id, bucket, key, chunk_hash, ordinal, headings, text, metadata, embedding, version, updated_at)
			SELECT 'foreign', bucket, 'not/in/the/bucket.md', chunk_hash, ordinal, headings, text, metadata, embedding, version, updated_at
			FROM ` + table + ` WHERE chunk_id = '` + string(got[2].ID) + `'`,
		`UPDATE ` + table + ` SET text = 'edited by hand' WHERE chunk_id = '` + string(got[3].ID) + `'`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	rep = w.verify(true, "verify", "--config", w.cfg, "--json")
	if rep["missing"] != 2.0 || rep["orphans"] != 1.0 || rep["mismatched"] != 1.0 {
		t.Fatalf("verify of the tampered table: %v; want 2 missing, 1 orphan, 1 mismatched", rep)
	}
	// The repair rewrites keys, which needs the data directory: stop run.
	w.kill()
	rep = w.verify(false, "verify", "--config", w.cfg, "--json", "--repair")
	if rep["repaired"] != 4.0 || rep["tokens_embedded"] != 0.0 || rep["remaining"] != 0.0 {
		t.Fatalf("verify --repair: %v; want 4 repaired with 0 tokens, 0 remaining", rep)
	}
	w.assertExact()
}

// verify runs a verify command and decodes its JSON.
func (w *world) verify(wantFail bool, args ...string) map[string]any {
	w.t.Helper()
	out := w.freshen(wantFail, args...)
	var rep map[string]any
	if err := json.Unmarshal([]byte(out[:strings.LastIndex(out, "}")+1]), &rep); err != nil {
		w.t.Fatalf("verify output: %v\n%s", err, out)
	}
	return rep
}

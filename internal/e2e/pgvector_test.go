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
// into a pgvector table; the table, read with plain SQL, equals the
// chunks of the bucket's bytes (exerciseExternalIndex); rows tampered
// with in SQL are found by `verify` and fixed by `verify --repair`.
func TestRunIntoPgvector(t *testing.T) {
	dsn := testenv.SharedPGlite(t).DSN
	table := testenv.UniqueTable("e2e")
	w := newWorldWith(t, "1h", 0, fmt.Sprintf("index:\n  type: pgvector\n  dsn: %q\n  table: %s\n", dsn, table))
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	exec := func(q string) {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	w.exerciseExternalIndex("guide/%d 100%%.md", func(got []chunkRow, _ map[freshen.ChunkID][]float32) {
		exec(`DELETE FROM ` + table + ` WHERE chunk_id IN ('` + string(got[0].ID) + `', '` + string(got[1].ID) + `')`)
		exec(`INSERT INTO ` + table + ` (chunk_id, bucket, key, chunk_hash, ordinal, headings, text, metadata, embedding, version, updated_at)
			SELECT 'foreign', bucket, 'not/in/the/bucket.md', chunk_hash, ordinal, headings, text, metadata, embedding, version, updated_at
			FROM ` + table + ` WHERE chunk_id = '` + string(got[2].ID) + `'`)
		exec(`UPDATE ` + table + ` SET text = 'edited by hand' WHERE chunk_id = '` + string(got[3].ID) + `'`)
	})
}

// exerciseExternalIndex writes six documents named by keyFormat (%d: 0..5)
// and checks the index equals the bucket; then an overwrite, a DELETE, a
// DeleteObjects, a copy and a rename, and checks again. verify must find
// no drift; tamper must then delete the first two rows it is given, add
// one foreign row and change the text of the fourth, which verify must
// report exactly, and `verify --repair` (with run stopped) fix with no
// embedding.
func (w *world) exerciseExternalIndex(keyFormat string, tamper func(rows []chunkRow, vecs map[freshen.ChunkID][]float32)) {
	t := w.t
	t.Helper()
	key := func(i int) string { return fmt.Sprintf(keyFormat, i) }
	doc := func(i int) []byte { return []byte(markdownDoc(int64(i), 3, 3)) }
	for i := 0; i < 6; i++ {
		w.put(key(i), "text/markdown", doc(i))
	}
	w.exact(30 * time.Second)
	w.put(key(0), "text/markdown", doc(100))
	testenv.Delete(t, w.client, w.bucket, key(1))
	_, err := w.client.DeleteObjects(context.Background(), &s3.DeleteObjectsInput{Bucket: aws.String(w.bucket),
		Delete: &types.Delete{Objects: []types.ObjectIdentifier{{Key: aws.String(key(2))}, {Key: aws.String(key(3))}}}})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Copy(t, w.client, w.bucket, key(4), "copies/four+más.md", nil)
	testenv.Copy(t, w.client, w.bucket, key(5), "renamed/five.md", nil)
	testenv.Delete(t, w.client, w.bucket, key(5))
	w.exact(30 * time.Second)

	rep := w.verify(false, "verify", "--config", w.cfg, "--json")
	if rep["missing"] != 0.0 || rep["orphans"] != 0.0 || rep["mismatched"] != 0.0 || rep["chunks_checked"] == 0.0 {
		t.Fatalf("verify of an exact index: %v", rep)
	}
	tamper(w.indexRows())
	rep = w.verify(true, "verify", "--config", w.cfg, "--json")
	if rep["missing"] != 2.0 || rep["orphans"] != 1.0 || rep["mismatched"] != 1.0 {
		t.Fatalf("verify of the tampered index: %v; want 2 missing, 1 orphan, 1 mismatched", rep)
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

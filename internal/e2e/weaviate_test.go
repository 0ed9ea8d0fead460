package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/index/weaviate"
	"github.com/freshen-io/freshen/internal/testenv"
)

// weaviateCall sends one request to Weaviate's REST API, as an
// application would, and decodes the answer into out (if not nil).
func (b *bundle) weaviateCall(method, path string, body, out any) {
	b.t.Helper()
	var in io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		in = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, b.conf.Index.URL+path, in)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		b.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			b.t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	}
}

// weaviateRows reads the collection with a GraphQL Get, as an application
// would.
func (b *bundle) weaviateRows() ([]chunkRow, map[freshen.ChunkID][]float32) {
	b.t.Helper()
	class := b.conf.Index.Collection
	var resp struct {
		Data struct {
			Get map[string][]struct {
				ChunkID    string `json:"chunk_id"`
				Key        string `json:"key"`
				Hash       string `json:"hash"`
				Ordinal    int    `json:"ordinal"`
				Text       string `json:"text"`
				Additional struct {
					Vector []float32 `json:"vector"`
				} `json:"_additional"`
			} `json:"Get"`
		} `json:"data"`
		Errors []any `json:"errors"`
	}
	b.weaviateCall("POST", "/v1/graphql", map[string]string{"query": fmt.Sprintf(
		"{ Get { %s(limit: 10000) { chunk_id key hash ordinal text _additional { vector } } } }", class)}, &resp)
	if len(resp.Errors) > 0 {
		b.t.Fatalf("graphql: %v", resp.Errors)
	}
	var out []chunkRow
	vecs := map[freshen.ChunkID][]float32{}
	for _, o := range resp.Data.Get[class] {
		r := chunkRow{ID: freshen.ChunkID(o.ChunkID), Key: o.Key, Hash: freshen.ChunkHash(o.Hash), Ordinal: o.Ordinal, Text: o.Text}
		out = append(out, r)
		vecs[r.ID] = o.Additional.Vector
	}
	sortRows(out)
	return out, vecs
}

// TestRunIntoWeaviate: as TestRunIntoPgvector, into a Weaviate
// collection read and tampered with through Weaviate's own API.
func TestRunIntoWeaviate(t *testing.T) {
	wv := testenv.SharedWeaviate(t)
	class := testenv.UniqueCollection("E2e")
	w := newWorldWith(t, "1h", 0, fmt.Sprintf("index:\n  type: weaviate\n  url: %s\n  collection: %s\n", wv.URL, class))
	doc := func(i int) []byte { return []byte(markdownDoc(int64(i), 3, 3)) }
	for i := 0; i < 6; i++ {
		w.put(fmt.Sprintf("guide/%d *?.md", i), "text/markdown", doc(i))
	}
	w.exact(30 * time.Second)
	w.put("guide/0 *?.md", "text/markdown", doc(100))
	testenv.Delete(t, w.client, w.bucket, "guide/1 *?.md")
	_, err := w.client.DeleteObjects(context.Background(), &s3.DeleteObjectsInput{Bucket: aws.String(w.bucket),
		Delete: &types.Delete{Objects: []types.ObjectIdentifier{{Key: aws.String("guide/2 *?.md")}, {Key: aws.String("guide/3 *?.md")}}}})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Copy(t, w.client, w.bucket, "guide/4 *?.md", "copies/four+más.md", nil)
	testenv.Copy(t, w.client, w.bucket, "guide/5 *?.md", "renamed/five.md", nil)
	testenv.Delete(t, w.client, w.bucket, "guide/5 *?.md")
	w.exact(30 * time.Second)

	rep := w.verify(false, "verify", "--config", w.cfg, "--json")
	if rep["missing"] != 0.0 || rep["orphans"] != 0.0 || rep["mismatched"] != 0.0 || rep["chunks_checked"] == 0.0 {
		t.Fatalf("verify of an exact collection: %v", rep)
	}
	got, vecs := w.indexRows()
	for _, id := range []freshen.ChunkID{got[0].ID, got[1].ID} {
		w.weaviateCall("DELETE", "/v1/objects/"+class+"/"+weaviate.ObjectID(id), nil, nil)
	}
	// A foreign object, written as another program would.
	w.weaviateCall("POST", "/v1/objects", map[string]any{"class": class, "properties": map[string]any{
		"chunk_id": "foreign", "bucket": w.bucket, "key": "not/in/the/bucket.md", "hash": string(got[2].Hash), "ordinal": 0,
		"text": got[2].Text, "version": "", "key_hex": fmt.Sprintf("%x", "not/in/the/bucket.md"),
		"pos": fmt.Sprintf("%x", w.bucket+"\x00not/in/the/bucket.md\x00foreign")}, "vector": vecs[got[2].ID]}, nil)
	w.weaviateCall("PATCH", "/v1/objects/"+class+"/"+weaviate.ObjectID(got[3].ID), map[string]any{"class": class,
		"properties": map[string]any{"text": "edited by hand"}}, nil)
	rep = w.verify(true, "verify", "--config", w.cfg, "--json")
	if rep["missing"] != 2.0 || rep["orphans"] != 1.0 || rep["mismatched"] != 1.0 {
		t.Fatalf("verify of the tampered collection: %v; want 2 missing, 1 orphan, 1 mismatched", rep)
	}
	w.kill()
	rep = w.verify(false, "verify", "--config", w.cfg, "--json", "--repair")
	if rep["repaired"] != 4.0 || rep["tokens_embedded"] != 0.0 || rep["remaining"] != 0.0 {
		t.Fatalf("verify --repair: %v; want 4 repaired with 0 tokens, 0 remaining", rep)
	}
	w.assertExact()
}

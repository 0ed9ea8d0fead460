package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"

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
	w.exerciseExternalIndex("guide/%d *?.md", func(got []chunkRow, vecs map[freshen.ChunkID][]float32) {
		for _, id := range []freshen.ChunkID{got[0].ID, got[1].ID} {
			w.weaviateCall("DELETE", "/v1/objects/"+class+"/"+weaviate.ObjectID(id), nil, nil)
		}
		// An object another program wrote, without freshen's own
		// ordering properties.
		w.weaviateCall("POST", "/v1/objects", map[string]any{"class": class, "properties": map[string]any{
			"chunk_id": "foreign", "bucket": w.bucket, "key": "not/in/the/bucket.md", "hash": string(got[2].Hash), "ordinal": 0,
			"text": got[2].Text}, "vector": vecs[got[2].ID]}, nil)
		w.weaviateCall("PATCH", "/v1/objects/"+class+"/"+weaviate.ObjectID(got[3].ID), map[string]any{"class": class,
			"properties": map[string]any{"text": "edited by hand"}}, nil)
	})
}

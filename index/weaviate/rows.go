package weaviate

import (
	"context"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	"github.com/freshen-io/freshen"
	"github.com/google/uuid"
	"github.com/weaviate/weaviate-go-client/v5/weaviate/filters"
	"github.com/weaviate/weaviate-go-client/v5/weaviate/graphql"
)

// rowsPage is the most rows Rows holds at once (a variable for tests).
var rowsPage = 1000

// Rows implements freshen.RowScanner: every row of bucket in ascending
// byte order of (key, id), then the foreign objects of bucket, from the
// calling goroutine, holding at most rowsPage rows (plus a 64-row sample)
// or, looking for foreign objects, scanPage objects at a time.
//
// A row freshen wrote is an object whose UUID is ObjectID(chunk_id) and
// whose pos is pos(bucket, key, chunk_id). Weaviate can neither sort
// text by bytes (its sort compares lower-cased strings) nor page a cursor
// in any order but UUIDs', so Rows walks the pos property (hex of bucket
// NUL key NUL id, whose order is the wanted one) as a 16-ary trie of hex
// prefixes: a prefix holding at most rowsPage rows is fetched whole (Like
// "prefix*", which Weaviate answers from its sorted inverted index) and
// sorted here; a larger one emits the row whose pos is the prefix itself,
// if any, then its 16 extensions in order. Prefixes every row shares (a
// common path such as "docs/2024/") are skipped in one step: a sample's
// longest common prefix, confirmed by a count. Each step costs a count
// (Aggregate) and, at leaves, one fetch; the server walks only the index
// range of the prefix. Rows written during the walk may or may not be
// seen.
//
// Objects that another program wrote into the collection lack pos (or
// key_hex), or hold a pos or a UUID that does not match their chunk_id,
// so the walk cannot place them; verify must still see them, as orphans.
// After the walk, Rows yields, out of key order and in UUID order, every
// such foreign object whose bucket property is bucket, or is missing,
// empty or white space (such an object belongs to no bucket, so Rows
// yields it for every bucket asked); white space around a bucket is
// ignored, as Weaviate's field tokenization ignores it. A foreign row's ID is its chunk_id when its UUID
// is ObjectID(chunk_id), else "uuid:" and its UUID, which Delete (and
// Apply's deletes) take to mean that exact object; its Key, Hash, Text
// and Version are its properties, empty where missing. (A row of freshen's
// that lost its pos is so both missing from its key and, at the end, an
// orphan: verify's repair deletes it and rewrites the key, and a delete
// that lands after the rewrite is found and repaired by the next pass.)
// Finding them
// costs a Weaviate cursor over the whole class (pages of scanPage, no
// vectors): O(objects in the class), like the walk. It is skipped when
// counts prove there is nothing to find: when the class holds exactly
// the rows the walk yielded, or when the objects with this bucket are
// exactly those rows and every object has a non-empty bucket (two
// filtered counts). An object written or deleted during the pass can
// fool those counts, so a foreign object is then found by the next pass.
func (x *Index) Rows(ctx context.Context, bucket string, fn func(freshen.Row) error) error {
	ordered := 0
	err := x.walk(ctx, hex.EncodeToString([]byte(bucket+"\x00")), func(r freshen.Row) error {
		ordered++
		return fn(r)
	})
	if err == nil {
		err = x.foreign(ctx, bucket, ordered, fn)
	}
	if err != nil {
		return fmt.Errorf("weaviate: rows of %s in %s: %w", bucket, x.class, err)
	}
	return nil
}

// uuidPrefix starts the Row.ID of an object whose UUID is not the
// ObjectID of its chunk_id: "uuid:" and the UUID.
const uuidPrefix = "uuid:"

// objectUUID is the UUID of the object an id names: ObjectID(id), or the
// UUID of an id "uuid:<uuid>".
func objectUUID(id freshen.ChunkID) string {
	if rest, ok := strings.CutPrefix(string(id), uuidPrefix); ok {
		if u, err := uuid.Parse(rest); err == nil {
			return u.String()
		}
	}
	return ObjectID(id)
}

// isOrdered reports whether the object m (with pos and _additional.id) is
// a row as freshen writes it, which the walk finds in its place.
func isOrdered(m map[string]any) bool {
	r := record(m)
	p, _ := m[propPos].(string)
	return p == pos(r.Bucket, r.Key, r.ID) && objectID(m) == ObjectID(r.ID)
}

// objectID is the UUID of the object m (from _additional.id).
func objectID(m map[string]any) string {
	add, _ := m["_additional"].(map[string]any)
	id, _ := add["id"].(string)
	return id
}

// foreign yields the foreign objects of bucket (see Rows); ordered is
// how many rows the walk yielded.
func (x *Index) foreign(ctx context.Context, bucket string, ordered int, fn func(freshen.Row) error) error {
	if none, err := x.noForeign(ctx, bucket, ordered); err != nil || none {
		return err
	}
	fields := append(rowFields(), graphql.Field{Name: propPos}, graphql.Field{Name: "_additional", Fields: []graphql.Field{{Name: "id"}}})
	after := ""
	for {
		get := x.client.GraphQL().Get().WithClassName(x.class).WithFields(fields...).WithLimit(scanPage)
		if after != "" {
			get = get.WithAfter(after)
		}
		items, err := x.get(ctx, "rows", get)
		if err != nil {
			return err
		}
		for _, it := range items {
			id := objectID(it)
			if id == "" {
				return fmt.Errorf("an object without an id: %v", it)
			}
			after = id
			r := record(it)
			if b := strings.TrimSpace(r.Bucket); b != bucket && b != "" || isOrdered(it) {
				continue
			}
			row := freshen.Row{ID: r.ID, Bucket: r.Bucket, Key: r.Key, Hash: r.Hash, Text: r.Text, Version: r.Version}
			if r.ID == "" || ObjectID(r.ID) != id {
				row.ID = freshen.ChunkID(uuidPrefix + id)
			}
			if err := fn(row); err != nil {
				return err
			}
		}
		if len(items) < scanPage {
			return nil
		}
	}
}

// noForeign reports whether counts prove that the class holds no foreign
// object of bucket, the walk having yielded ordered rows: the class holds
// only those; or the objects whose bucket is bucket are those and every
// object has a non-empty bucket.
func (x *Index) noForeign(ctx context.Context, bucket string, ordered int) (bool, error) {
	all, err := x.countWhere(ctx, nil)
	if err != nil || all == ordered {
		return err == nil, err
	}
	mine, err := x.countWhere(ctx, filters.Where().WithPath([]string{propBucket}).WithOperator(filters.Equal).WithValueText(bucket))
	if err != nil || mine != ordered {
		return false, err
	}
	named, err := x.countWhere(ctx, filters.Where().WithPath([]string{propBucket}).WithOperator(filters.Like).WithValueText("?*"))
	return err == nil && named == all, err
}

func (x *Index) walk(ctx context.Context, p string, fn func(freshen.Row) error) error {
	n, err := x.count(ctx, p)
	if err != nil || n == 0 {
		return err
	}
	if n <= rowsPage {
		rows, fetched, err := x.rowsUnder(ctx, like(propPos, p), rowsPage+1)
		if err != nil {
			return err
		}
		if fetched <= rowsPage { // else it grew meanwhile: split
			return emit(rows, fn)
		}
	}
	if q, err := x.sharedPrefix(ctx, p); err != nil {
		return err
	} else if len(q) > len(p) {
		m, err := x.count(ctx, q)
		if err != nil {
			return err
		}
		if m == n {
			p = q
		}
	}
	if len(p)%2 == 0 {
		exact := filters.Where().WithPath([]string{propPos}).WithOperator(filters.Equal).WithValueText(p)
		// At most one is freshen's (one UUID per chunk id); others,
		// foreign copies, are left to foreign.
		rows, _, err := x.rowsUnder(ctx, exact, rowsPage)
		if err != nil {
			return err
		}
		if err := emit(rows, fn); err != nil {
			return err
		}
	}
	for _, d := range "0123456789abcdef" {
		if err := x.walk(ctx, p+string(d), fn); err != nil {
			return err
		}
	}
	return nil
}

func emit(rows []freshen.Row, fn func(freshen.Row) error) error {
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Key != rows[j].Key {
			return rows[i].Key < rows[j].Key
		}
		return rows[i].ID < rows[j].ID
	})
	for _, r := range rows {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// count is the number of rows whose pos starts with p.
func (x *Index) count(ctx context.Context, p string) (int, error) {
	return x.countWhere(ctx, like(propPos, p))
}

// countWhere is the number of rows matching where (all if nil).
func (x *Index) countWhere(ctx context.Context, where *filters.WhereBuilder) (int, error) {
	b := x.client.GraphQL().Aggregate().WithClassName(x.class).
		WithFields(graphql.Field{Name: "meta", Fields: []graphql.Field{{Name: "count"}}})
	if where != nil {
		b = b.WithWhere(where)
	}
	resp, err := b.Do(ctx)
	if err != nil {
		return 0, classify("count", err)
	}
	if err := graphQLErrors("count", resp); err != nil {
		return 0, err
	}
	agg, _ := resp.Data["Aggregate"].(map[string]any)
	list, _ := agg[x.class].([]any)
	if len(list) == 0 {
		return 0, nil
	}
	first, _ := list[0].(map[string]any)
	meta, _ := first["meta"].(map[string]any)
	c, ok := meta["count"].(float64)
	if !ok {
		return 0, fmt.Errorf("count: unexpected answer %v", resp.Data)
	}
	return int(c), nil
}

// rowsUnder fetches up to limit objects matching where, in no order, and
// returns those that are rows as freshen writes them (isOrdered; the
// others are foreign's), and how many it fetched.
func (x *Index) rowsUnder(ctx context.Context, where *filters.WhereBuilder, limit int) ([]freshen.Row, int, error) {
	fields := append(rowFields(), graphql.Field{Name: propPos}, graphql.Field{Name: "_additional", Fields: []graphql.Field{{Name: "id"}}})
	items, err := x.get(ctx, "rows", x.client.GraphQL().Get().WithClassName(x.class).WithFields(fields...).
		WithWhere(where).WithLimit(limit))
	if err != nil {
		return nil, 0, err
	}
	rows := make([]freshen.Row, 0, len(items))
	for _, it := range items {
		if !isOrdered(it) {
			continue
		}
		r := record(it)
		rows = append(rows, freshen.Row{ID: r.ID, Bucket: r.Bucket, Key: r.Key, Hash: r.Hash, Text: r.Text, Version: r.Version})
	}
	return rows, len(items), nil
}

// sharedPrefix is the longest common prefix of the pos of up to 64 rows
// under p: a guess at what all of them share, to be confirmed.
func (x *Index) sharedPrefix(ctx context.Context, p string) (string, error) {
	items, err := x.get(ctx, "rows", x.client.GraphQL().Get().WithClassName(x.class).
		WithFields(graphql.Field{Name: propPos}).WithWhere(like(propPos, p)).WithLimit(64))
	if err != nil || len(items) == 0 {
		return p, err
	}
	q, _ := items[0][propPos].(string)
	for _, it := range items[1:] {
		s, _ := it[propPos].(string)
		i := 0
		for i < len(q) && i < len(s) && q[i] == s[i] {
			i++
		}
		q = q[:i]
	}
	if len(q) < len(p) {
		return p, nil
	}
	return q, nil
}

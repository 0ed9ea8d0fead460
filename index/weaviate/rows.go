package weaviate

import (
	"context"
	"encoding/hex"
	"fmt"
	"sort"

	"github.com/freshen-io/freshen"
	"github.com/weaviate/weaviate-go-client/v5/weaviate/filters"
	"github.com/weaviate/weaviate-go-client/v5/weaviate/graphql"
)

// rowsPage is the most rows Rows holds at once (a variable for tests).
var rowsPage = 1000

// Rows implements freshen.RowScanner: every row of bucket in ascending
// byte order of (key, id), from the calling goroutine, holding at most
// rowsPage rows (plus a 64-row sample) at a time.
//
// Weaviate can neither sort text by bytes (its sort compares lower-cased
// strings) nor page a cursor in any order but UUIDs', so Rows walks the
// pos property (hex of bucket NUL key NUL id, whose order is the wanted
// one) as a 16-ary trie of hex prefixes: a prefix holding at most
// rowsPage rows is fetched whole (Like "prefix*", which Weaviate answers
// from its sorted inverted index) and sorted here; a larger one emits the
// row whose pos is the prefix itself, if any, then its 16 extensions in
// order. Prefixes every row shares (a common path such as "docs/2024/")
// are skipped in one step: a sample's longest common prefix, confirmed
// by a count. Each step costs a count (Aggregate) and, at leaves, one
// fetch; the server walks only the index range of the prefix. Rows
// written during the walk may or may not be seen.
func (x *Index) Rows(ctx context.Context, bucket string, fn func(freshen.Row) error) error {
	if err := x.walk(ctx, hex.EncodeToString([]byte(bucket+"\x00")), fn); err != nil {
		return fmt.Errorf("weaviate: rows of %s in %s: %w", bucket, x.class, err)
	}
	return nil
}

func (x *Index) walk(ctx context.Context, p string, fn func(freshen.Row) error) error {
	n, err := x.count(ctx, p)
	if err != nil || n == 0 {
		return err
	}
	if n <= rowsPage {
		rows, err := x.rowsUnder(ctx, like(propPos, p), rowsPage+1)
		if err != nil {
			return err
		}
		if len(rows) <= rowsPage { // else it grew meanwhile: split
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
		rows, err := x.rowsUnder(ctx, exact, 2)
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
	resp, err := x.client.GraphQL().Aggregate().WithClassName(x.class).WithWhere(like(propPos, p)).
		WithFields(graphql.Field{Name: "meta", Fields: []graphql.Field{{Name: "count"}}}).Do(ctx)
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

// rowsUnder fetches up to limit rows matching where, in no order.
func (x *Index) rowsUnder(ctx context.Context, where *filters.WhereBuilder, limit int) ([]freshen.Row, error) {
	items, err := x.get(ctx, "rows", x.client.GraphQL().Get().WithClassName(x.class).WithFields(rowFields()...).
		WithWhere(where).WithLimit(limit))
	if err != nil {
		return nil, err
	}
	rows := make([]freshen.Row, len(items))
	for i, it := range items {
		r := record(it)
		rows[i] = freshen.Row{ID: r.ID, Bucket: r.Bucket, Key: r.Key, Hash: r.Hash, Text: r.Text, Version: r.Version}
	}
	return rows, nil
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

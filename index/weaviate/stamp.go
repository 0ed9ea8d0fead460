package weaviate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/freshen-io/freshen"
	"github.com/go-openapi/strfmt"
	"github.com/google/uuid"
	"github.com/weaviate/weaviate-go-client/v5/weaviate/filters"
	"github.com/weaviate/weaviate-go-client/v5/weaviate/graphql"
	"github.com/weaviate/weaviate/entities/models"
)

// The stamp (freshen.Stamped) is two objects of the fence class, so that
// it lives and dies with the fences it vouches for: their bucket is
// stampBucket (no valid bucket name: it holds a colon), their key the
// value, their fence 0, and their UUIDs StampID("self") and
// StampID("partner").
const stampBucket = "freshen:stamp"

// StampID is the UUID of the stamp object name ("self" or "partner") in
// the fence class: the UUIDv5 of "stamp" NUL name in namespace, which no
// FenceID can equal.
func StampID(name string) string {
	return uuid.NewSHA1(namespace, []byte("stamp\x00"+name)).String()
}

// Stamp implements freshen.Stamped. The collection's identity (32 random
// hex digits) is made at its first Stamp, with a create that Weaviate
// refuses when the object exists, so concurrent first Stamps agree.
func (x *Index) Stamp(ctx context.Context) (self, partner string, err error) {
	self, ok, err := x.readStamp(ctx, "self")
	if err == nil && !ok {
		b := make([]byte, 16)
		rand.Read(b)
		_, cerr := x.client.Data().Creator().WithClassName(x.fence).WithID(StampID("self")).
			WithProperties(map[string]any{propBucket: stampBucket, propKey: hex.EncodeToString(b), propFence: 0}).Do(ctx)
		// Whether it was created here or by someone else meanwhile,
		// read what is stored.
		if self, ok, err = x.readStamp(ctx, "self"); err == nil && !ok {
			if err = errors.New("created, but not found"); cerr != nil {
				err = classify("create", cerr)
			}
		}
	}
	if err == nil {
		partner, _, err = x.readStamp(ctx, "partner")
	}
	if err != nil {
		return "", "", fmt.Errorf("weaviate: stamp of %s: %w", x.class, err)
	}
	return self, partner, nil
}

// Pair implements freshen.Stamped. Paired with another ledger, the
// collection forgets its fences, since that ledger's lease tokens start
// again: every fence object is deleted (batch deletes, which Weaviate
// caps at QUERY_MAXIMUM_RESULTS objects each, repeated until none
// matches) before the new partner is stored, so a Pair that fails
// part-way is completed by the next. The same partner again changes
// nothing.
func (x *Index) Pair(ctx context.Context, partner string) error {
	if err := x.pair(ctx, partner); err != nil {
		return fmt.Errorf("weaviate: pair %s: %w", x.class, err)
	}
	return nil
}

func (x *Index) pair(ctx context.Context, partner string) error {
	old, ok, err := x.readStamp(ctx, "partner")
	if err != nil || ok && old == partner {
		return err
	}
	fences := filters.Where().WithPath([]string{propBucket}).WithOperator(filters.NotEqual).WithValueText(stampBucket)
	for {
		res, err := x.client.Batch().ObjectsBatchDeleter().WithClassName(x.fence).WithWhere(fences).WithOutput("minimal").Do(ctx)
		if err != nil {
			return classify("delete fences", err)
		}
		if res.Results == nil {
			return fmt.Errorf("delete fences: the answer has no results")
		}
		if res.Results.Failed > 0 {
			var msgs []string
			for _, o := range res.Results.Objects {
				if o.Errors != nil && len(msgs) < 3 {
					for _, e := range o.Errors.Error {
						msgs = append(msgs, fmt.Sprintf("%s: %s", o.ID, e.Message))
					}
				}
			}
			return objectErrors(fmt.Sprintf("delete fences: %d of %d failed", res.Results.Failed, res.Results.Matches), msgs)
		}
		if res.Results.Successful >= res.Results.Matches {
			break // else more matched than one request deletes
		}
	}
	obj := &models.Object{Class: x.fence, ID: strfmt.UUID(StampID("partner")),
		Properties: map[string]any{propBucket: stampBucket, propKey: partner, propFence: 0}}
	return x.batch(ctx, "pair", []*models.Object{obj})
}

// readStamp returns the value of the stamp object name, if it exists.
func (x *Index) readStamp(ctx context.Context, name string) (string, bool, error) {
	props, ok, err := x.readFenceObject(ctx, StampID(name))
	if err != nil || !ok {
		return "", false, err
	}
	v, isString := props[propKey].(string)
	if !isString || props[propBucket] != stampBucket {
		return "", false, fmt.Errorf("stamp object %s (%s) is not a stamp: %v", name, StampID(name), props)
	}
	return v, true, nil
}

// readFenceObject returns the properties of the fence class's object id,
// if it exists.
func (x *Index) readFenceObject(ctx context.Context, id string) (map[string]any, bool, error) {
	objs, err := x.client.Data().ObjectsGetter().WithClassName(x.fence).WithID(id).Do(ctx)
	if status, _, _ := unpack(err); status == 404 {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, classify(fmt.Sprintf("read %s/%s", x.fence, id), err)
	}
	if len(objs) == 0 {
		return nil, false, nil
	}
	props, _ := objs[0].Properties.(map[string]any)
	return props, true, nil
}

// scanPage is how many records Scan holds at once (a variable for tests).
var scanPage = 500

// Count implements freshen.Scanner: the collection's object count.
func (x *Index) Count(ctx context.Context) (int, error) {
	n, err := x.countWhere(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("weaviate: count %s: %w", x.class, err)
	}
	return n, nil
}

// Scan implements freshen.Scanner: every record with its vector, in
// pages of scanPage through Weaviate's cursor (ordered by UUID), from the
// calling goroutine. Records written during the scan may or may not be
// seen.
func (x *Index) Scan(ctx context.Context, fn func(freshen.Record) error) error {
	fields := append(rowFields(), graphql.Field{Name: propOrdinal}, graphql.Field{Name: propHeadings},
		graphql.Field{Name: "_additional", Fields: []graphql.Field{{Name: "id"}, {Name: "vector"}}})
	after := ""
	for {
		get := x.client.GraphQL().Get().WithClassName(x.class).WithFields(fields...).WithLimit(scanPage)
		if after != "" {
			get = get.WithAfter(after)
		}
		items, err := x.get(ctx, "scan", get)
		if err != nil {
			return err
		}
		for _, it := range items {
			r := record(it)
			add, _ := it["_additional"].(map[string]any)
			id, _ := add["id"].(string)
			vec, _ := add["vector"].([]any)
			if id == "" {
				return fmt.Errorf("weaviate: scan %s: an object without an id: %v", x.class, it)
			}
			r.Vector = make([]float32, len(vec))
			for i, v := range vec {
				f, _ := v.(float64)
				r.Vector[i] = float32(f)
			}
			if err := fn(r); err != nil {
				return err
			}
			after = id
		}
		if len(items) < scanPage {
			return nil
		}
	}
}

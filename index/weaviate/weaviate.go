package weaviate

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/freshen-io/freshen"
	"github.com/go-openapi/strfmt"
	"github.com/google/uuid"
	wv "github.com/weaviate/weaviate-go-client/v5/weaviate"
	"github.com/weaviate/weaviate-go-client/v5/weaviate/filters"
	"github.com/weaviate/weaviate-go-client/v5/weaviate/graphql"
	"github.com/weaviate/weaviate/entities/models"
)

// Config configures an Index.
type Config struct {
	// URL is Weaviate's REST endpoint, http(s)://host:port.
	URL string
	// Collection is the class holding the chunks: one per model. It is a
	// Weaviate class name: an upper-case ASCII letter, then letters,
	// digits and _ (at most 250, as the fence class adds "Fence").
	Collection string
	// Dim is the model's vector length.
	Dim int
	// Create creates the collection and its fence class when missing.
	// Otherwise both must exist. Either way an existing class must match
	// what freshen writes, or Open says every difference.
	Create bool
	// Timeout bounds each HTTP request (default 60s).
	Timeout time.Duration
}

// DefaultTimeout bounds each request unless Config.Timeout is set.
const DefaultTimeout = 60 * time.Second

var classRE = regexp.MustCompile(`^[A-Z][A-Za-z0-9_]*$`)

// Validate checks the configuration without contacting the server.
func (c Config) Validate() error {
	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "":
		return freshen.Permanent(errors.New("weaviate: url is empty: want http://host:port"))
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return freshen.Permanent(fmt.Errorf("weaviate: url %q: want http://host:port or https://host:port", c.URL))
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil:
		return freshen.Permanent(fmt.Errorf("weaviate: url %q: want only scheme, host and port (the client adds /v1)", c.URL))
	}
	switch {
	case c.Collection == "":
		return freshen.Permanent(errors.New("weaviate: collection is empty: name the class that holds the chunks (one per model)"))
	case len(c.Collection) > 250:
		return freshen.Permanent(fmt.Errorf("weaviate: collection %q: %d characters, at most 250 (the fence class adds \"Fence\" and Weaviate allows 255)",
			c.Collection, len(c.Collection)))
	case !classRE.MatchString(c.Collection):
		hint := ""
		if c.Collection[0] >= 'a' && c.Collection[0] <= 'z' {
			hint = fmt.Sprintf(" (Weaviate would silently store it as %q)", strings.ToUpper(c.Collection[:1])+c.Collection[1:])
		}
		return freshen.Permanent(fmt.Errorf("weaviate: collection %q is not a valid Weaviate class name: want an upper-case letter A-Z, then letters, digits or _%s",
			c.Collection, hint))
	}
	if c.Dim < 1 || c.Dim > 65535 {
		return freshen.Permanent(fmt.Errorf("weaviate: dimension %d: want 1..65535", c.Dim))
	}
	if c.Timeout < 0 {
		return freshen.Permanent(fmt.Errorf("weaviate: timeout %v is negative", c.Timeout))
	}
	return nil
}

// Index is a Weaviate collection. It is safe for concurrent use.
type Index struct {
	client *wv.Client
	class  string
	fence  string
	dim    int
	locks  keyLocks
}

var (
	_ freshen.Index        = (*Index)(nil)
	_ freshen.ObjectWriter = (*Index)(nil)
	_ freshen.RowScanner   = (*Index)(nil)
	_ freshen.Scanner      = (*Index)(nil)
	_ freshen.Stamped      = (*Index)(nil)
)

// Sizes of requests. Weaviate refuses limits above QUERY_MAXIMUM_RESULTS
// (10,000 by default) and deletes at most that many objects per request.
const (
	upsertBatch = 100   // objects per batch request (each carries a vector)
	deleteBatch = 1000  // ids per batch delete
	maxResults  = 10000 // Weaviate's default QUERY_MAXIMUM_RESULTS
)

// Open connects, and creates (Config.Create) or checks the collection
// and its fence class. A class that differs from what freshen writes
// (another distance, a vectorizer, missing or differently indexed
// properties, vectors of another dimension) is refused with every
// difference named.
func Open(ctx context.Context, cfg Config) (*Index, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	u, _ := url.Parse(cfg.URL)
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	c, err := client(u.Scheme, u.Host, timeout)
	if err != nil {
		return nil, freshen.Permanent(fmt.Errorf("weaviate: %s: %w", cfg.URL, err))
	}
	x := &Index{client: c, class: cfg.Collection, fence: cfg.Collection + "Fence", dim: cfg.Dim}
	if err := x.setUp(ctx, cfg.Create); err != nil {
		return nil, err
	}
	return x, nil
}

var (
	clientsMu sync.Mutex
	clients   = map[string]*wv.Client{}
)

// client returns the process's client for one server. Clients are shared
// and never dropped: a weaviate-go-client v5 Connection has a finalizer
// that sends on an unbuffered channel nobody reads (unless OAuth token
// refresh is running), so once the garbage collector finalizes one, the
// runtime's single finalizer goroutine blocks for good and no finalizer
// of the process runs again.
func client(scheme, host string, timeout time.Duration) (*wv.Client, error) {
	clientsMu.Lock()
	defer clientsMu.Unlock()
	k := fmt.Sprintf("%s://%s %v", scheme, host, timeout)
	if c := clients[k]; c != nil {
		return c, nil
	}
	c, err := wv.NewClient(wv.Config{Scheme: scheme, Host: host, Timeout: timeout})
	if err != nil {
		return nil, err
	}
	clients[k] = c
	return c, nil
}

// namespace is the UUIDv5 namespace of every object freshen writes:
// uuid.NewSHA1(uuid.NameSpaceURL, "https://github.com/freshen-io/freshen/index/weaviate"),
// which is 79454cc5-c12f-59eb-81f1-8aa5b41407be.
var namespace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://github.com/freshen-io/freshen/index/weaviate"))

// ObjectID is the UUID of the object holding chunk id: the UUIDv5 of the
// id's bytes in namespace. It depends on the id alone (chunk ids already
// derive from bucket, key and content), so every writer and every retry
// address the same object.
func ObjectID(id freshen.ChunkID) string {
	return uuid.NewSHA1(namespace, []byte(id)).String()
}

// FenceID is the UUID of the fence object of bucket/key in the fence
// class: the UUIDv5 of "fence" NUL bucket NUL key in namespace.
func FenceID(bucket, key string) string {
	return uuid.NewSHA1(namespace, []byte("fence\x00"+bucket+"\x00"+key)).String()
}

// Dim implements freshen.Index.
func (x *Index) Dim() int { return x.dim }

// Collection is the name of the class holding the chunks.
func (x *Index) Collection() string { return x.class }

// Close implements freshen.Index. The HTTP client is shared by every
// Index on the same server (see client) and stays.
func (x *Index) Close() error { return nil }

// check refuses, before anything is sent, vectors that are not Dim long
// (ErrDimension) or hold NaN or infinities (which JSON cannot carry).
func (x *Index) check(op string, records []freshen.Record) error {
	for _, r := range records {
		if err := freshen.CheckDim(r.Vector, x.dim); err != nil {
			return fmt.Errorf("weaviate: %s %s: record %s: %w", op, x.class, r.ID, err)
		}
		if err := finite(r.Vector); err != nil {
			return freshen.Permanent(fmt.Errorf("weaviate: %s %s: record %s: %w", op, x.class, r.ID, err))
		}
	}
	return nil
}

func finite(v []float32) error {
	for i, f := range v {
		if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
			return fmt.Errorf("vector value %d is %v", i, f)
		}
	}
	return nil
}

// Upsert implements freshen.Index: batch requests of upsertBatch
// objects. Every vector is checked before the first request. A failure
// may leave earlier batches written; a retry rewrites them (same UUIDs).
func (x *Index) Upsert(ctx context.Context, records []freshen.Record) error {
	if err := x.check("upsert", records); err != nil {
		return err
	}
	return x.put(ctx, "upsert", records, nil)
}

// Delete implements freshen.Index: batch deletes by UUID. Missing ids
// are no error. An id "uuid:<uuid>", as Rows yields for a foreign object
// (one whose UUID is not the ObjectID of its chunk_id, or that has none),
// deletes the object of that exact UUID; any other id, the object
// ObjectID(id). Apply's deletes read ids the same way.
func (x *Index) Delete(ctx context.Context, ids []freshen.ChunkID) error {
	return x.remove(ctx, "delete", ids)
}

// put writes records, the last of equal IDs winning; version, when not
// nil, overrides each record's.
func (x *Index) put(ctx context.Context, op string, records []freshen.Record, version *string) error {
	if len(records) == 0 {
		return nil
	}
	last := make(map[freshen.ChunkID]int, len(records))
	for i, r := range records {
		last[r.ID] = i
	}
	objs := make([]*models.Object, 0, len(last))
	for i, r := range records {
		if last[r.ID] != i {
			continue // a batch must not hold one UUID twice
		}
		v := r.Version
		if version != nil {
			v = *version
		}
		headings := r.Headings
		if headings == nil {
			headings = []string{}
		}
		objs = append(objs, &models.Object{
			Class:  x.class,
			ID:     strfmt.UUID(ObjectID(r.ID)),
			Vector: models.C11yVector(r.Vector),
			Properties: map[string]any{
				propChunkID: string(r.ID), propBucket: r.Bucket, propKey: r.Key, propHash: string(r.Hash),
				propOrdinal: r.Ordinal, propHeadings: headings, propText: r.Text, propVersion: v, propMeta: metaJSON(r.Metadata),
				propKeyHex: hex.EncodeToString([]byte(r.Key)), propPos: pos(r.Bucket, r.Key, r.ID),
			},
		})
	}
	for start := 0; start < len(objs); start += upsertBatch {
		if err := x.batch(ctx, op, objs[start:min(start+upsertBatch, len(objs))]); err != nil {
			return err
		}
	}
	return nil
}

// batch sends one batch request and checks each object's result: the
// request succeeds as a whole even when objects fail.
func (x *Index) batch(ctx context.Context, op string, objs []*models.Object) error {
	res, err := x.client.Batch().ObjectsBatcher().WithObjects(objs...).Do(ctx)
	if err != nil {
		return classify(fmt.Sprintf("weaviate: %s %s", op, x.class), err)
	}
	var msgs []string
	failed := 0
	for _, r := range res {
		if r.Result == nil || r.Result.Errors == nil || len(r.Result.Errors.Error) == 0 {
			continue
		}
		failed++
		if len(msgs) < 3 {
			for _, e := range r.Result.Errors.Error {
				msgs = append(msgs, fmt.Sprintf("%s: %s", r.ID, e.Message))
			}
		}
	}
	if failed > 0 {
		return objectErrors(fmt.Sprintf("weaviate: %s %s: %d of %d objects failed", op, x.class, failed, len(objs)), msgs)
	}
	return nil
}

// remove deletes the objects of ids (see Delete) in batches (where id
// ContainsAny).
func (x *Index) remove(ctx context.Context, op string, ids []freshen.ChunkID) error {
	seen := make(map[string]bool, len(ids))
	uuids := make([]string, 0, len(ids))
	for _, id := range ids {
		u := objectUUID(id)
		if !seen[u] {
			seen[u] = true
			uuids = append(uuids, u)
		}
	}
	for start := 0; start < len(uuids); start += deleteBatch {
		part := uuids[start:min(start+deleteBatch, len(uuids))]
		where := filters.Where().WithPath([]string{"id"}).WithOperator(filters.ContainsAny).WithValueText(part...)
		res, err := x.client.Batch().ObjectsBatchDeleter().WithClassName(x.class).WithWhere(where).WithOutput("minimal").Do(ctx)
		if err != nil {
			return classify(fmt.Sprintf("weaviate: %s %s", op, x.class), err)
		}
		if res.Results != nil && res.Results.Failed > 0 {
			var msgs []string
			for _, o := range res.Results.Objects {
				if o.Errors != nil && len(msgs) < 3 {
					for _, e := range o.Errors.Error {
						msgs = append(msgs, fmt.Sprintf("%s: %s", o.ID, e.Message))
					}
				}
			}
			return objectErrors(fmt.Sprintf("weaviate: %s %s: %d of %d objects failed", op, x.class, res.Results.Failed, len(part)), msgs)
		}
	}
	return nil
}

// Apply implements freshen.ObjectWriter, as far as Weaviate allows:
//
//  1. Every vector is checked; a bad one fails the call before anything
//     is sent (ErrDimension, permanent).
//  2. The key's fence object (FenceID, in the fence class) is read. A
//     greater stored fence refuses the write with ErrStaleWrite; a
//     smaller one (or none) is replaced by w.Fence before any row is
//     written, so a stale writer that checks later is refused. An equal
//     one is a retry, applied again. The fence object is deleted only
//     by Pair with another ledger, so the fence outlives the key's rows.
//  3. The upserts are written (batch requests of upsertBatch objects),
//     then the deletes are removed (ids also upserted are not deleted).
//
// It is not atomic. Weaviate has no multi-object transactions, so while
// Apply runs a reader sees the old rows and some of the new, then the new
// rows and some of the old: one version whole, but not always exactly one.
// A failure part-way leaves such a mix until a retry (same fence)
// completes it. Steps 2 and 3 run under a per-key lock, so writers of one
// key in this process take turns; Weaviate has no conditional write to
// extend that across processes, so two processes applying one key at the
// same moment with different fences can still interleave (verify finds
// and repairs what that leaves).
func (x *Index) Apply(ctx context.Context, w freshen.ObjectWrite) error {
	if err := x.check("apply", w.Upserts); err != nil {
		return err
	}
	unlock := x.locks.lock(w.Bucket + "\x00" + w.Key)
	defer unlock()
	stored, ok, err := x.readFence(ctx, w.Bucket, w.Key)
	if err != nil {
		return err
	}
	if ok && stored > w.Fence {
		return fmt.Errorf("weaviate: %s: fence %d, the index has applied %d: %w", freshen.KeyForLog(w.Key), w.Fence, stored, freshen.ErrStaleWrite)
	}
	if !ok || stored < w.Fence {
		obj := &models.Object{Class: x.fence, ID: strfmt.UUID(FenceID(w.Bucket, w.Key)),
			Properties: map[string]any{propBucket: w.Bucket, propKey: w.Key, propFence: w.Fence}}
		if err := x.batch(ctx, "apply (fence)", []*models.Object{obj}); err != nil {
			return err
		}
	}
	if err := x.put(ctx, "apply", w.Upserts, &w.Version); err != nil {
		return err
	}
	upserted := make(map[freshen.ChunkID]bool, len(w.Upserts))
	for _, r := range w.Upserts {
		upserted[r.ID] = true
	}
	var dels []freshen.ChunkID
	for _, id := range w.Deletes {
		if !upserted[id] {
			dels = append(dels, id)
		}
	}
	if len(dels) > 0 && len(upserted) > 0 && w.Version != "" {
		// Weaviate has no transactions: before the old version's rows go,
		// wait (briefly) until search can see the new version's, so that
		// a reader sees at least one version whole.
		x.awaitVisible(ctx, w.Bucket, w.Key, w.Version, len(upserted))
	}
	return x.remove(ctx, "apply", dels)
}

// awaitVisible waits, up to a second, until the rows of key written for
// version are counted by a filtered query (Weaviate makes a batch's
// objects searchable shortly after the batch returns, under load).
func (x *Index) awaitVisible(ctx context.Context, bucket, key, version string, n int) {
	where := filters.Where().WithOperator(filters.And).WithOperands([]*filters.WhereBuilder{
		filters.Where().WithPath([]string{propPos}).WithOperator(filters.Like).WithValueText(pos(bucket, key, "") + "*"),
		filters.Where().WithPath([]string{propVersion}).WithOperator(filters.Equal).WithValueText(version),
	})
	wait := 5 * time.Millisecond
	for deadline := time.Now().Add(time.Second); ; wait = min(2*wait, 100*time.Millisecond) {
		if c, err := x.countWhere(ctx, where); err != nil || c >= n || time.Now().After(deadline) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// readFence returns the stored fence of bucket/key, if any.
func (x *Index) readFence(ctx context.Context, bucket, key string) (int64, bool, error) {
	props, ok, err := x.readFenceObject(ctx, FenceID(bucket, key))
	if err != nil {
		return 0, false, fmt.Errorf("weaviate: read fence of %s: %w", freshen.KeyForLog(key), err)
	}
	if !ok {
		return 0, false, nil
	}
	f, ok := props[propFence].(float64)
	if !ok {
		return 0, false, fmt.Errorf("weaviate: fence object of %s has no fence (%v)", freshen.KeyForLog(key), props)
	}
	return int64(f), true, nil
}

// Search implements freshen.Index: nearVector, with a prefix as the Like
// filter "hex(prefix)*" on key_hex (exact and literal, see the package
// documentation). K above Weaviate's result limit (10,000) is capped.
func (x *Index) Search(ctx context.Context, q freshen.Query) ([]freshen.Hit, error) {
	if err := freshen.CheckDim(q.Vector, x.dim); err != nil {
		return nil, fmt.Errorf("weaviate: search %s: %w", x.class, err)
	}
	if err := finite(q.Vector); err != nil {
		return nil, freshen.Permanent(fmt.Errorf("weaviate: search %s: %w", x.class, err))
	}
	if q.K <= 0 {
		return nil, nil
	}
	fields := append(rowFields(), graphql.Field{Name: propOrdinal}, graphql.Field{Name: propHeadings}, graphql.Field{Name: propMeta},
		graphql.Field{Name: "_additional", Fields: []graphql.Field{{Name: "distance"}}})
	limit := min(q.K, maxResults)
	if len(q.Filters) > 0 {
		// Metadata filters apply to the nearest candidates, read generously:
		// hits whose metadata matches beyond them are not found.
		limit = min(max(q.K*filterOverfetch, 100), maxResults)
	}
	get := x.client.GraphQL().Get().WithClassName(x.class).WithFields(fields...).
		WithNearVector(x.client.GraphQL().NearVectorArgBuilder().WithVector(q.Vector)).
		WithLimit(limit)
	if q.Prefix != "" {
		get = get.WithWhere(like(propKeyHex, hex.EncodeToString([]byte(q.Prefix))))
	}
	items, err := x.get(ctx, "search", get)
	if err != nil {
		return nil, err
	}
	hits := make([]freshen.Hit, 0, min(len(items), q.K))
	for _, it := range items {
		h := freshen.Hit{Record: record(it)}
		if len(hits) == q.K {
			break
		}
		if len(q.Filters) > 0 && !freshen.MatchAll(q.Filters, h.Metadata) {
			continue
		}
		if add, ok := it["_additional"].(map[string]any); ok {
			if d, ok := add["distance"].(float64); ok {
				h.Score = float32(1 - d)
			}
		}
		hits = append(hits, h)
	}
	return hits, nil
}

// get runs a GraphQL Get and returns the class's objects.
func (x *Index) get(ctx context.Context, op string, get *graphql.GetBuilder) ([]map[string]any, error) {
	resp, err := get.Do(ctx)
	if err != nil {
		return nil, classify(fmt.Sprintf("weaviate: %s %s", op, x.class), err)
	}
	if err := graphQLErrors(fmt.Sprintf("weaviate: %s %s", op, x.class), resp); err != nil {
		return nil, err
	}
	data, _ := resp.Data["Get"].(map[string]any)
	list, _ := data[x.class].([]any)
	out := make([]map[string]any, 0, len(list))
	for _, v := range list {
		if m, ok := v.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out, nil
}

func graphQLErrors(prefix string, resp *models.GraphQLResponse) error {
	if resp == nil || len(resp.Errors) == 0 {
		return nil
	}
	msgs := make([]string, 0, len(resp.Errors))
	for _, e := range resp.Errors {
		msgs = append(msgs, e.Message)
	}
	return objectErrors(prefix, msgs)
}

func like(prop, hexPrefix string) *filters.WhereBuilder {
	return filters.Where().WithPath([]string{prop}).WithOperator(filters.Like).WithValueText(hexPrefix + "*")
}

// pos is the row's place in (bucket, key, id) byte order, as lower-case
// hex of bucket NUL key NUL id: keys hold no NUL (freshen.ValidKey), so a
// key sorts before its extensions, and hex keeps byte order under any
// comparison Weaviate makes.
func pos(bucket, key string, id freshen.ChunkID) string {
	return hex.EncodeToString([]byte(bucket + "\x00" + key + "\x00" + string(id)))
}

func rowFields() []graphql.Field {
	return []graphql.Field{{Name: propChunkID}, {Name: propBucket}, {Name: propKey}, {Name: propHash},
		{Name: propText}, {Name: propVersion}}
}

// filterOverfetch is how many candidates per wanted hit a filtered
// search reads.
const filterOverfetch = 20

// metaJSON encodes metadata for the metadata_json property.
func metaJSON(m map[string]any) string {
	if len(m) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// record decodes a GraphQL object; absent fields stay zero.
func record(m map[string]any) freshen.Record {
	str := func(k string) string { s, _ := m[k].(string); return s }
	r := freshen.Record{ID: freshen.ChunkID(str(propChunkID)), Bucket: str(propBucket), Key: str(propKey),
		Hash: freshen.ChunkHash(str(propHash)), Text: str(propText), Version: str(propVersion)}
	if o, ok := m[propOrdinal].(float64); ok {
		r.Ordinal = int(o)
	}
	if js := str(propMeta); js != "" && js != "{}" {
		_ = json.Unmarshal([]byte(js), &r.Metadata)
	}
	if hs, ok := m[propHeadings].([]any); ok {
		for _, h := range hs {
			if s, ok := h.(string); ok {
				r.Headings = append(r.Headings, s)
			}
		}
	}
	return r
}

// keyLocks serializes Apply per key within the process.
type keyLocks struct {
	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	mu   sync.Mutex
	refs int
}

func (l *keyLocks) lock(key string) (unlock func()) {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[string]*keyLock{}
	}
	k := l.locks[key]
	if k == nil {
		k = &keyLock{}
		l.locks[key] = k
	}
	k.refs++
	l.mu.Unlock()
	k.mu.Lock()
	return func() {
		k.mu.Unlock()
		l.mu.Lock()
		if k.refs--; k.refs == 0 {
			delete(l.locks, key)
		}
		l.mu.Unlock()
	}
}

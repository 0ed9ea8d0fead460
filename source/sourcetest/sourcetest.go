// Package sourcetest is the conformance suite every freshen.Source passes:
// call Run from the implementation's tests with a constructor that returns
// a fresh, empty bucket and a Bucket handle that writes to it.
//
// It only reads through the Source under test; every write goes through
// the Bucket, as it would through another client of the store.
package sourcetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/freshen-io/freshen"
)

// Bucket writes to the bucket a Source reads. Its methods must be safe for
// concurrent use (the suite uploads in parallel to keep the paging test
// fast against real servers).
type Bucket interface {
	// Put creates or overwrites key with body; an empty contentType
	// leaves it to the store.
	Put(ctx context.Context, key, contentType string, body []byte) error
	// Delete removes key.
	Delete(ctx context.Context, key string) error
}

// NewSource returns a Source over a fresh, empty bucket, and a Bucket that
// writes to that same bucket. Cleanup is registered on t.
type NewSource func(t *testing.T) (freshen.Source, Bucket)

// Run checks the freshen.Source contract.
func Run(t *testing.T, newSource NewSource) {
	t.Run("ListInByteOrderWithPrefixAndStartAfter", func(t *testing.T) { tListOrder(t, newSource) })
	t.Run("ListPagesPast1000Keys", func(t *testing.T) { tListPaging(t, newSource) })
	t.Run("ListStopsOnCallbackError", func(t *testing.T) { tListStops(t, newSource) })
	t.Run("StatMissingIsNotFound", func(t *testing.T) { tStatMissing(t, newSource) })
	t.Run("StatFields", func(t *testing.T) { tStatFields(t, newSource) })
	t.Run("OpenReadsExactBytes", func(t *testing.T) { tOpenBytes(t, newSource) })
	t.Run("OpenAfterOverwriteIsPreconditionFailed", func(t *testing.T) { tOpenOverwritten(t, newSource) })
	t.Run("OpenAfterDeleteIsNotFound", func(t *testing.T) { tOpenDeleted(t, newSource) })
	t.Run("OddKeysRoundTrip", func(t *testing.T) { tOddKeys(t, newSource) })
	t.Run("ZeroByteObject", func(t *testing.T) { tZeroBytes(t, newSource) })
	t.Run("ConcurrentUse", func(t *testing.T) { tConcurrent(t, newSource) })
}

func tListOrder(t *testing.T, newSource NewSource) {
	ctx := context.Background()
	src, b := newSource(t)
	// Byte order, not locale order: upper case first, "-" < "." < "/" <
	// digits < letters, and multi-byte UTF-8 after every ASCII key. (No key
	// is also a "directory" of another: "a" next to "a/b" is valid S3 but
	// file-system backends such as versitygw's posix one refuse it.)
	keys := []string{"b", "a/b", "é", "A", "a.b", "~", "a-b", "ab", "a0"}
	for _, k := range keys {
		put(t, b, k, "text/plain", []byte("body of "+k))
	}
	want := slices.Clone(keys)
	slices.Sort(want)
	for _, c := range []struct {
		prefix, startAfter string
		want               []string
	}{
		{"", "", want},
		{"a", "", []string{"a-b", "a.b", "a/b", "a0", "ab"}},
		{"a/", "", []string{"a/b"}},
		{"a", "a-b", []string{"a.b", "a/b", "a0", "ab"}},
		// startAfter need not be a key, and may sort before the prefix.
		{"", "a/c", []string{"a0", "ab", "b", "~", "é"}},
		{"a", "0", []string{"a-b", "a.b", "a/b", "a0", "ab"}},
		{"", "é", nil},
		{"zzz", "", nil},
		{"b", "b", nil},
	} {
		got := listKeys(t, src, c.prefix, c.startAfter)
		if !slices.Equal(got, c.want) {
			t.Errorf("List(prefix %q, startAfter %q) = %q, want %q", c.prefix, c.startAfter, got, c.want)
		}
	}
	// What List reports agrees with Stat.
	err := src.List(ctx, "", "", func(o freshen.ObjectInfo) error {
		st, err := src.Stat(ctx, o.Key)
		if err != nil {
			return err
		}
		if o.ETag != st.ETag || o.Size != st.Size || o.Bucket != st.Bucket || o.Bucket == "" {
			t.Errorf("List reports %+v, Stat %+v", o, st)
		}
		if want := int64(len("body of " + o.Key)); o.Size != want {
			t.Errorf("List %q: size %d, want %d", o.Key, o.Size, want)
		}
		if o.LastModified.IsZero() {
			t.Errorf("List %q: no LastModified", o.Key)
		}
		return nil
	})
	must(t, err)
}

func tListPaging(t *testing.T, newSource NewSource) {
	ctx := context.Background()
	src, b := newSource(t)
	const n = 1050 // ListObjectsV2 returns at most 1000 keys a page
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("many/%04d", i)
	}
	putMany(t, b, keys)
	put(t, b, "mans", "", []byte("x")) // sorts before the prefix
	put(t, b, "manz", "", []byte("x")) // after it
	got := listKeys(t, src, "many/", "")
	if len(got) != n || !slices.Equal(got, keys) {
		t.Fatalf("List(many/) returned %d keys (first %q, last %q), want %d in order", len(got), first(got), last(got), n)
	}
	// Resuming after a key inside the second page, and inside the first.
	for _, after := range []int{1010, 3} {
		got = listKeys(t, src, "many/", keys[after])
		if !slices.Equal(got, keys[after+1:]) {
			t.Errorf("List(many/, after %q) returned %d keys, want %d", keys[after], len(got), n-after-1)
		}
	}
	// The whole bucket: both neighbours of the prefix, no duplicates at
	// page boundaries.
	got = listKeys(t, src, "", "")
	if len(got) != n+2 || got[0] != "mans" || got[n+1] != "manz" {
		t.Errorf("List of the bucket: %d keys (first %q, last %q), want %d", len(got), first(got), last(got), n+2)
	}
	// An error after the first page still stops the listing.
	stop := errors.New("stop here")
	calls := 0
	err := src.List(ctx, "many/", "", func(o freshen.ObjectInfo) error {
		calls++
		if calls == 1010 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Errorf("List returned %v, want the callback's error", err)
	}
	if calls != 1010 {
		t.Errorf("callback called %d times after it failed on call 1010", calls)
	}
}

func tListStops(t *testing.T, newSource NewSource) {
	ctx := context.Background()
	src, b := newSource(t)
	for _, k := range []string{"a", "b", "c", "d"} {
		put(t, b, k, "", []byte(k))
	}
	stop := errors.New("callback failed")
	var seen []string
	err := src.List(ctx, "", "", func(o freshen.ObjectInfo) error {
		seen = append(seen, o.Key)
		if o.Key == "b" {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Fatalf("List returned %v, want the callback's error as is", err)
	}
	if !slices.Equal(seen, []string{"a", "b"}) {
		t.Fatalf("callback saw %q, want [a b] and nothing after the error", seen)
	}
	// A nil-returning callback over an empty result is not an error.
	must(t, src.List(ctx, "nothing/", "", func(freshen.ObjectInfo) error {
		t.Error("callback called for an empty listing")
		return nil
	}))
}

func tStatMissing(t *testing.T, newSource NewSource) {
	ctx := context.Background()
	src, b := newSource(t)
	put(t, b, "dir/file.txt", "text/plain", []byte("x"))
	// "dir" and "dir/" are prefixes of a key, not keys.
	for _, k := range []string{"missing.txt", "dir", "dir/", "dir/file.txt.bak", "DIR/file.txt"} {
		if info, err := src.Stat(ctx, k); !errors.Is(err, freshen.ErrNotFound) {
			t.Errorf("Stat(%q) = %+v, %v; want an error wrapping ErrNotFound", k, info, err)
		}
	}
	missing := freshen.ObjectInfo{Key: "missing.txt", ETag: "0123456789abcdef0123456789abcdef"}
	if r, err := src.Open(ctx, missing); !errors.Is(err, freshen.ErrNotFound) {
		closeIf(r)
		t.Errorf("Open(missing) = %v, want an error wrapping ErrNotFound", err)
	}
}

func tStatFields(t *testing.T, newSource NewSource) {
	ctx := context.Background()
	src, b := newSource(t)
	objs := map[string]struct{ ct, body string }{
		"notes/doc.md": {"text/markdown", "# Title\n\nSome text.\n"},
		"data.json":    {"application/json", `{"a":1}`},
	}
	before := time.Now()
	for key, o := range objs {
		put(t, b, key, o.ct, []byte(o.body))
	}
	after := time.Now()
	for key, want := range objs {
		info, err := src.Stat(ctx, key)
		must(t, err)
		if info.Key != key || info.Size != int64(len(want.body)) || info.ContentType != want.ct || info.Bucket == "" {
			t.Errorf("Stat(%q) = %+v; want key %q, size %d, content type %q, a bucket", key, info, key, len(want.body), want.ct)
		}
		if info.ETag == "" || strings.ContainsAny(info.ETag, `"`) || strings.HasPrefix(info.ETag, "W/") {
			t.Errorf("Stat(%q).ETag = %q, want a bare entity tag", key, info.ETag)
		}
		// Stores keep whole seconds; allow for that and a little skew.
		if info.LastModified.Before(before.Add(-time.Minute)) || info.LastModified.After(after.Add(time.Minute)) {
			t.Errorf("Stat(%q).LastModified = %v, want between %v and %v", key, info.LastModified, before, after)
		}
		again, err := src.Stat(ctx, key)
		must(t, err)
		if again.ETag != info.ETag || again.VersionID != info.VersionID || !again.LastModified.Equal(info.LastModified) {
			t.Errorf("Stat(%q) twice: %+v then %+v", key, info, again)
		}
	}
	d, err := src.Stat(ctx, "data.json")
	must(t, err)
	m, err := src.Stat(ctx, "notes/doc.md")
	must(t, err)
	if d.ETag == m.ETag {
		t.Errorf("different bodies, same ETag %q", d.ETag)
	}
}

func tOpenBytes(t *testing.T, newSource NewSource) {
	ctx := context.Background()
	src, b := newSource(t)
	every := make([]byte, 256)
	for i := range every {
		every[i] = byte(i)
	}
	bodies := map[string][]byte{
		"text.txt":   []byte("hello, world\n"),
		"binary.bin": every,
		"crlf.txt":   []byte("line one\r\nline two\r\n\r\n"),
		"large.txt":  bytes.Repeat([]byte("0123456789abcdef"), 64<<10/16+3), // past one 64 KiB buffer
	}
	for k, body := range bodies {
		put(t, b, k, "application/octet-stream", body)
	}
	for k, body := range bodies {
		info, err := src.Stat(ctx, k)
		must(t, err)
		// Open may be retried: the same info reads the same bytes again.
		for range 2 {
			if got := read(t, src, info); !bytes.Equal(got, body) {
				t.Errorf("Open(%q) read %d bytes, want exactly the %d put", k, len(got), len(body))
			}
		}
	}
}

func tOpenOverwritten(t *testing.T, newSource NewSource) {
	ctx := context.Background()
	src, b := newSource(t)
	put(t, b, "doc.txt", "text/plain", []byte("version one"))
	old, err := src.Stat(ctx, "doc.txt")
	must(t, err)
	put(t, b, "doc.txt", "text/plain", []byte("version two, longer"))
	r, err := src.Open(ctx, old)
	switch {
	case err == nil && old.VersionID != "":
		// Pinned by version ID, the old version is still exactly what
		// old describes.
		got, rerr := io.ReadAll(r)
		r.Close()
		if rerr != nil || string(got) != "version one" {
			t.Errorf("Open(old version %s) = %q, %v; want the old bytes or ErrPreconditionFailed", old.VersionID, got, rerr)
		}
	case err == nil:
		got, _ := io.ReadAll(r)
		r.Close()
		t.Errorf("Open(stale ETag %s) succeeded and read %q; want an error wrapping ErrPreconditionFailed", old.ETag, got)
	case !errors.Is(err, freshen.ErrPreconditionFailed):
		t.Errorf("Open(stale) = %v, want an error wrapping ErrPreconditionFailed", err)
	}
	cur, err := src.Stat(ctx, "doc.txt")
	must(t, err)
	if cur.ETag == old.ETag {
		t.Fatalf("ETag %q did not change with the content", cur.ETag)
	}
	if got := read(t, src, cur); string(got) != "version two, longer" {
		t.Errorf("Open(current) = %q", got)
	}
}

func tOpenDeleted(t *testing.T, newSource NewSource) {
	ctx := context.Background()
	src, b := newSource(t)
	put(t, b, "gone.txt", "text/plain", []byte("soon gone"))
	info, err := src.Stat(ctx, "gone.txt")
	must(t, err)
	must(t, b.Delete(ctx, "gone.txt"))
	if _, err := src.Stat(ctx, "gone.txt"); !errors.Is(err, freshen.ErrNotFound) {
		t.Errorf("Stat(deleted) = %v, want an error wrapping ErrNotFound", err)
	}
	r, err := src.Open(ctx, info)
	switch {
	case err == nil && info.VersionID != "":
		got, rerr := io.ReadAll(r)
		r.Close()
		if rerr != nil || string(got) != "soon gone" {
			t.Errorf("Open(deleted, version %s) = %q, %v", info.VersionID, got, rerr)
		}
	case err == nil:
		r.Close()
		t.Errorf("Open(deleted) succeeded; want an error wrapping ErrNotFound")
	case !errors.Is(err, freshen.ErrNotFound):
		t.Errorf("Open(deleted) = %v, want an error wrapping ErrNotFound", err)
	}
	if got := listKeys(t, src, "", ""); len(got) != 0 {
		t.Errorf("List after delete = %q", got)
	}
}

// oddKeys are keys that URL encoding, signing or a file-system backend
// can get wrong. Each must come back byte for byte.
var oddKeys = []string{
	"odd/with space.md",
	"odd/two  spaces and trailing .md",
	"odd/plus+sign.md",
	"odd/percent%.md",
	"odd/literal%20not-a-space.md",
	"odd/literal%2Fnot-a-slash.md",
	"odd/ünïcødé/日本語のファイル.md",
	"odd/emoji-🙂.md",
	`odd/double"quote.md`,
	"odd/single'quote.md",
	"odd/amp&eq=semi;comma,.md",
	"odd/question?hash#.md",
	"odd/(parens)[brackets]{braces}.md",
	"odd/tilde~caret^at@dollar$.md",
	"odd/deep/a/b/c/d/e/f/g/h/i/j.txt",
}

func tOddKeys(t *testing.T, newSource NewSource) {
	ctx := context.Background()
	src, b := newSource(t)
	for i, k := range oddKeys {
		put(t, b, k, "text/plain", []byte(fmt.Sprintf("body %d of %s", i, k)))
	}
	want := slices.Clone(oddKeys)
	slices.Sort(want)
	if got := listKeys(t, src, "odd/", ""); !slices.Equal(got, want) {
		t.Fatalf("List(odd/) = %q\nwant %q", got, want)
	}
	for i, k := range oddKeys {
		// The key itself as prefix and as startAfter.
		if got := listKeys(t, src, k, ""); !slices.Equal(got, []string{k}) {
			t.Errorf("List(prefix %q) = %q", k, got)
		}
		j := slices.Index(want, k)
		if got := listKeys(t, src, "odd/", k); !slices.Equal(got, want[j+1:]) {
			t.Errorf("List(odd/, after %q) = %q, want %q", k, got, want[j+1:])
		}
		info, err := src.Stat(ctx, k)
		if err != nil {
			t.Errorf("Stat(%q): %v", k, err)
			continue
		}
		if info.Key != k {
			t.Errorf("Stat(%q).Key = %q", k, info.Key)
		}
		if got, wantBody := read(t, src, info), fmt.Sprintf("body %d of %s", i, k); string(got) != wantBody {
			t.Errorf("Open(%q) = %q, want %q", k, got, wantBody)
		}
	}
}

func tZeroBytes(t *testing.T, newSource NewSource) {
	ctx := context.Background()
	src, b := newSource(t)
	put(t, b, "empty.txt", "text/plain", nil)
	var listed []freshen.ObjectInfo
	must(t, src.List(ctx, "", "", func(o freshen.ObjectInfo) error { listed = append(listed, o); return nil }))
	if len(listed) != 1 || listed[0].Key != "empty.txt" || listed[0].Size != 0 {
		t.Fatalf("List = %+v, want empty.txt of size 0", listed)
	}
	info, err := src.Stat(ctx, "empty.txt")
	must(t, err)
	if info.Size != 0 || info.ETag == "" || info.ETag != listed[0].ETag {
		t.Errorf("Stat(empty.txt) = %+v; want size 0 and the listed ETag %q", info, listed[0].ETag)
	}
	if got := read(t, src, info); len(got) != 0 {
		t.Errorf("Open(empty.txt) read %q", got)
	}
}

func tConcurrent(t *testing.T, newSource NewSource) {
	ctx := context.Background()
	src, b := newSource(t)
	const nkeys, workers = 6, 6
	bodies := map[string]string{}
	for i := range nkeys {
		k := fmt.Sprintf("c/%d.txt", i)
		bodies[k] = strings.Repeat(fmt.Sprintf("object %d ", i), 100*(i+1))
		put(t, b, k, "text/plain", []byte(bodies[k]))
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers*nkeys*2+workers)
	for w := range workers {
		wg.Go(func() {
			if w == 0 {
				n := 0
				if err := src.List(ctx, "c/", "", func(freshen.ObjectInfo) error { n++; return nil }); err != nil || n != nkeys {
					errs <- fmt.Errorf("concurrent List: %d keys, %v", n, err)
				}
			}
			for i := range nkeys {
				k := fmt.Sprintf("c/%d.txt", (i+w)%nkeys)
				info, err := src.Stat(ctx, k)
				if err != nil {
					errs <- fmt.Errorf("concurrent Stat(%q): %w", k, err)
					continue
				}
				r, err := src.Open(ctx, info)
				if err != nil {
					errs <- fmt.Errorf("concurrent Open(%q): %w", k, err)
					continue
				}
				got, err := io.ReadAll(r)
				r.Close()
				if err != nil || string(got) != bodies[k] {
					errs <- fmt.Errorf("concurrent read of %q: %d bytes, %v", k, len(got), err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func put(t *testing.T, b Bucket, key, contentType string, body []byte) {
	t.Helper()
	if err := b.Put(context.Background(), key, contentType, body); err != nil {
		t.Fatalf("put %q: %v", key, err)
	}
}

// putMany uploads a small body under each key, a few at a time.
func putMany(t *testing.T, b Bucket, keys []string) {
	t.Helper()
	ch := make(chan string)
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for k := range ch {
				if err := b.Put(context.Background(), k, "text/plain", []byte(k)); err != nil {
					errs <- fmt.Errorf("put %q: %w", k, err)
					for range ch { // drain so the sender finishes
					}
					return
				}
			}
		})
	}
	for _, k := range keys {
		ch <- k
	}
	close(ch)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func listKeys(t *testing.T, src freshen.Source, prefix, startAfter string) []string {
	t.Helper()
	var keys []string
	err := src.List(context.Background(), prefix, startAfter, func(o freshen.ObjectInfo) error {
		keys = append(keys, o.Key)
		return nil
	})
	if err != nil {
		t.Fatalf("List(prefix %q, startAfter %q): %v", prefix, startAfter, err)
	}
	return keys
}

func read(t *testing.T, src freshen.Source, info freshen.ObjectInfo) []byte {
	t.Helper()
	r, err := src.Open(context.Background(), info)
	if err != nil {
		t.Fatalf("Open(%q): %v", info.Key, err)
	}
	defer func() {
		if err := r.Close(); err != nil {
			t.Errorf("Close(%q): %v", info.Key, err)
		}
	}()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %q: %v", info.Key, err)
	}
	return b
}

func closeIf(r io.ReadCloser) {
	if r != nil {
		r.Close()
	}
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

func last(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[len(s)-1]
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

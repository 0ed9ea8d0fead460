package pipeline

import (
	"context"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/chunk"
	"github.com/freshen-io/freshen/extract"
)

// TestOneTracePerObject: processing one object makes one trace: the
// object's span, with children for stat, get, extract, chunk, embed
// (batch size and cache hits), index write and commit, the event's time
// as an attribute, and the trace id in the result (for its log lines).
func TestOneTracePerObject(t *testing.T) {
	_, b := setup(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	chk, _ := chunk.New(chunk.Config{})
	var results []Result
	p := New(Config{Bucket: "b", Workers: 1, MaxAttempts: 3, Tracing: tp}, b.src, extract.New(extract.Config{}), chk, b.emb, b.idx, b.led, nil,
		func(r Result) { results = append(results, r) })
	b.src.Put("guide/a b.md", "text/markdown", []byte(doc("Guide", "A paragraph about harbors.", "Another about tides.")))
	at := time.Now().Add(-3 * time.Second)
	if _, err := b.led.Enqueue(context.Background(), []freshen.Change{{Bucket: "b", Key: "guide/a b.md", EventTime: at, Origin: "webhook"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans := rec.Ended()
	var root sdktrace.ReadOnlySpan
	names := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		names[s.Name()] = s
		if s.Name() == "freshen.object" {
			root = s
		}
	}
	if root == nil {
		t.Fatalf("no freshen.object span among %d", len(spans))
	}
	for _, want := range []string{"s3.stat", "s3.get", "extract", "chunk", "embed", "index.write", "ledger.commit"} {
		s, ok := names[want]
		if !ok {
			t.Fatalf("no %s span; have %v", want, slices.Collect(func(yield func(string) bool) {
				for n := range names {
					if !yield(n) {
						return
					}
				}
			}))
		}
		if s.SpanContext().TraceID() != root.SpanContext().TraceID() || s.Parent().SpanID() != root.SpanContext().SpanID() {
			t.Fatalf("%s is not a child of the object's span", want)
		}
	}
	attr := func(s sdktrace.ReadOnlySpan, k string) attribute.Value {
		for _, kv := range s.Attributes() {
			if string(kv.Key) == k {
				return kv.Value
			}
		}
		t.Fatalf("%s has no attribute %s", s.Name(), k)
		return attribute.Value{}
	}
	if got := attr(root, "freshen.event_time").AsString(); got != at.UTC().Format(time.RFC3339Nano) {
		t.Fatalf("event time %s, want %s", got, at.UTC().Format(time.RFC3339Nano))
	}
	if attr(root, "freshen.lag_at_start_ms").AsInt64() < 3000 || attr(root, "freshen.outcome").AsString() != "indexed" {
		t.Fatalf("object span attributes: %v", root.Attributes())
	}
	e := names["embed"]
	if attr(e, "freshen.embedded").AsInt64() == 0 || attr(e, "freshen.cache_hits").AsInt64() != 0 || attr(e, "freshen.batches").AsInt64() != 1 {
		t.Fatalf("embed span attributes: %v", e.Attributes())
	}
	if len(results) != 1 || results[0].TraceID != root.SpanContext().TraceID().String() {
		t.Fatalf("result trace id %+v", results)
	}
	if n := len(spans); n != 8 {
		t.Fatalf("%d spans for one object, want 8", n)
	}
}

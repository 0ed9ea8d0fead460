package e2e

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is an OTLP/HTTP trace receiver: it keeps every span sent.
type otlpReceiver struct {
	mu    sync.Mutex
	spans []*tracepb.Span
	srv   *httptest.Server
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	r := &otlpReceiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var msg collectortrace.ExportTraceServiceRequest
		if req.URL.Path != "/v1/traces" || proto.Unmarshal(body, &msg) != nil {
			http.Error(w, "not an OTLP trace export", http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		for _, rs := range msg.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				r.spans = append(r.spans, ss.Spans...)
			}
		}
		r.mu.Unlock()
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// TestSyncExportsOneTracePerObject: with OTEL_EXPORTER_OTLP_ENDPOINT set,
// `freshen sync` of one object exports one trace to the receiver: the
// object's span and its stages. Without it, nothing is sent.
func TestSyncExportsOneTracePerObject(t *testing.T) {
	b := setup(t, "")
	b.put("traced/one.md", "text/markdown", []byte("# Traced\n\nA paragraph about lighthouses.\n"))
	recv := newOTLPReceiver(t)
	sync := func(env ...string) {
		cmd := exec.Command(freshenBin, "sync", "--config", b.cfg, "--quiet")
		cmd.Env = append(append(os.Environ(), b.gw.Env()...), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("sync: %v\n%s", err, out)
		}
	}
	sync()
	if len(recv.spans) != 0 {
		t.Fatalf("%d spans sent without OTEL_EXPORTER_OTLP_ENDPOINT", len(recv.spans))
	}
	b.put("traced/one.md", "text/markdown", []byte("# Traced\n\nA second version, about harbors.\n"))
	sync("OTEL_EXPORTER_OTLP_ENDPOINT="+recv.srv.URL, "OTEL_SERVICE_NAME=freshen-test")
	recv.mu.Lock()
	defer recv.mu.Unlock()
	var root *tracepb.Span
	for _, s := range recv.spans {
		if s.Name == "freshen.object" {
			if root != nil {
				t.Fatal("two object spans for one object")
			}
			root = s
		}
	}
	if root == nil {
		t.Fatalf("no freshen.object span among %d", len(recv.spans))
	}
	var names []string
	for _, s := range recv.spans {
		if string(s.TraceId) != string(root.TraceId) {
			t.Fatalf("span %s is in another trace", s.Name)
		}
		if s != root {
			names = append(names, s.Name)
		}
	}
	got := strings.Join(names, ",")
	for _, want := range []string{"s3.stat", "s3.get", "extract", "chunk", "embed", "index.write", "ledger.commit"} {
		if !strings.Contains(got, want) {
			t.Fatalf("the trace has %s, not %s", got, want)
		}
	}
}

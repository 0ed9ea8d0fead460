package sqs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"go.uber.org/goleak"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/feed/feedtest"
	"github.com/freshen-io/freshen/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// transport sits between the feed and goaws: it counts calls, can cut
// the connection (a consumer that vanished) and can answer instead of
// the server (errors goaws never gives).
type transport struct {
	base     http.RoundTripper
	cut      atomic.Bool
	failures atomic.Int64

	mu     sync.Mutex
	calls  map[string]int
	answer func(action string) *http.Response
}

func newTransport() *transport {
	return &transport{base: http.DefaultTransport.(*http.Transport).Clone(), calls: map[string]int{}}
}

func (tr *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	action := strings.TrimPrefix(req.Header.Get("X-Amz-Target"), "AmazonSQS.")
	tr.mu.Lock()
	tr.calls[action]++
	answer := tr.answer
	tr.mu.Unlock()
	if tr.cut.Load() {
		tr.failures.Add(1)
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, errors.New("test: connection cut")
	}
	if answer != nil {
		if resp := answer(action); resp != nil {
			if req.Body != nil {
				req.Body.Close()
			}
			resp.Request = req
			return resp, nil
		}
	}
	resp, err := tr.base.RoundTrip(req)
	if err != nil {
		tr.failures.Add(1)
	}
	return resp, err
}

// CloseIdleConnections lets the feed's http.Client close the base
// transport's connections when Run returns.
func (tr *transport) CloseIdleConnections() { tr.base.(*http.Transport).CloseIdleConnections() }

func (tr *transport) setAnswer(f func(action string) *http.Response) {
	tr.mu.Lock()
	tr.answer = f
	tr.mu.Unlock()
}

func (tr *transport) count(action string) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.calls[action]
}

// awsError is an SQS JSON-protocol error response as AWS sends it.
func awsError(status int, typ, queryCode string) *http.Response {
	h := http.Header{"Content-Type": {"application/x-amz-json-1.0"}, "X-Amzn-Requestid": {"test"}}
	if queryCode != "" {
		h.Set("X-Amzn-Query-Error", queryCode+";Sender")
	}
	body := `{"__type":"` + typ + `","message":"injected by the test"}`
	return &http.Response{StatusCode: status, Status: http.StatusText(status), Header: h, Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body))}
}

type bundle struct {
	sqs   *testenv.SQS
	queue string
	cfg   Config
}

// setup starts goaws with one fresh queue and returns a fast feed
// configuration for it: 1s waits, visibility and retry delay.
func setup(t *testing.T) *bundle {
	t.Helper()
	s := testenv.StartSQS(t)
	q := s.CreateQueue(t, "events")
	return &bundle{sqs: s, queue: q, cfg: Config{
		QueueURL: q, Endpoint: s.Endpoint, Region: s.Region,
		WaitTime: time.Second, Visibility: time.Second, RetryDelay: time.Second,
	}}
}

// feed builds a feed of cfg talking through tr (a fresh one if nil).
func (b *bundle) feed(t *testing.T, cfg Config, tr *transport) (*Feed, *transport) {
	t.Helper()
	if tr == nil {
		tr = newTransport()
	}
	// The SDK refuses a custom CA bundle with an HTTP client it cannot
	// configure, and goaws is plain http anyway.
	t.Setenv("AWS_CA_BUNDLE", "")
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	f, err := New(context.Background(), cfg, log, testenv.StaticCredentials(), awsconfig.WithHTTPClient(&http.Client{Transport: tr}))
	if err != nil {
		t.Fatal(err)
	}
	return f, tr
}

// run runs f until stop is called or the test ends; stop returns Run's
// result, and done is closed when Run returns (then stop returns at once).
func run(t *testing.T, f *Feed, s freshen.Sink) (stop func() error, done <-chan struct{}) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan struct{})
	var err error
	go func() {
		err = f.Run(ctx, s)
		close(ch)
	}()
	stop = func() error {
		cancel()
		select {
		case <-ch:
			return err
		case <-time.After(10 * time.Second):
			t.Error("Run did not return within 10s of its context being cancelled")
			return nil
		}
	}
	t.Cleanup(func() { stop() })
	return stop, ch
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: "+format, append([]any{within}, args...)...)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestConformance runs the freshen.Feed suite on goaws. A delivery is
// acknowledged when the message is deleted from the queue, and not
// acknowledged when it becomes visible again for another delivery.
func TestConformance(t *testing.T) {
	feedtest.Run(t, func(t *testing.T) feedtest.Harness {
		b := setup(t)
		f, _ := b.feed(t, b.cfg, nil)
		return feedtest.Harness{Feed: f, Bucket: "docs", Publish: func(ctx context.Context, body []byte) *feedtest.Delivery {
			id := b.sqs.Send(t, b.queue, string(body))
			d, settle := feedtest.NewDelivery()
			watch := t.Context()
			go func() {
				for watch.Err() == nil {
					m, ok := b.sqs.Peek(b.queue, id)
					switch {
					case !ok:
						settle(true)
						return
					case m.Returned > 0:
						settle(false)
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
			}()
			return d
		}}
	})
}

// awsKey encodes key as S3 does in event notifications: form encoding
// ("+" for a space, %XX), slashes kept.
func awsKey(key string) string {
	parts := strings.Split(key, "/")
	for i, p := range parts {
		parts[i] = url.QueryEscape(p)
	}
	return strings.Join(parts, "/")
}

// s3Event is a notification exactly as S3 sends it to SQS (or, inside
// the envelope, to SNS): event names without the "s3:" prefix, the key
// URL-encoded.
func s3Event(event, bucket, key, sequencer string) string {
	k, _ := json.Marshal(awsKey(key))
	return `{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1","eventTime":"2026-11-26T07:42:08.123Z",` +
		`"eventName":"` + event + `","userIdentity":{"principalId":"AWS:AIDAJDPLRKLG7UEXAMPLE"},` +
		`"requestParameters":{"sourceIPAddress":"203.0.113.9"},` +
		`"responseElements":{"x-amz-request-id":"C3D13FE58DE4C810","x-amz-id-2":"FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"},` +
		`"s3":{"s3SchemaVersion":"1.0","configurationId":"freshen-events","bucket":{"name":"` + bucket + `","ownerIdentity":{"principalId":"A3NL1KOZZKExample"},"arn":"arn:aws:s3:::` + bucket + `"},` +
		`"object":{"key":` + string(k) + `,"size":1024,"eTag":"d41d8cd98f00b204e9800998ecf8427e","versionId":"096fKKXTRTtl3on89fVO.nfljtsv6qko","sequencer":"` + sequencer + `"}}}]}`
}

// snsEnvelope wraps message as SNS delivers it to an SQS subscription
// with raw message delivery off (SNS's own spacing included).
func snsEnvelope(message string) string {
	m, _ := json.Marshal(message)
	return "{\n" +
		`  "Type" : "Notification",` + "\n" +
		`  "MessageId" : "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",` + "\n" +
		`  "TopicArn" : "arn:aws:sns:us-east-1:123456789012:freshen-events",` + "\n" +
		`  "Subject" : "Amazon S3 Notification",` + "\n" +
		`  "Message" : ` + string(m) + ",\n" +
		`  "Timestamp" : "2026-11-26T07:42:08.456Z",` + "\n" +
		`  "SignatureVersion" : "1",` + "\n" +
		`  "Signature" : "EXAMPLEpH+DcEwjAPg8O9mY8dReBSwksfg2S7WKQcikcNKWLQjwu6A4VbeS0QHVCkhRS7fUQvi2egU3N858fiTDN6bkkOxYDVrY0Ad8L10Hs3zH81mtnPk5uvvolIC1CXGu43obcgFxeL3khZl8IKvO61GWB6jI9b5+gLPoBc1Q=",` + "\n" +
		`  "SigningCertURL" : "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem",` + "\n" +
		`  "UnsubscribeURL" : "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=arn:aws:sns:us-east-1:123456789012:freshen-events:c9135db0-26c4-47ec-8998-413945fb5a96"` + "\n" +
		"}"
}

// eventBridge is an S3 event as an EventBridge rule delivers it to SQS.
func eventBridge(detailType, bucket, key, sequencer string) string {
	k, _ := json.Marshal(awsKey(key))
	reason := `"reason":"PutObject"`
	if detailType == "Object Deleted" {
		reason = `"reason":"DeleteObject","deletion-type":"Permanently Deleted"`
	}
	return `{"version":"0","id":"17793124-05d4-b198-2fde-7ededc63b103","detail-type":"` + detailType + `","source":"aws.s3",` +
		`"account":"123456789012","time":"2026-11-26T07:42:08Z","region":"us-east-1","resources":["arn:aws:s3:::` + bucket + `"],` +
		`"detail":{"version":"0","bucket":{"name":"` + bucket + `"},"object":{"key":` + string(k) + `,"size":5,` +
		`"etag":"b1946ac92492d2347c6235b4d2611184","version-id":"IYV3p45BT0ac8hjHg1houSdS1a.Mro8e","sequencer":"` + sequencer + `"},` +
		`"request-id":"N4N7GDK58NMKJ12R","requester":"123456789012","source-ip-address":"1.2.3.4",` + reason + `}}`
}

// TestFormats: S3 → SQS, S3 → SNS → SQS and S3 → EventBridge → SQS
// messages all yield their keys, decoded, with the right kind.
func TestFormats(t *testing.T) {
	b := setup(t)
	f, _ := b.feed(t, b.cfg, nil)
	s := feedtest.NewSink("sqs")
	run(t, f, s)
	names := []string{"a b.md", "c+d.md", "ünï cödé.md", "50% off.md", "100%25.md", "plain.md"}
	type want struct {
		key  string
		kind freshen.ChangeKind
	}
	var wants []want
	for _, format := range []string{"s3", "sns", "eventbridge"} {
		for i, name := range names {
			key := format + "/dir/" + name
			created, deleted := "ObjectCreated:Put", "ObjectRemoved:Delete"
			if format == "eventbridge" {
				created, deleted = "Object Created", "Object Deleted"
			}
			event, kind := created, freshen.ChangeUpsert
			if i == len(names)-1 {
				event, kind = deleted, freshen.ChangeDelete
			}
			var body string
			switch format {
			case "s3":
				body = s3Event(event, "docs", key, "0055AED6DCD90281E5")
			case "sns":
				body = snsEnvelope(s3Event(event, "docs", key, "0055AED6DCD90281E5"))
			case "eventbridge":
				body = eventBridge(event, "docs", key, "0055AED6DCD90281E5")
			}
			b.sqs.Send(t, b.queue, body)
			wants = append(wants, want{key, kind})
		}
	}
	eventually(t, 15*time.Second, func() bool { return b.sqs.Len(t, b.queue) == 0 }, "%d messages left on the queue", b.sqs.Len(t, b.queue))
	got := s.Changes()
	for _, w := range wants {
		found := slices.ContainsFunc(got, func(c freshen.Change) bool {
			return c.Bucket == "docs" && c.Key == w.key && c.Kind == w.kind && c.Origin == "sqs" && c.Sequencer == "0055AED6DCD90281E5" && c.ETag != ""
		})
		if !found {
			t.Errorf("no %v change for %q among %d changes", w.kind, w.key, len(got))
		}
	}
	_, received, _ := s.Stats()
	if received != len(wants) {
		t.Errorf("received %d, want %d", received, len(wants))
	}
}

// TestDuplicatesAndReordering: the feed passes every delivery on, in
// whatever order SQS gives them, sequencers intact (the intake orders
// them per key).
func TestDuplicatesAndReordering(t *testing.T) {
	b := setup(t)
	f, _ := b.feed(t, b.cfg, nil)
	s := feedtest.NewSink("sqs")
	run(t, f, s)
	// The delete happened after the put (higher sequencer) but arrives first.
	b.sqs.Send(t, b.queue, s3Event("ObjectRemoved:Delete", "docs", "k.md", "0055AED6DCD90281F0"))
	b.sqs.Send(t, b.queue, s3Event("ObjectCreated:Put", "docs", "k.md", "0055AED6DCD90281E5"))
	b.sqs.Send(t, b.queue, s3Event("ObjectCreated:Put", "docs", "k.md", "0055AED6DCD90281E5"))
	eventually(t, 10*time.Second, func() bool { return s.PutsOf("k.md") == 3 }, "%d changes for k.md, want 3", s.PutsOf("k.md"))
	var got []string
	for _, c := range s.Changes() {
		got = append(got, fmt.Sprintf("%v@%s", c.Kind, c.Sequencer))
	}
	slices.Sort(got)
	want := []string{
		fmt.Sprintf("%v@0055AED6DCD90281E5", freshen.ChangeUpsert), fmt.Sprintf("%v@0055AED6DCD90281E5", freshen.ChangeUpsert),
		fmt.Sprintf("%v@0055AED6DCD90281F0", freshen.ChangeDelete),
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("kinds and sequencers %v, want %v", got, want)
	}
	eventually(t, 5*time.Second, func() bool { return b.sqs.Len(t, b.queue) == 0 }, "messages left on the queue")
}

// TestDroppedMessagesAreDeleted: malformed messages, test events,
// subscription notices and kinds freshen ignores are counted and deleted
// at once — never redelivered — and do not stop the valid ones.
func TestDroppedMessagesAreDeleted(t *testing.T) {
	b := setup(t)
	f, _ := b.feed(t, b.cfg, nil)
	s := feedtest.NewSink("sqs")
	run(t, f, s)
	malformed := []string{`{"Records":[`, `{"not":"an event"}`, `plain text`, `{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":""},"object":{"key":""}}}]}`}
	var ids []string
	for _, body := range malformed {
		ids = append(ids, b.sqs.Send(t, b.queue, body))
	}
	ids = append(ids, b.sqs.Send(t, b.queue, string(feedtest.TestEvent("docs"))))
	ids = append(ids, b.sqs.Send(t, b.queue, `{"Type":"SubscriptionConfirmation","MessageId":"m","Token":"t","TopicArn":"arn:aws:sns:us-east-1:123456789012:freshen-events","Message":"You have chosen to subscribe","SubscribeURL":"https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription","Timestamp":"2026-11-26T07:42:08.456Z"}`))
	ids = append(ids, b.sqs.Send(t, b.queue, s3Event("ObjectTagging:Put", "docs", "tagged.md", "0055AED6DCD90281E5")))
	b.sqs.Send(t, b.queue, s3Event("ObjectCreated:Put", "docs", "good.md", "0055AED6DCD90281E5"))
	eventually(t, 10*time.Second, func() bool { return b.sqs.Len(t, b.queue) == 0 }, "%d messages left on the queue", b.sqs.Len(t, b.queue))
	for _, id := range ids {
		if m, ok := b.sqs.Peek(b.queue, id); ok {
			t.Errorf("message %s still on the queue: %+v", id, m)
		}
	}
	_, _, drops := s.Stats()
	for reason, n := range map[string]int{"malformed": len(malformed), "test": 1, "subscription": 1, "kind": 1} {
		if got := drops[reason]; got != n {
			t.Errorf("dropped %q = %d, want %d", reason, got, n)
		}
	}
	if got := s.Changes(); len(got) != 1 || got[0].Key != "good.md" {
		t.Fatalf("changes %+v, want good.md alone", got)
	}
}

// TestKilledBetweenPutAndDelete: a consumer that dies after queueing the
// changes but before deleting the message leaves it on the queue; after
// the visibility timeout another consumer gets it and queues it again.
func TestKilledBetweenPutAndDelete(t *testing.T) {
	b := setup(t)
	first, tr := b.feed(t, b.cfg, nil)
	s1 := feedtest.NewSink("sqs")
	stopFirst, _ := run(t, first, s1)
	s1.SetHook(func(context.Context, []freshen.Change) error {
		tr.cut.Store(true) // the process dies: nothing it sends arrives
		return nil
	})
	id := b.sqs.Send(t, b.queue, s3Event("ObjectCreated:Put", "docs", "killed.md", "0055AED6DCD90281E5"))
	eventually(t, 10*time.Second, func() bool { return s1.PutsOf("killed.md") == 1 }, "the first consumer never queued killed.md")
	if err := stopFirst(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if _, ok := b.sqs.Peek(b.queue, id); !ok {
		t.Fatal("the message was deleted although the consumer was cut off before deleting it")
	}
	second, _ := b.feed(t, b.cfg, nil)
	s2 := feedtest.NewSink("sqs")
	run(t, second, s2)
	eventually(t, 10*time.Second, func() bool { return s2.PutsOf("killed.md") == 1 }, "the message was not redelivered to the second consumer")
	eventually(t, 5*time.Second, func() bool { _, ok := b.sqs.Peek(b.queue, id); return !ok }, "the second consumer did not delete the message")
}

// TestFailedPutIsRedelivered: while the sink fails, the message stays on
// the queue and comes back; once the sink accepts it, it is deleted.
func TestFailedPutIsRedelivered(t *testing.T) {
	b := setup(t)
	f, _ := b.feed(t, b.cfg, nil)
	s := feedtest.NewSink("sqs")
	var attempts atomic.Int64
	s.SetHook(func(context.Context, []freshen.Change) error {
		if attempts.Add(1) <= 2 {
			return errors.New("ledger is down")
		}
		return nil
	})
	run(t, f, s)
	id := b.sqs.Send(t, b.queue, s3Event("ObjectCreated:Put", "docs", "retry.md", "0055AED6DCD90281E5"))
	eventually(t, 15*time.Second, func() bool { return s.PutsOf("retry.md") == 1 }, "not queued after the sink recovered (%d attempts)", attempts.Load())
	eventually(t, 5*time.Second, func() bool { _, ok := b.sqs.Peek(b.queue, id); return !ok }, "not deleted after being queued")
	if n := attempts.Load(); n != 3 {
		t.Fatalf("%d Put attempts, want 3 (two failures, then success)", n)
	}
}

// TestPoisonMessageDoesNotBlockTheBatch: when the sink rejects one
// message's changes, the others of its batch are still queued and deleted.
func TestPoisonMessageDoesNotBlockTheBatch(t *testing.T) {
	b := setup(t)
	cfg := b.cfg
	cfg.RetryDelay = 30 * time.Second // the poison stays away for the test
	f, _ := b.feed(t, cfg, nil)
	s := feedtest.NewSink("sqs")
	s.SetHook(func(_ context.Context, changes []freshen.Change) error {
		if slices.ContainsFunc(changes, func(c freshen.Change) bool { return c.Key == "poison.md" }) {
			return errors.New("rejected")
		}
		return nil
	})
	var ids []string
	for _, k := range []string{"poison.md", "a.md", "b.md", "c.md"} {
		ids = append(ids, b.sqs.Send(t, b.queue, s3Event("ObjectCreated:Put", "docs", k, "0055AED6DCD90281E5")))
	}
	run(t, f, s)
	eventually(t, 10*time.Second, func() bool { return b.sqs.Len(t, b.queue) == 1 }, "%d messages on the queue, want the poison alone", b.sqs.Len(t, b.queue))
	if _, ok := b.sqs.Peek(b.queue, ids[0]); !ok {
		t.Fatal("the rejected message was deleted")
	}
	for _, k := range []string{"a.md", "b.md", "c.md"} {
		if s.PutsOf(k) == 0 {
			t.Errorf("%s was not queued", k)
		}
	}
}

// TestLongPutKeepsMessagesInvisible: while Put takes several visibility
// timeouts, the feed extends the visibility, so a second receiver never
// gets the message meanwhile.
func TestLongPutKeepsMessagesInvisible(t *testing.T) {
	b := setup(t)
	cfg := b.cfg
	cfg.Visibility = 2 * time.Second
	cfg.Receivers = 2
	f, tr := b.feed(t, cfg, nil)
	s := feedtest.NewSink("sqs")
	release := s.Hold()
	entered := func() int { attempts, _, _ := s.Stats(); return attempts }
	run(t, f, s)
	id := b.sqs.Send(t, b.queue, s3Event("ObjectCreated:Put", "docs", "slow.md", "0055AED6DCD90281E5"))
	eventually(t, 10*time.Second, func() bool { return entered() == 1 }, "Put never started")
	// Three visibility timeouts: without extensions the second receiver
	// would have the message by now.
	time.Sleep(3 * cfg.Visibility)
	if m, _ := b.sqs.Peek(b.queue, id); m.Returned != 0 || entered() != 1 {
		t.Fatalf("the message became visible again during Put (%+v, %d Puts)", m, entered())
	}
	if tr.count("ChangeMessageVisibility")+tr.count("ChangeMessageVisibilityBatch") == 0 {
		t.Fatal("no visibility extension was sent")
	}
	release()
	eventually(t, 5*time.Second, func() bool { _, ok := b.sqs.Peek(b.queue, id); return !ok }, "not deleted after Put returned")
	if n := s.PutsOf("slow.md"); n != 1 {
		t.Fatalf("slow.md put %d times, want 1", n)
	}
}

// TestShutdownReleasesMessages: messages in flight when Run is stopped
// are made visible at once, not after the visibility timeout.
func TestShutdownReleasesMessages(t *testing.T) {
	b := setup(t)
	cfg := b.cfg
	cfg.Visibility = 60 * time.Second
	f, _ := b.feed(t, cfg, nil)
	s := feedtest.NewSink("sqs")
	s.SetHook(func(ctx context.Context, _ []freshen.Change) error { <-ctx.Done(); return ctx.Err() })
	stop, _ := run(t, f, s)
	id := b.sqs.Send(t, b.queue, s3Event("ObjectCreated:Put", "docs", "inflight.md", "0055AED6DCD90281E5"))
	select {
	case <-s.Entered:
	case <-time.After(10 * time.Second):
		t.Fatal("Put never started")
	}
	if err := stop(); err != nil {
		t.Fatalf("Run returned %v after its context was cancelled, want nil", err)
	}
	m, ok := b.sqs.Peek(b.queue, id)
	if !ok || m.InFlight {
		t.Fatalf("after shutdown the message is %+v (on the queue: %v), want visible", m, ok)
	}
}

// TestEndpointDownAndBack: the SQS endpoint goes away (connections
// refused) and comes back; Run keeps retrying and resumes delivering.
// goaws keeps its queues in process memory, so they survive — as AWS's
// do across a network outage, which is the failure a consumer meets.
func TestEndpointDownAndBack(t *testing.T) {
	b := setup(t)
	f, tr := b.feed(t, b.cfg, nil)
	s := feedtest.NewSink("sqs")
	_, done := run(t, f, s)
	b.sqs.Send(t, b.queue, s3Event("ObjectCreated:Put", "docs", "before.md", "0055AED6DCD90281E5"))
	eventually(t, 10*time.Second, func() bool { return s.PutsOf("before.md") == 1 }, "before.md not queued")
	b.sqs.Stop()
	eventually(t, 15*time.Second, func() bool { return tr.failures.Load() >= 3 }, "the feed saw %d failed requests while the endpoint was down", tr.failures.Load())
	select {
	case <-done:
		t.Fatal("Run returned while the endpoint was down")
	default:
	}
	b.sqs.Restart(t)
	b.sqs.Send(t, b.queue, s3Event("ObjectCreated:Put", "docs", "after.md", "0055AED6DCD90281E5"))
	eventually(t, 20*time.Second, func() bool { return s.PutsOf("after.md") == 1 }, "after.md not queued after the endpoint came back")
	eventually(t, 5*time.Second, func() bool { return b.sqs.Len(t, b.queue) == 0 }, "messages left on the queue")
}

// TestThrottlingAndServerErrorsAreRetried: throttling and 5xx answers
// do not stop Run; it delivers once SQS answers again.
func TestThrottlingAndServerErrorsAreRetried(t *testing.T) {
	b := setup(t)
	tr := newTransport()
	var n atomic.Int64
	tr.setAnswer(func(action string) *http.Response {
		if action != "ReceiveMessage" {
			return nil
		}
		switch i := n.Add(1); {
		case i <= 3:
			return awsError(http.StatusBadRequest, "com.amazonaws.sqs#ThrottlingException", "RequestThrottled")
		case i <= 6:
			return awsError(http.StatusServiceUnavailable, "com.amazonaws.sqs#ServiceUnavailable", "ServiceUnavailable")
		}
		return nil
	})
	f, _ := b.feed(t, b.cfg, tr)
	s := feedtest.NewSink("sqs")
	_, done := run(t, f, s)
	b.sqs.Send(t, b.queue, s3Event("ObjectCreated:Put", "docs", "throttled.md", "0055AED6DCD90281E5"))
	eventually(t, 20*time.Second, func() bool { return s.PutsOf("throttled.md") == 1 }, "not delivered after the errors stopped (%d injected)", n.Load())
	if n.Load() < 7 {
		t.Fatalf("only %d receives were made", n.Load())
	}
	select {
	case <-done:
		t.Fatal("Run returned")
	default:
	}
}

// TestPermanentErrorsStopRun: a queue that does not exist, or that the
// credentials may not read, ends Run with a clear, permanent error.
func TestPermanentErrorsStopRun(t *testing.T) {
	b := setup(t)
	t.Run("MissingQueue", func(t *testing.T) {
		cfg := b.cfg
		cfg.QueueURL = strings.TrimSuffix(b.queue, queueName(b.queue)) + "no-such-queue"
		f, _ := b.feed(t, cfg, nil)
		checkPermanent(t, f, "does not exist")
	})
	t.Run("MissingQueueOnAWS", func(t *testing.T) {
		tr := newTransport()
		tr.setAnswer(func(string) *http.Response {
			return awsError(http.StatusBadRequest, "com.amazonaws.sqs#QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue")
		})
		f, _ := b.feed(t, b.cfg, tr)
		checkPermanent(t, f, "does not exist")
	})
	t.Run("AccessDenied", func(t *testing.T) {
		tr := newTransport()
		tr.setAnswer(func(string) *http.Response {
			return awsError(http.StatusBadRequest, "com.amazon.coral.service#AccessDeniedException", "AccessDenied")
		})
		f, _ := b.feed(t, b.cfg, tr)
		checkPermanent(t, f, "access denied")
	})
}

func checkPermanent(t *testing.T, f *Feed, want string) {
	t.Helper()
	s := feedtest.NewSink("sqs")
	stop, done := run(t, f, s)
	select {
	case <-done:
		err := stop()
		if err == nil || !freshen.IsPermanent(err) || !strings.Contains(err.Error(), want) {
			t.Fatalf("Run returned %v; want a permanent error saying %q", err, want)
		}
		t.Log(err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run kept going")
	}
}

func TestValidate(t *testing.T) {
	const q = "https://sqs.eu-west-1.amazonaws.com/123456789012/freshen-events"
	for _, tc := range []struct {
		cfg  Config
		want string // "" for valid
	}{
		{Config{QueueURL: q}, ""},
		{Config{QueueURL: q, Endpoint: "http://127.0.0.1:9324", WaitTime: 20 * time.Second, Visibility: 12 * time.Hour, Receivers: 32, RetryDelay: time.Second}, ""},
		{Config{}, "queue-url is required"},
		{Config{QueueURL: "arn:aws:sqs:eu-west-1:123456789012:freshen-events"}, "is an ARN; give the queue's URL (" + q + ")"},
		{Config{QueueURL: "freshen-events"}, "not an http(s) URL"},
		{Config{QueueURL: "https://sqs.eu-west-1.amazonaws.com/"}, "no queue name"},
		{Config{QueueURL: q, Endpoint: "127.0.0.1:9324"}, "must start with http"},
		{Config{QueueURL: q, WaitTime: 21 * time.Second}, "at most 20s"},
		{Config{QueueURL: q, WaitTime: 1500 * time.Millisecond}, "whole seconds"},
		{Config{QueueURL: q, Visibility: -time.Second}, "negative"},
		{Config{QueueURL: q, Visibility: 13 * time.Hour}, "at most 12h"},
		{Config{QueueURL: q, RetryDelay: 500 * time.Millisecond}, "whole seconds"},
		{Config{QueueURL: q, Receivers: 33}, "want 1 to 32"},
	} {
		err := tc.cfg.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc.cfg, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: error %v, want one containing %q", tc.cfg, err, tc.want)
		}
	}
	if _, err := New(context.Background(), Config{}, nil); err == nil || !strings.HasPrefix(err.Error(), "sqs: ") {
		t.Fatalf("New with an empty config: %v", err)
	}
}

func TestRegionOf(t *testing.T) {
	for in, want := range map[string]string{
		"https://sqs.eu-west-1.amazonaws.com/123456789012/q":        "eu-west-1",
		"https://sqs.cn-north-1.amazonaws.com.cn/123456789012/q":    "cn-north-1",
		"https://ap-southeast-2.queue.amazonaws.com/123456789012/q": "ap-southeast-2",
		"http://region.127.0.0.1:4100/100010001000/q":               "",
		"https://vpce-1a2b.sqs.us-east-1.vpce.amazonaws.com/1/q":    "",
	} {
		if got := regionOf(in); got != want {
			t.Errorf("regionOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNewAppliesDefaultsAndRegion(t *testing.T) {
	f, err := New(context.Background(), Config{QueueURL: "https://sqs.eu-west-1.amazonaws.com/123456789012/freshen-events"}, nil, testenv.StaticCredentials())
	if err != nil {
		t.Fatal(err)
	}
	if f.cfg.WaitTime != DefaultWaitTime || f.cfg.Visibility != DefaultVisibility || f.cfg.Receivers != DefaultReceivers || f.cfg.RetryDelay != DefaultRetryDelay {
		t.Fatalf("defaults not applied: %+v", f.cfg)
	}
	if r := f.client.Options().Region; r != "eu-west-1" {
		t.Fatalf("region %q, want the queue URL's eu-west-1", r)
	}
	if f.Name() != "sqs" {
		t.Fatalf("Name() = %q", f.Name())
	}
}

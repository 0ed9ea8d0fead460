package sqs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/feed/internal/consume"
	"github.com/freshen-io/freshen/feed/sns"
	"github.com/freshen-io/freshen/internal/awsconf"
)

// Defaults of Config.
const (
	DefaultWaitTime   = 20 * time.Second
	DefaultVisibility = 60 * time.Second
	DefaultReceivers  = 1
	DefaultRetryDelay = 10 * time.Second
)

// maxMessages is SQS's limit per ReceiveMessage (and per batch call).
const maxMessages = 10

// Config says which queue to read and how. Credentials are not part of
// it: they come from the standard AWS chain (environment, shared config
// and credentials files, SSO, IMDS...), as for the S3 source.
type Config struct {
	// QueueURL is the queue's URL, e.g.
	// https://sqs.us-east-1.amazonaws.com/123456789012/freshen-events.
	QueueURL string `yaml:"queue-url" json:"queue_url"`
	// Region defaults to the one in an AWS queue URL, else the AWS
	// chain's, else us-east-1.
	Region string `yaml:"region" json:"region,omitempty"`
	// Endpoint overrides the SQS endpoint (an SQS-compatible service, a
	// VPC endpoint, tests); empty for AWS.
	Endpoint string `yaml:"endpoint" json:"endpoint,omitempty"`
	// WaitTime is how long one ReceiveMessage waits for messages (long
	// polling), 1s to 20s in whole seconds; default 20s.
	WaitTime time.Duration `yaml:"wait-time" json:"wait_time,omitempty"`
	// Visibility is how long a received message stays invisible to other
	// consumers; it is extended while its batch is still being queued.
	// 1s to 12h in whole seconds; default 60s.
	Visibility time.Duration `yaml:"visibility" json:"visibility,omitempty"`
	// Receivers is the number of concurrent ReceiveMessage loops, each
	// with up to 10 messages in flight; 1 to 32, default 1.
	Receivers int `yaml:"receivers" json:"receivers,omitempty"`
	// RetryDelay is how soon a message whose changes could not be queued
	// is delivered again, 1s to 12h in whole seconds; default 10s.
	RetryDelay time.Duration `yaml:"retry-delay" json:"retry_delay,omitempty"`
}

// Validate checks the configuration without network access.
func (c Config) Validate() error {
	if c.QueueURL == "" {
		return errors.New("sqs queue-url is required: the URL of the queue S3 notifications go to, e.g. https://sqs.us-east-1.amazonaws.com/123456789012/freshen-events")
	}
	if strings.HasPrefix(c.QueueURL, "arn:") {
		return fmt.Errorf("sqs queue-url %q is an ARN; give the queue's URL (%s)", c.QueueURL, urlOfARN(c.QueueURL))
	}
	u, err := url.Parse(c.QueueURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("sqs queue-url %q is not an http(s) URL, e.g. https://sqs.us-east-1.amazonaws.com/123456789012/freshen-events", c.QueueURL)
	}
	if queueName(c.QueueURL) == "" {
		return fmt.Errorf("sqs queue-url %q has no queue name: it ends in /ACCOUNT-ID/QUEUE-NAME", c.QueueURL)
	}
	if c.Endpoint != "" && !strings.HasPrefix(c.Endpoint, "http://") && !strings.HasPrefix(c.Endpoint, "https://") {
		return fmt.Errorf("sqs endpoint %q must start with http:// or https://", c.Endpoint)
	}
	if err := seconds("wait-time", c.WaitTime, time.Second, 20*time.Second, "SQS long polling waits at most 20s"); err != nil {
		return err
	}
	if err := seconds("visibility", c.Visibility, time.Second, 12*time.Hour, "SQS allows at most 12h"); err != nil {
		return err
	}
	if err := seconds("retry-delay", c.RetryDelay, time.Second, 12*time.Hour, "SQS allows at most 12h"); err != nil {
		return err
	}
	if c.Receivers < 0 || c.Receivers > 32 {
		return fmt.Errorf("sqs receivers = %d: want 1 to 32 (0 for the default, %d)", c.Receivers, DefaultReceivers)
	}
	return nil
}

// seconds checks an optional duration that SQS takes in whole seconds.
func seconds(key string, d, lo, hi time.Duration, why string) error {
	switch {
	case d == 0:
		return nil
	case d < 0:
		return fmt.Errorf("sqs %s = %v is negative", key, d)
	case d%time.Second != 0:
		return fmt.Errorf("sqs %s = %v: SQS counts whole seconds", key, d)
	case d < lo || d > hi:
		return fmt.Errorf("sqs %s = %v: want %v to %v (%s)", key, d, lo, hi, why)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.WaitTime == 0 {
		c.WaitTime = DefaultWaitTime
	}
	if c.Visibility == 0 {
		c.Visibility = DefaultVisibility
	}
	if c.Receivers == 0 {
		c.Receivers = DefaultReceivers
	}
	if c.RetryDelay == 0 {
		c.RetryDelay = DefaultRetryDelay
	}
	return c
}

// Feed reads one queue; it implements freshen.Feed.
type Feed struct {
	cfg       Config
	client    *sqs.Client
	log       *slog.Logger
	closeIdle func()

	started atomic.Bool
	// noBatchVisibility is set once ChangeMessageVisibilityBatch was
	// refused (goaws and some other SQS-compatible services lack it).
	noBatchVisibility atomic.Bool
	// warnPut keeps a failing sink from logging every batch: a full disk
	// fails every batch alike.
	warnPut consume.Throttle
}

var _ freshen.Feed = (*Feed)(nil)

const origin = "sqs"

// New builds the feed and its SQS client; it does not contact SQS (Run's
// first receive reports a wrong queue or missing permissions). opts
// adjust how the AWS configuration is loaded (tests pass credentials or
// an HTTP client).
func New(ctx context.Context, cfg Config, log *slog.Logger, opts ...func(*awsconfig.LoadOptions) error) (*Feed, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sqs: %w", err)
	}
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	region := cfg.Region
	if region == "" {
		// An AWS queue URL names its region; the chain's may be another.
		region = regionOf(cfg.QueueURL)
	}
	awsCfg, err := awsconf.Load(ctx, region, opts...)
	if err != nil {
		return nil, fmt.Errorf("sqs: load AWS configuration: %w", err)
	}
	// Own the transport, so that Run can close its idle connections.
	var closeIdle func()
	switch c := awsCfg.HTTPClient.(type) {
	case *awshttp.BuildableClient:
		// A copy of the SDK's, with what the chain set (AWS_CA_BUNDLE).
		tr := c.GetTransport()
		awsCfg.HTTPClient = &http.Client{Transport: tr, Timeout: c.GetTimeout(),
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		closeIdle = tr.CloseIdleConnections
	case interface{ CloseIdleConnections() }:
		closeIdle = c.CloseIdleConnections
	}
	client := sqs.NewFromConfig(awsCfg, func(o *sqs.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	})
	return &Feed{
		cfg:       cfg,
		client:    client,
		log:       log.With("feed", origin, "queue", queueName(cfg.QueueURL)),
		closeIdle: closeIdle,
	}, nil
}

// Name implements freshen.Feed.
func (f *Feed) Name() string { return origin }

// Run implements freshen.Feed: Config.Receivers loops receive, queue and
// delete until ctx is done (then it returns nil) or one of them meets a
// permanent error — the queue does not exist, or access is denied — which
// it returns (freshen.IsPermanent reports true for it). Transient
// failures are retried with backoff and logged. It may be called once.
func (f *Feed) Run(ctx context.Context, sink freshen.Sink) error {
	if !f.started.CompareAndSwap(false, true) {
		return errors.New("sqs: Run called twice")
	}
	if f.closeIdle != nil {
		defer f.closeIdle()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, f.cfg.Receivers)
	var wg sync.WaitGroup
	for range f.cfg.Receivers {
		wg.Go(func() {
			if err := f.receive(ctx, sink); err != nil {
				errc <- err
				cancel()
			}
		})
	}
	wg.Wait()
	close(errc)
	return <-errc
}

// receive is one receiver loop; it returns nil when ctx is done.
func (f *Feed) receive(ctx context.Context, sink freshen.Sink) error {
	recvBackoff := consume.Backoff{Min: 200 * time.Millisecond, Max: 10 * time.Second, Jitter: true}
	putBackoff := consume.Backoff{Min: 500 * time.Millisecond, Max: 10 * time.Second, Jitter: true}
	failures := 0
	for ctx.Err() == nil {
		msgs, err := f.receiveBatch(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if isPermanent(err) {
				return freshen.Permanent(f.explain(err))
			}
			failures++
			// The first failure, then every tenth: an outage is one story.
			if failures == 1 || failures%10 == 0 {
				f.log.Warn("could not receive messages; retrying", "failures", failures, "err", err)
			}
			if !recvBackoff.Sleep(ctx) {
				return nil
			}
			continue
		}
		if failures > 0 {
			f.log.Info("receiving messages again", "after_failures", failures)
			failures = 0
			recvBackoff.Reset()
		}
		if len(msgs) == 0 {
			continue
		}
		if f.handle(ctx, sink, msgs) {
			putBackoff.Reset()
		} else if !putBackoff.Sleep(ctx) {
			// The sink is failing: receiving more now would fail too.
			return nil
		}
	}
	return nil
}

func (f *Feed) receiveBatch(ctx context.Context) ([]types.Message, error) {
	// A bound, in case a connection hangs without failing.
	ctx, cancel := context.WithTimeout(ctx, f.cfg.WaitTime+30*time.Second)
	defer cancel()
	out, err := f.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:            aws.String(f.cfg.QueueURL),
		MaxNumberOfMessages: maxMessages,
		WaitTimeSeconds:     int32(f.cfg.WaitTime / time.Second),
		VisibilityTimeout:   int32(f.cfg.Visibility / time.Second),
	})
	if err != nil {
		return nil, err
	}
	return out.Messages, nil
}

// pending is a message with changes to queue.
type pending struct {
	msg     types.Message
	changes []freshen.Change
}

// handle queues the changes of one batch and deletes the messages that
// are done with; it reports false if the sink failed.
func (f *Feed) handle(ctx context.Context, sink freshen.Sink, msgs []types.Message) bool {
	sink.Received(origin, len(msgs))
	stopExtending := f.keepInvisible(ctx, msgs)
	var done []types.Message
	var work []pending
	now := time.Now()
	for _, m := range msgs {
		body := []byte(aws.ToString(m.Body))
		changes, err := consume.Changes(sink, origin, body, now, f.testReason)
		if err != nil {
			f.log.Warn("deleted a message that is not an S3 event notification; a dead-letter queue will not see it",
				"message_id", aws.ToString(m.MessageId), "bytes", len(body), "err", err)
		}
		if len(changes) == 0 {
			done = append(done, m)
		} else {
			work = append(work, pending{msg: m, changes: changes})
		}
	}
	put, failed := f.put(ctx, sink, work)
	done = append(done, put...)
	stopExtending()
	f.delete(ctx, done)
	if len(failed) > 0 {
		delay := f.cfg.RetryDelay
		if ctx.Err() != nil {
			// Shutting down: let another consumer have them now.
			delay = 0
		}
		f.release(ctx, failed, delay)
	}
	return len(failed) == 0 || ctx.Err() != nil
}

// testReason tells an S3 test event from an SNS subscription notice,
// which someone has to act on: freshen does not confirm subscriptions
// from queue messages.
func (f *Feed) testReason(body []byte) string {
	m, ok, err := sns.Parse(body)
	if err != nil || !ok || m.Type == sns.TypeNotification {
		return "test"
	}
	if m.Type == sns.TypeSubscriptionConfirmation {
		f.log.Warn("an SNS subscription confirmation reached the queue; confirm the subscription in the SNS console (freshen does not)", "topic", m.TopicArn)
	} else {
		f.log.Warn("the queue was unsubscribed from an SNS topic; events from it stop now", "topic", m.TopicArn)
	}
	return "subscription"
}

// put queues the changes of work, all in one call; it returns the
// messages whose changes are queued and those whose are not.
func (f *Feed) put(ctx context.Context, sink freshen.Sink, work []pending) (put, failed []types.Message) {
	if len(work) == 0 {
		return nil, nil
	}
	var all []freshen.Change
	for _, w := range work {
		all = append(all, w.changes...)
	}
	err := sink.Put(ctx, origin, all)
	if err == nil {
		return messagesOf(work), nil
	}
	if len(work) == 1 || ctx.Err() != nil {
		f.putFailed(ctx, err)
		return nil, messagesOf(work)
	}
	// One message the sink rejects must not hold the others hostage, so
	// try them one by one; two failures in a row mean the sink itself is
	// failing, and the rest waits for the redelivery.
	inARow := 0
	for i, w := range work {
		if err := sink.Put(ctx, origin, w.changes); err != nil {
			failed = append(failed, w.msg)
			if inARow++; inARow == 2 || ctx.Err() != nil {
				f.putFailed(ctx, err)
				return put, append(failed, messagesOf(work[i+1:])...)
			}
			continue
		}
		inARow = 0
		put = append(put, w.msg)
	}
	if len(failed) > 0 {
		f.putFailed(ctx, err)
	}
	return put, failed
}

func (f *Feed) putFailed(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	if f.warnPut.OK() {
		f.log.Error("could not queue changes; their messages stay on the queue and come back", "retry_delay", f.cfg.RetryDelay, "err", err)
	}
}

func messagesOf(work []pending) []types.Message {
	out := make([]types.Message, len(work))
	for i, w := range work {
		out[i] = w.msg
	}
	return out
}

// keepInvisible extends the visibility of msgs every third of the
// visibility timeout until stop is called, so that a slow sink does not
// make SQS hand them to another receiver meanwhile.
func (f *Feed) keepInvisible(ctx context.Context, msgs []types.Message) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(f.cfg.Visibility / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := f.setVisibility(ctx, msgs, f.cfg.Visibility); err != nil && ctx.Err() == nil {
					f.log.Warn("could not extend the visibility of messages being queued; they may be delivered twice (harmless)", "messages", len(msgs), "err", err)
				}
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// release makes msgs visible again after delay (instead of after the
// rest of their visibility timeout).
func (f *Feed) release(ctx context.Context, msgs []types.Message, delay time.Duration) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := f.setVisibility(ctx, msgs, delay); err != nil {
		f.log.Info("could not shorten the visibility of messages; they come back when their visibility timeout ends", "messages", len(msgs), "err", err)
	}
}

// setVisibility sets the visibility timeout of msgs to d from now.
func (f *Feed) setVisibility(ctx context.Context, msgs []types.Message, d time.Duration) error {
	secs := int32(d / time.Second)
	if !f.noBatchVisibility.Load() {
		entries := make([]types.ChangeMessageVisibilityBatchRequestEntry, len(msgs))
		for i, m := range msgs {
			entries[i] = types.ChangeMessageVisibilityBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: secs}
		}
		out, err := f.client.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(f.cfg.QueueURL), Entries: entries})
		if err == nil {
			if len(out.Failed) > 0 {
				// Typically a message that was deleted, or whose receipt
				// expired and went to another receiver.
				return fmt.Errorf("%d of %d messages: %s", len(out.Failed), len(msgs), batchError(out.Failed[0]))
			}
			return nil
		}
		if ctx.Err() != nil || isPermanent(err) || isTransient(err) {
			return err
		}
		f.noBatchVisibility.Store(true)
		f.log.Info("ChangeMessageVisibilityBatch is refused; changing visibility one message at a time", "err", err)
	}
	var errs []error
	for _, m := range msgs {
		_, err := f.client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(f.cfg.QueueURL), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: secs})
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// delete acknowledges msgs. It tries briefly even when ctx is done: the
// changes are queued, and a message not deleted only comes back as a
// harmless duplicate.
func (f *Feed) delete(ctx context.Context, msgs []types.Message) {
	if len(msgs) == 0 {
		return
	}
	budget := min(f.cfg.Visibility, 10*time.Second)
	if ctx.Err() != nil {
		budget = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), budget)
	defer cancel()
	entries := make([]types.DeleteMessageBatchRequestEntry, len(msgs))
	for i, m := range msgs {
		entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle}
	}
	bo := consume.Backoff{Min: 100 * time.Millisecond, Max: time.Second, Jitter: true}
	for {
		out, err := f.client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(f.cfg.QueueURL), Entries: entries})
		if err == nil {
			if len(out.Failed) > 0 {
				f.log.Warn("could not delete messages whose changes are queued; they will be delivered again (harmless)",
					"failed", len(out.Failed), "of", len(msgs), "err", batchError(out.Failed[0]))
			}
			return
		}
		if isPermanent(err) || !bo.Sleep(ctx) {
			f.log.Warn("could not delete messages whose changes are queued; they will be delivered again (harmless)", "messages", len(msgs), "err", err)
			return
		}
	}
}

func batchError(e types.BatchResultErrorEntry) string {
	return aws.ToString(e.Code) + ": " + aws.ToString(e.Message)
}

// Error classes, decided here and nowhere else.

// permanentCodes are the error codes retrying cannot fix: the queue is
// not there, or these credentials may not use it. Both the JSON
// protocol's names and the query protocol's (which SQS sends in
// x-amzn-query-error, and SQS-compatible services send alone) are listed.
var permanentCodes = map[string]string{
	"QueueDoesNotExist":                       "the queue does not exist (check queue-url and region)",
	"AWS.SimpleQueueService.NonExistentQueue": "the queue does not exist (check queue-url and region)",
	"InvalidAddress":                          "the queue URL is not valid",
	"AccessDenied":                            "access denied (the credentials need sqs:ReceiveMessage, sqs:DeleteMessage and sqs:ChangeMessageVisibility on the queue)",
	"AccessDeniedException":                   "access denied (the credentials need sqs:ReceiveMessage, sqs:DeleteMessage and sqs:ChangeMessageVisibility on the queue)",
	"KmsAccessDenied":                         "access denied to the queue's KMS key (the credentials need kms:Decrypt)",
	"KMS.AccessDeniedException":               "access denied to the queue's KMS key (the credentials need kms:Decrypt)",
	"InvalidClientTokenId":                    "the AWS credentials are not valid",
	"UnrecognizedClientException":             "the AWS credentials are not valid",
	"InvalidSecurity":                         "the request was refused as insecure (use https)",
	"SignatureDoesNotMatch":                   "the AWS secret key does not match",
	"InvalidSignatureException":               "the AWS secret key does not match",
}

func isPermanent(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		_, ok := permanentCodes[ae.ErrorCode()]
		return ok
	}
	return false
}

// isTransient reports errors the SDK itself would retry: throttling,
// 5xx, timeouts, network failures.
func isTransient(err error) bool {
	return retry.IsErrorRetryables(retry.DefaultRetryables).IsErrorRetryable(err) == aws.TrueTernary
}

func (f *Feed) explain(err error) error {
	var ae smithy.APIError
	errors.As(err, &ae)
	return fmt.Errorf("sqs: receive from %s: %s: %w", f.cfg.QueueURL, permanentCodes[ae.ErrorCode()], err)
}

// queueName is the last segment of a queue URL.
func queueName(queueURL string) string {
	u, err := url.Parse(queueURL)
	if err != nil {
		return ""
	}
	p := strings.TrimSuffix(u.Path, "/")
	return p[strings.LastIndexByte(p, '/')+1:]
}

// regionOf reads the region from an AWS queue URL
// (sqs.REGION.amazonaws.com[.cn], or the legacy REGION.queue.amazonaws.com);
// "" for any other host.
func regionOf(queueURL string) string {
	u, err := url.Parse(queueURL)
	if err != nil {
		return ""
	}
	host := strings.TrimSuffix(strings.TrimSuffix(u.Hostname(), ".cn"), ".amazonaws.com")
	if host == u.Hostname() {
		return ""
	}
	labels := strings.Split(host, ".")
	switch {
	case len(labels) == 2 && labels[0] == "sqs":
		return labels[1]
	case len(labels) == 2 && labels[1] == "queue":
		return labels[0]
	}
	return ""
}

// urlOfARN turns arn:aws:sqs:REGION:ACCOUNT:NAME into the queue's URL, for
// an error message.
func urlOfARN(arn string) string {
	p := strings.Split(arn, ":")
	if len(p) != 6 || p[2] != "sqs" {
		return "https://sqs.REGION.amazonaws.com/ACCOUNT-ID/QUEUE-NAME"
	}
	domain := "amazonaws.com"
	if p[1] == "aws-cn" {
		domain = "amazonaws.com.cn"
	}
	return "https://sqs." + p[3] + "." + domain + "/" + p[4] + "/" + p[5]
}

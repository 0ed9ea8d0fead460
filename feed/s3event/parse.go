// Package s3event parses S3 event notifications in every envelope freshen
// accepts — S3's own Records[] JSON (AWS, MinIO, Ceph RGW, versitygw), the
// same wrapped in an SNS notification, EventBridge "Object Created/Deleted"
// events, and SQS messages carrying any of these — into freshen.Change
// hints, using the types of github.com/aws/aws-lambda-go/events.
//
// It never decides what happened to an object: a Change is a hint, and the
// worker reads the key's current state. That is why an ambiguous key
// encoding (AWS URL-encodes keys, versitygw does not) yields both readings
// of the key: the wrong one costs one HEAD request that finds nothing.
package s3event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/freshen-io/freshen"
)

// ErrMalformed wraps every error caused by the message itself.
var ErrMalformed = errors.New("malformed event")

// Result is what one message held.
type Result struct {
	Changes []freshen.Change
	// Records counts the object events seen (before key variants).
	Records int
	// Test is set for s3:TestEvent messages (sent when notifications are
	// configured); they carry no change.
	Test bool
	// Skipped counts records that are not object changes (e.g. restore
	// or replication notices).
	Skipped int
}

// Parse decodes one message body. origin names the transport for metrics
// ("webhook", "sqs"...); received is when it arrived.
func Parse(body []byte, origin string, received time.Time) (Result, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return Result{}, fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	var probe struct {
		Records    json.RawMessage `json:"Records"`
		Event      string          `json:"Event"`
		Type       string          `json:"Type"`
		Message    *string         `json:"Message"`
		DetailType string          `json:"detail-type"`
		Body       *string         `json:"body"`
	}
	if err := json.Unmarshal(body, &probe); err != nil {
		return Result{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	switch {
	case probe.Event == "s3:TestEvent":
		return Result{Test: true}, nil
	case probe.Records != nil:
		return parseRecords(probe.Records, origin, received)
	case probe.Message != nil && (probe.Type == "Notification" || probe.Type == ""):
		// SNS: the S3 message is a JSON string inside.
		return Parse([]byte(*probe.Message), origin, received)
	case probe.Type == "SubscriptionConfirmation" || probe.Type == "UnsubscribeConfirmation":
		return Result{Test: true}, nil
	case probe.DetailType != "":
		return parseEventBridge(body, origin, received)
	case probe.Body != nil:
		// An SQS message as JSON (e.g. forwarded by a Lambda).
		return Parse([]byte(*probe.Body), origin, received)
	}
	return Result{}, fmt.Errorf("%w: no Records, SNS Message or EventBridge detail", ErrMalformed)
}

// record is the tolerant fallback for one S3 record: events.S3Object fails
// to unmarshal a raw key that is not valid URL encoding ("50%off.md" from
// a store that does not encode keys).
type record struct {
	EventName string    `json:"eventName"`
	EventTime time.Time `json:"eventTime"`
	S3        struct {
		Bucket struct {
			Name string `json:"name"`
		} `json:"bucket"`
		Object struct {
			Key       string `json:"key"`
			Size      int64  `json:"size"`
			VersionID string `json:"versionId"`
			ETag      string `json:"eTag"`
			Sequencer string `json:"sequencer"`
		} `json:"object"`
	} `json:"s3"`
}

func parseRecords(raw json.RawMessage, origin string, received time.Time) (Result, error) {
	var recs []json.RawMessage
	if err := json.Unmarshal(raw, &recs); err != nil {
		return Result{}, fmt.Errorf("%w: Records: %v", ErrMalformed, err)
	}
	var res Result
	for i, r := range recs {
		var rec record
		var ev events.S3EventRecord
		if err := json.Unmarshal(r, &ev); err == nil {
			rec.EventName, rec.EventTime = ev.EventName, ev.EventTime
			rec.S3.Bucket.Name = ev.S3.Bucket.Name
			o := ev.S3.Object
			rec.S3.Object.Key, rec.S3.Object.Size, rec.S3.Object.VersionID, rec.S3.Object.ETag, rec.S3.Object.Sequencer = o.Key, o.Size, o.VersionID, o.ETag, o.Sequencer
		} else if err := json.Unmarshal(r, &rec); err != nil {
			return Result{}, fmt.Errorf("%w: record %d: %v", ErrMalformed, i, err)
		}
		kind := kindOf(rec.EventName)
		if kind == freshen.ChangeUnknown {
			res.Skipped++
			continue
		}
		if rec.S3.Bucket.Name == "" || rec.S3.Object.Key == "" {
			return Result{}, fmt.Errorf("%w: record %d has no bucket or key", ErrMalformed, i)
		}
		res.Records++
		c := freshen.Change{
			Bucket: rec.S3.Bucket.Name, Kind: kind, ETag: strings.Trim(rec.S3.Object.ETag, `"`), VersionID: nullable(rec.S3.Object.VersionID),
			Sequencer: rec.S3.Object.Sequencer, Size: rec.S3.Object.Size, EventTime: eventTime(rec.EventTime, received), Origin: origin,
		}
		res.Changes = append(res.Changes, withKeys(c, rec.S3.Object.Key)...)
	}
	return res, nil
}

// kindOf maps S3 event names (s3:ObjectCreated:Put, s3:ObjectRemoved:
// DeleteMarkerCreated, versitygw's s3:ObjectRemoved:DeleteObjects...).
func kindOf(name string) freshen.ChangeKind {
	n := strings.TrimPrefix(name, "s3:")
	switch {
	case strings.HasPrefix(n, "ObjectCreated:"), strings.HasPrefix(n, "ObjectRestore:Completed"):
		return freshen.ChangeUpsert
	case strings.HasPrefix(n, "ObjectRemoved:"), strings.HasPrefix(n, "LifecycleExpiration:"):
		return freshen.ChangeDelete
	}
	return freshen.ChangeUnknown
}

func parseEventBridge(body []byte, origin string, received time.Time) (Result, error) {
	var ev events.EventBridgeEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		return Result{}, fmt.Errorf("%w: EventBridge: %v", ErrMalformed, err)
	}
	var kind freshen.ChangeKind
	switch ev.DetailType {
	case "Object Created", "Object Restore Completed":
		kind = freshen.ChangeUpsert
	case "Object Deleted":
		kind = freshen.ChangeDelete
	default:
		return Result{Skipped: 1}, nil
	}
	var d struct {
		Bucket struct {
			Name string `json:"name"`
		} `json:"bucket"`
		Object struct {
			Key       string `json:"key"`
			Size      int64  `json:"size"`
			ETag      string `json:"etag"`
			VersionID string `json:"version-id"`
			Sequencer string `json:"sequencer"`
		} `json:"object"`
	}
	if err := json.Unmarshal(ev.Detail, &d); err != nil {
		return Result{}, fmt.Errorf("%w: EventBridge detail: %v", ErrMalformed, err)
	}
	if d.Bucket.Name == "" || d.Object.Key == "" {
		return Result{}, fmt.Errorf("%w: EventBridge detail has no bucket or key", ErrMalformed)
	}
	c := freshen.Change{Bucket: d.Bucket.Name, Kind: kind, ETag: strings.Trim(d.Object.ETag, `"`), VersionID: d.Object.VersionID,
		Sequencer: d.Object.Sequencer, Size: d.Object.Size, EventTime: eventTime(ev.Time, received), Origin: origin}
	return Result{Records: 1, Changes: withKeys(c, d.Object.Key)}, nil
}

// withKeys returns c for the raw key and, when it differs, for its
// URL-decoded form (AWS encodes keys form-style: "+" for space, %XX).
func withKeys(c freshen.Change, raw string) []freshen.Change {
	c.Key = raw
	out := []freshen.Change{c}
	if dec, err := url.QueryUnescape(raw); err == nil && dec != raw && dec != "" {
		d := c
		d.Key = dec
		out = append(out, d)
	}
	return out
}

func nullable(s string) string {
	if s == "null" {
		return ""
	}
	return s
}

// eventTime trusts the event's time unless it is missing or in the
// future (clock skew), in which case the arrival time is used.
func eventTime(t, received time.Time) time.Time {
	if t.IsZero() || t.After(received) {
		return received
	}
	return t
}

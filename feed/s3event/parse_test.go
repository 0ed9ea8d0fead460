package s3event

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/freshen-io/freshen"
)

var now = time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)

func keys(cs []freshen.Change) string {
	var out []string
	for _, c := range cs {
		out = append(out, fmt.Sprintf("%s:%s/%s", c.Kind, c.Bucket, c.Key))
	}
	return strings.Join(out, " ")
}

// A PUT as versitygw v1.8.0 sends it (keys not encoded, versionId null).
const versityPut = `{"Records":[{"eventVersion":"2.2","eventSource":"aws:s3","awsRegion":"us-east-1","eventTime":"2026-11-26T07:42:08Z","eventName":"s3:ObjectCreated:Put","s3":{"s3SchemaVersion":"1.0","configurationId":"webhook-global","bucket":{"name":"docs","arn":"arn:aws:s3:::/docs/dir/a.txt"},"object":{"key":"dir/a b+c.txt","size":14,"eTag":"\"09238fac94a75a1491afe2fa8238e707\"","versionId":null,"sequencer":"1"}}}]}`

// An AWS notification: keys URL-encoded form-style.
const awsPut = `{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"eu-west-1","eventTime":"2026-11-26T07:00:00.000Z","eventName":"ObjectCreated:Put","s3":{"s3SchemaVersion":"1.0","bucket":{"name":"docs"},"object":{"key":"dir/r%C3%A9sum%C3%A9+final.md","size":10,"eTag":"abc","versionId":"v1","sequencer":"0055AED6DCD90281E5"}}}]}`

func TestParse(t *testing.T) {
	for _, c := range []struct {
		name, body, want string
		test             bool
	}{
		{"versitygw put", versityPut, "upsert:docs/dir/a b+c.txt upsert:docs/dir/a b c.txt", false},
		{"aws put", awsPut, "upsert:docs/dir/r%C3%A9sum%C3%A9+final.md upsert:docs/dir/résumé final.md", false},
		{"versitygw DeleteObjects", strings.Replace(versityPut, "ObjectCreated:Put", "ObjectRemoved:DeleteObjects", 1), "delete:docs/dir/a b+c.txt delete:docs/dir/a b c.txt", false},
		{"delete marker", strings.Replace(awsPut, "ObjectCreated:Put", "ObjectRemoved:DeleteMarkerCreated", 1), "delete:docs/dir/r%C3%A9sum%C3%A9+final.md delete:docs/dir/résumé final.md", false},
		{"raw percent key", strings.Replace(versityPut, `dir/a b+c.txt`, `50%off.md`, 1), "upsert:docs/50%off.md", false},
		{"test event", `{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-11-26T07:42:08Z","Bucket":"docs"}`, "", true},
		{"sns", `{"Type":"Notification","MessageId":"1","TopicArn":"arn:aws:sns:x","Message":` + jsonString(awsPut) + `}`, "upsert:docs/dir/r%C3%A9sum%C3%A9+final.md upsert:docs/dir/résumé final.md", false},
		{"eventbridge", `{"version":"0","id":"1","detail-type":"Object Deleted","source":"aws.s3","time":"2026-11-26T07:00:00Z","detail":{"bucket":{"name":"docs"},"object":{"key":"k.md","sequencer":"00A"}}}`, "delete:docs/k.md", false},
		{"sqs body", `{"messageId":"m","body":` + jsonString(versityPut) + `}`, "upsert:docs/dir/a b+c.txt upsert:docs/dir/a b c.txt", false},
		{"copy with size 0", strings.Replace(strings.Replace(versityPut, "ObjectCreated:Put", "ObjectCreated:Copy", 1), `"size":14`, `"size":0`, 1), "upsert:docs/dir/a b+c.txt upsert:docs/dir/a b c.txt", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, err := Parse([]byte(c.body), "webhook", now)
			if err != nil {
				t.Fatal(err)
			}
			if got := keys(res.Changes); got != c.want || res.Test != c.test {
				t.Fatalf("changes = %q (test %v), want %q (test %v)", got, res.Test, c.want, c.test)
			}
		})
	}
}

func TestParseFields(t *testing.T) {
	res, err := Parse([]byte(awsPut), "sqs", now)
	if err != nil {
		t.Fatal(err)
	}
	c := res.Changes[1]
	if c.ETag != "abc" || c.VersionID != "v1" || c.Sequencer != "0055AED6DCD90281E5" || c.Size != 10 || c.Origin != "sqs" ||
		!c.EventTime.Equal(time.Date(2026, 11, 26, 7, 0, 0, 0, time.UTC)) || res.Records != 1 {
		t.Fatalf("change = %+v", c)
	}
	// A future event time (clock skew) falls back to the arrival time.
	res, _ = Parse([]byte(strings.Replace(versityPut, "2026-11-26T07:42:08Z", "2027-01-01T00:00:00Z", 1)), "webhook", now)
	if !res.Changes[0].EventTime.Equal(now) || res.Changes[0].VersionID != "" || res.Changes[0].ETag != "09238fac94a75a1491afe2fa8238e707" {
		t.Fatalf("change = %+v", res.Changes[0])
	}
}

func TestMalformed(t *testing.T) {
	for _, body := range []string{"", "not json", "[]", `{"Records":"x"}`, `{"Records":[{"eventName":"s3:ObjectCreated:Put","s3":{}}]}`, `{"hello":"world"}`, `{"Records":[` + strings.Repeat(`{}`, 1) + `,]}`} {
		if _, err := Parse([]byte(body), "webhook", now); !errors.Is(err, ErrMalformed) {
			t.Errorf("Parse(%q) err = %v, want ErrMalformed", body, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{versityPut, awsPut, `{"Event":"s3:TestEvent"}`, `{"Message":"{}"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		res, err := Parse(b, "fuzz", now)
		if err == nil {
			for _, c := range res.Changes {
				if c.Key == "" || c.Bucket == "" {
					t.Fatalf("change without key: %+v", c)
				}
			}
		}
	})
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

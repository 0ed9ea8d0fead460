package sns

import (
	"errors"
	"testing"
)

// A notification as SNS delivers it over HTTP, carrying an S3 event.
const notificationJSON = `{
  "Type" : "Notification",
  "MessageId" : "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
  "TopicArn" : "arn:aws:sns:us-east-1:123456789012:docs-events",
  "Subject" : "Amazon S3 Notification",
  "Message" : "{\"Records\":[{\"eventName\":\"ObjectCreated:Put\",\"s3\":{\"bucket\":{\"name\":\"docs\"},\"object\":{\"key\":\"a.md\"}}}]}",
  "Timestamp" : "2026-11-26T07:42:08.655Z",
  "SignatureVersion" : "1",
  "Signature" : "c2lnbmF0dXJl",
  "SigningCertURL" : "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000.pem",
  "UnsubscribeURL" : "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=arn:aws:sns:us-east-1:123456789012:docs-events:c9135db0"
}`

const confirmationJSON = `{
  "Type" : "SubscriptionConfirmation",
  "MessageId" : "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
  "Token" : "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a747ba6f3beb71854e285d6ad02428b09ceece29417f1f02d609c582a",
  "TopicArn" : "arn:aws:sns:us-west-2:123456789012:docs-events",
  "Message" : "You have chosen to subscribe to the topic arn:aws:sns:us-west-2:123456789012:docs-events.\nTo confirm the subscription, visit the SubscribeURL included in this message.",
  "SubscribeURL" : "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-west-2:123456789012:docs-events&Token=2336412f37fb",
  "Timestamp" : "2026-11-26T07:40:00.000Z",
  "SignatureVersion" : "2",
  "Signature" : "c2lnbmF0dXJl",
  "SigningCertURL" : "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-0000.pem"
}`

func TestParse(t *testing.T) {
	m, ok, err := Parse([]byte(notificationJSON))
	if err != nil || !ok {
		t.Fatalf("notification: ok=%v err=%v", ok, err)
	}
	want := Message{
		Type: "Notification", MessageID: "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
		TopicArn: "arn:aws:sns:us-east-1:123456789012:docs-events", Subject: "Amazon S3 Notification",
		Message:   `{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"docs"},"object":{"key":"a.md"}}}]}`,
		Timestamp: "2026-11-26T07:42:08.655Z", SignatureVersion: "1", Signature: "c2lnbmF0dXJl",
		SigningCertURL: "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000.pem",
		UnsubscribeURL: "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=arn:aws:sns:us-east-1:123456789012:docs-events:c9135db0",
	}
	if m != want {
		t.Errorf("notification:\n got %+v\nwant %+v", m, want)
	}

	m, ok, err = Parse([]byte(confirmationJSON))
	if err != nil || !ok {
		t.Fatalf("confirmation: ok=%v err=%v", ok, err)
	}
	if m.Type != TypeSubscriptionConfirmation || m.Token == "" || m.SubscribeURL == "" || m.SignatureVersion != "2" {
		t.Errorf("confirmation: %+v", m)
	}

	// Lambda's spelling of the URL fields.
	m, ok, err = Parse([]byte(`{"Type":"Notification","MessageId":"1","TopicArn":"t","Message":"m","Timestamp":"ts","SigningCertUrl":"https://c","UnsubscribeUrl":"https://u"}`))
	if err != nil || !ok || m.SigningCertURL != "https://c" || m.UnsubscribeURL != "https://u" {
		t.Errorf("lambda spelling: ok=%v err=%v %+v", ok, err, m)
	}
}

func TestParseNotSNS(t *testing.T) {
	for name, body := range map[string]string{
		"empty":           ``,
		"not JSON":        `hello`,
		"broken JSON":     `{"Records":`,
		"array":           `[{"Type":"Notification"}]`,
		"S3 records":      `{"Records":[{"eventName":"s3:ObjectCreated:Put"}]}`,
		"S3 test event":   `{"Service":"Amazon S3","Event":"s3:TestEvent"}`,
		"EventBridge":     `{"detail-type":"Object Created","source":"aws.s3","detail":{}}`,
		"SQS body":        `{"body":"{}","messageId":"x"}`,
		"other Type":      `{"Type":"Widget","Message":"hi"}`,
		"Type not string": `{"Type":7}`,
	} {
		m, ok, err := Parse([]byte(body))
		if ok || err != nil || m != (Message{}) {
			t.Errorf("%s: got ok=%v err=%v %+v, want not SNS", name, ok, err, m)
		}
	}
}

func TestParseMalformed(t *testing.T) {
	for name, body := range map[string]string{
		"no MessageId":          `{"Type":"Notification","TopicArn":"t","Message":"m","Timestamp":"ts"}`,
		"no Message":            `{"Type":"Notification","MessageId":"1","TopicArn":"t","Timestamp":"ts"}`,
		"no TopicArn":           `{"Type":"Notification","MessageId":"1","Message":"m","Timestamp":"ts"}`,
		"no Timestamp":          `{"Type":"Notification","MessageId":"1","TopicArn":"t","Message":"m"}`,
		"unknown Type":          `{"Type":"Widget","MessageId":"1","TopicArn":"t","Message":"m","Timestamp":"ts"}`,
		"no Type":               `{"MessageId":"1","TopicArn":"t","Message":"m","Timestamp":"ts"}`,
		"Message not a string":  `{"Type":"Notification","MessageId":"1","TopicArn":"t","Message":{"Records":[]},"Timestamp":"ts"}`,
		"confirm, no Token":     `{"Type":"SubscriptionConfirmation","MessageId":"1","TopicArn":"t","Message":"m","Timestamp":"ts","SubscribeURL":"https://x"}`,
		"confirm, no Subscribe": `{"Type":"SubscriptionConfirmation","MessageId":"1","TopicArn":"t","Message":"m","Timestamp":"ts","Token":"k"}`,
		"unsubscribe, no Token": `{"Type":"UnsubscribeConfirmation","MessageId":"1","TopicArn":"t","Message":"m","Timestamp":"ts","SubscribeURL":"https://x"}`,
	} {
		_, ok, err := Parse([]byte(body))
		if ok || !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got ok=%v err=%v, want ErrMalformed", name, ok, err)
		}
	}
}

// The strings to sign are golden: they are what AWS documents, and a
// difference of one byte fails every real signature.
func TestStringToSign(t *testing.T) {
	for _, c := range []struct {
		name, body, want string
		edit             func(*Message)
	}{
		{name: "notification", body: notificationJSON, want: `Message
{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"docs"},"object":{"key":"a.md"}}}]}
MessageId
22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324
Subject
Amazon S3 Notification
Timestamp
2026-11-26T07:42:08.655Z
TopicArn
arn:aws:sns:us-east-1:123456789012:docs-events
Type
Notification
`},
		{name: "notification without subject", body: notificationJSON, edit: func(m *Message) { m.Subject = "" }, want: `Message
{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"docs"},"object":{"key":"a.md"}}}]}
MessageId
22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324
Timestamp
2026-11-26T07:42:08.655Z
TopicArn
arn:aws:sns:us-east-1:123456789012:docs-events
Type
Notification
`},
		{name: "subscription confirmation", body: confirmationJSON, want: `Message
You have chosen to subscribe to the topic arn:aws:sns:us-west-2:123456789012:docs-events.
To confirm the subscription, visit the SubscribeURL included in this message.
MessageId
165545c9-2a5c-472c-8df2-7ff2be2b3b1b
SubscribeURL
https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-west-2:123456789012:docs-events&Token=2336412f37fb
Timestamp
2026-11-26T07:40:00.000Z
Token
2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a747ba6f3beb71854e285d6ad02428b09ceece29417f1f02d609c582a
TopicArn
arn:aws:sns:us-west-2:123456789012:docs-events
Type
SubscriptionConfirmation
`},
		{name: "unsubscribe confirmation", body: confirmationJSON, edit: func(m *Message) { m.Type = TypeUnsubscribeConfirmation; m.Message = "bye" }, want: `Message
bye
MessageId
165545c9-2a5c-472c-8df2-7ff2be2b3b1b
SubscribeURL
https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-west-2:123456789012:docs-events&Token=2336412f37fb
Timestamp
2026-11-26T07:40:00.000Z
Token
2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a747ba6f3beb71854e285d6ad02428b09ceece29417f1f02d609c582a
TopicArn
arn:aws:sns:us-west-2:123456789012:docs-events
Type
UnsubscribeConfirmation
`},
	} {
		m, ok, err := Parse([]byte(c.body))
		if err != nil || !ok {
			t.Fatalf("%s: ok=%v err=%v", c.name, ok, err)
		}
		if c.edit != nil {
			c.edit(&m)
		}
		got, err := stringToSign(m)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
	}
	if _, err := stringToSign(Message{Type: "Widget"}); err == nil {
		t.Error("unknown type: want error")
	}
}

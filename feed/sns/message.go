package sns

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Message types SNS sends to an HTTP(S) endpoint.
const (
	TypeNotification             = "Notification"
	TypeSubscriptionConfirmation = "SubscriptionConfirmation"
	TypeUnsubscribeConfirmation  = "UnsubscribeConfirmation"
)

// ErrMalformed wraps every error caused by a body that claims to be an SNS
// message but is not a valid one; the webhook answers 400.
var ErrMalformed = errors.New("malformed SNS message")

// Message is the JSON document SNS POSTs to an HTTP(S) subscription. Values
// are kept exactly as sent (Timestamp is not parsed) because the signature
// covers the strings, not what they mean.
//
// The JSON names are those of HTTP deliveries (SigningCertURL); Lambda's
// spelling (SigningCertUrl) decodes too, since encoding/json matches names
// case-insensitively.
type Message struct {
	Type      string `json:"Type"`
	MessageID string `json:"MessageId"`
	// Token is set on confirmations only.
	Token    string `json:"Token,omitempty"`
	TopicArn string `json:"TopicArn"`
	// Subject is optional on notifications. SNS never sends an empty
	// subject, so "" means absent for the string to sign.
	Subject string `json:"Subject,omitempty"`
	// Message is the payload: for S3 notifications, the S3 event JSON as a
	// string.
	Message          string `json:"Message"`
	Timestamp        string `json:"Timestamp"`
	SignatureVersion string `json:"SignatureVersion"`
	Signature        string `json:"Signature"`
	SigningCertURL   string `json:"SigningCertURL"`
	// SubscribeURL is set on confirmations only.
	SubscribeURL   string `json:"SubscribeURL,omitempty"`
	UnsubscribeURL string `json:"UnsubscribeURL,omitempty"`
}

// Parse decodes body as an SNS message.
//
// ok is false, with a nil error, when body is not an SNS message at all —
// not JSON, not an object, or an object with neither a TopicArn nor a Type
// SNS uses — so the caller can hand it to another parser (s3event). When
// body claims to be SNS but lacks a field every SNS message of its type
// carries, or a field is not a string, Parse returns ok=false and an error
// wrapping ErrMalformed. Signature fields are not required here: whether
// they must be present is Verify's business.
func Parse(body []byte) (Message, bool, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return Message{}, false, nil
	}
	// Probe with RawMessage first so that a non-SNS object whose fields
	// happen to share a name but not a type is "not SNS", not "malformed".
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(body, &probe); err != nil {
		return Message{}, false, nil
	}
	var typ string
	_ = json.Unmarshal(probe["Type"], &typ)
	_, hasTopic := probe["TopicArn"]
	if !hasTopic && !knownType(typ) {
		return Message{}, false, nil
	}
	var m Message
	if err := json.Unmarshal(body, &m); err != nil {
		return Message{}, false, fmt.Errorf("sns: parse: %w: %v", ErrMalformed, err)
	}
	if err := m.check(); err != nil {
		return Message{}, false, fmt.Errorf("sns: parse: %w", err)
	}
	return m, true, nil
}

func knownType(t string) bool {
	switch t {
	case TypeNotification, TypeSubscriptionConfirmation, TypeUnsubscribeConfirmation:
		return true
	}
	return false
}

// check reports the first field SNS always sets for m's type that is empty.
func (m Message) check() error {
	if !knownType(m.Type) {
		return fmt.Errorf("%w: unknown Type %q", ErrMalformed, m.Type)
	}
	type field struct{ name, v string }
	need := []field{{"TopicArn", m.TopicArn}, {"MessageId", m.MessageID}, {"Timestamp", m.Timestamp}, {"Message", m.Message}}
	if m.Type != TypeNotification {
		need = append(need, field{"SubscribeURL", m.SubscribeURL}, field{"Token", m.Token})
	}
	for _, f := range need {
		if f.v == "" {
			return fmt.Errorf("%w: %s %s has no %s", ErrMalformed, m.Type, m.MessageID, f.name)
		}
	}
	return nil
}

// StringToSign builds the canonical string SNS signs, as AWS documents it:
// "Name\nvalue\n" for each signed field, in byte order of the names.
func StringToSign(m Message) (string, error) { return stringToSign(m) }

func stringToSign(m Message) (string, error) {
	type field struct{ name, v string }
	var fields []field
	switch m.Type {
	case TypeNotification:
		fields = []field{{"Message", m.Message}, {"MessageId", m.MessageID}}
		if m.Subject != "" {
			fields = append(fields, field{"Subject", m.Subject})
		}
		fields = append(fields, field{"Timestamp", m.Timestamp}, field{"TopicArn", m.TopicArn}, field{"Type", m.Type})
	case TypeSubscriptionConfirmation, TypeUnsubscribeConfirmation:
		fields = []field{
			{"Message", m.Message}, {"MessageId", m.MessageID}, {"SubscribeURL", m.SubscribeURL},
			{"Timestamp", m.Timestamp}, {"Token", m.Token}, {"TopicArn", m.TopicArn}, {"Type", m.Type},
		}
	default:
		return "", fmt.Errorf("unknown message type %q", m.Type)
	}
	var b strings.Builder
	for _, f := range fields {
		b.WriteString(f.name)
		b.WriteByte('\n')
		b.WriteString(f.v)
		b.WriteByte('\n')
	}
	return b.String(), nil
}

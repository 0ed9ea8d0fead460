package config

import (
	"bytes"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// FeedsConfig chooses the event transports and configures them. In YAML
// it is either a list of names (`feeds: [webhook]`) or a mapping from
// name to settings:
//
//	feeds:
//	  webhook: {}
//	  sqs: {queue-url: https://sqs.us-east-1.amazonaws.com/123/docs-events}
type FeedsConfig struct {
	// Names are the feeds to run, in order.
	Names StringList
	SQS   SQSFeedConfig   `yaml:"sqs"`
	NATS  NATSFeedConfig  `yaml:"nats"`
	Kafka KafkaFeedConfig `yaml:"kafka"`
}

// SQSFeedConfig is the SQS consumer's: the queue S3 (or SNS, or
// EventBridge) sends the bucket's notifications to.
type SQSFeedConfig struct {
	QueueURL string `yaml:"queue-url"`
	// Region and Endpoint default to the AWS chain's and AWS's.
	Region   string `yaml:"region"`
	Endpoint string `yaml:"endpoint"`
	// WaitTime is the long poll (default 20s); Visibility how long a
	// received message stays hidden while in work (default 60s; it is
	// extended while a batch takes longer).
	WaitTime   Duration `yaml:"wait-time"`
	Visibility Duration `yaml:"visibility"`
}

// NATSFeedConfig is the NATS JetStream consumer's.
type NATSFeedConfig struct {
	URL string `yaml:"url"`
	// Stream captures Subject (it is created if missing).
	Stream  string `yaml:"stream"`
	Subject string `yaml:"subject"`
	// Durable names the consumer, shared by every freshen process
	// (default freshen).
	Durable string `yaml:"durable"`
}

// KafkaFeedConfig is the Kafka consumer group's.
type KafkaFeedConfig struct {
	Brokers StringList `yaml:"brokers"`
	Topic   string     `yaml:"topic"`
	// Group is the consumer group, shared by every freshen process
	// (default freshen).
	Group string `yaml:"group"`
}

// UnmarshalYAML accepts a list of names or a mapping of name to settings.
func (f *FeedsConfig) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return f.Names.UnmarshalYAML(n)
	}
	f.Names = nil
	for i := 0; i+1 < len(n.Content); i += 2 {
		name, val := n.Content[i].Value, n.Content[i+1]
		var dst any
		switch name {
		case "webhook":
		case "sqs":
			dst = &f.SQS
		case "nats":
			dst = &f.NATS
		case "kafka":
			dst = &f.Kafka
		default:
			return fmt.Errorf("line %d: feeds: unknown feed %q (want %s)", n.Content[i].Line, name, strings.Join(FeedTypes, ", "))
		}
		f.Names = append(f.Names, name)
		empty := val.Kind == yaml.ScalarNode && (val.Tag == "!!null" || val.Value == "") || val.Kind == yaml.MappingNode && len(val.Content) == 0
		if empty {
			continue
		}
		if dst == nil {
			return fmt.Errorf("line %d: feeds.%s has no settings here (the webhook's are webhook-token and webhook.*)", val.Line, name)
		}
		// Decode strictly, as the rest of the file is.
		raw, err := yaml.Marshal(val)
		if err != nil {
			return err
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(true)
		if err := dec.Decode(dst); err != nil {
			return fmt.Errorf("feeds.%s (line %d): %s", name, val.Line, explainYAML(err))
		}
	}
	return nil
}

// MarshalYAML writes the list form when no feed has settings.
func (f FeedsConfig) MarshalYAML() (any, error) {
	if f.SQS == (SQSFeedConfig{}) && f.NATS == (NATSFeedConfig{}) && f.Kafka.Topic == "" && len(f.Kafka.Brokers) == 0 && f.Kafka.Group == "" {
		return []string(f.Names), nil
	}
	out := map[string]any{}
	for _, name := range f.Names {
		switch name {
		case "sqs":
			out[name] = f.SQS
		case "nats":
			out[name] = f.NATS
		case "kafka":
			out[name] = f.Kafka
		default:
			out[name] = map[string]any{}
		}
	}
	return out, nil
}

// check explains missing or stray feed settings.
func (f FeedsConfig) check(add func(string, ...any)) {
	on := func(name string) bool { return slices.Contains(f.Names, name) }
	if on("sqs") {
		if u, err := url.Parse(f.SQS.QueueURL); f.SQS.QueueURL == "" || err != nil || u.Scheme == "" || u.Host == "" {
			add("feeds.sqs.queue-url %q: want the queue's URL, e.g. https://sqs.us-east-1.amazonaws.com/123456789012/docs-events", f.SQS.QueueURL)
		}
		if f.SQS.WaitTime < 0 || f.SQS.WaitTime > Duration(20e9) || f.SQS.Visibility < 0 {
			add("feeds.sqs: wait-time is 0s..20s (SQS's long poll) and visibility must not be negative")
		}
	} else if f.SQS != (SQSFeedConfig{}) {
		add("feeds.sqs has settings but sqs is not among the feeds")
	}
	if on("nats") {
		if f.NATS.URL == "" || f.NATS.Stream == "" || f.NATS.Subject == "" {
			add("feeds.nats needs url, stream and subject (e.g. nats://127.0.0.1:4222, S3_EVENTS, s3.events)")
		}
	} else if f.NATS != (NATSFeedConfig{}) {
		add("feeds.nats has settings but nats is not among the feeds")
	}
	if on("kafka") {
		if len(f.Kafka.Brokers) == 0 || f.Kafka.Topic == "" {
			add("feeds.kafka needs brokers and topic (e.g. [127.0.0.1:9092], s3-events)")
		}
	} else if len(f.Kafka.Brokers) > 0 || f.Kafka.Topic != "" || f.Kafka.Group != "" {
		add("feeds.kafka has settings but kafka is not among the feeds")
	}
}

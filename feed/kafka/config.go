package kafka

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"unicode"
)

// Defaults of Config.
const (
	DefaultGroup      = "freshen"
	DefaultMaxRecords = 500
)

// Kafka's limits on names.
const (
	maxTopicLen = 249
	maxGroupLen = 255
	// MaxRecordsLimit bounds Config.MaxRecords: one Put holds the changes
	// of that many records, and the group cannot rebalance while it runs.
	MaxRecordsLimit = 10000
)

// Config configures the feed.
type Config struct {
	// Brokers are seed brokers, host:port (the port defaults to 9092);
	// the client discovers the rest of the cluster from them.
	Brokers []string
	// Topic the events are produced to (versitygw's --event-kafka-topic).
	// It must exist (or the brokers must create topics on first use); the
	// feed never creates it.
	Topic string
	// Group is the consumer group; processes sharing it split the
	// topic's partitions. Default "freshen".
	Group string
	// MaxRecords bounds the records handled (and Put) together. Default
	// 500.
	MaxRecords int
}

// withDefaults fills the zero fields.
func (c Config) withDefaults() Config {
	if c.Group == "" {
		c.Group = DefaultGroup
	}
	if c.MaxRecords == 0 {
		c.MaxRecords = DefaultMaxRecords
	}
	return c
}

// Validate checks the configuration without connecting; zero Group and
// MaxRecords are valid (their defaults apply).
func (c Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("kafka: brokers is empty: want host:port of one or more brokers (e.g. 127.0.0.1:9092)"))
	}
	for _, b := range c.Brokers {
		if err := validateBroker(b); err != nil {
			errs = append(errs, err)
		}
	}
	if err := validateTopic(c.Topic); err != nil {
		errs = append(errs, err)
	}
	if c.Group != "" {
		if err := validateGroup(c.Group); err != nil {
			errs = append(errs, err)
		}
	}
	if c.MaxRecords < 0 || c.MaxRecords > MaxRecordsLimit {
		errs = append(errs, fmt.Errorf("kafka: max-records %d: must be 1-%d (default %d)", c.MaxRecords, MaxRecordsLimit, DefaultMaxRecords))
	}
	return errors.Join(errs...)
}

// validateBroker accepts host or host:port (IPv6 in brackets), as
// franz-go does, and refuses URLs, which it would not.
func validateBroker(b string) error {
	switch {
	case strings.TrimSpace(b) == "":
		return errors.New("kafka: broker is empty: want host:port")
	case strings.Contains(b, "://"):
		return fmt.Errorf("kafka: broker %q: want host:port, not a URL", b)
	case strings.IndexFunc(b, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return fmt.Errorf("kafka: broker %q: must not contain spaces", b)
	case strings.ContainsAny(b, "/?#@,"):
		return fmt.Errorf("kafka: broker %q: want host:port (list brokers separately)", b)
	}
	host, port, err := net.SplitHostPort(b)
	if err != nil {
		// No port: franz-go adds 9092. A bare IPv6 address is ambiguous.
		if strings.Count(b, ":") > 0 && !strings.HasPrefix(b, "[") {
			return fmt.Errorf("kafka: broker %q: want host:port ([addr]:port for IPv6)", b)
		}
		return nil
	}
	if host == "" {
		return fmt.Errorf("kafka: broker %q: no host", b)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("kafka: broker %q: port %q is not 1-65535", b, port)
	}
	return nil
}

// validateTopic applies Kafka's rules: 1-249 of [a-zA-Z0-9._-], not "."
// or "..".
func validateTopic(t string) error {
	switch {
	case t == "":
		return errors.New("kafka: topic is empty (versitygw's --event-kafka-topic, e.g. s3-events)")
	case len(t) > maxTopicLen:
		return fmt.Errorf("kafka: topic is %d bytes: at most %d", len(t), maxTopicLen)
	case t == "." || t == "..":
		return fmt.Errorf("kafka: topic %q is not allowed", t)
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("kafka: topic %q: only ASCII letters, digits, '.', '_' and '-' are allowed", t)
		}
	}
	return nil
}

// validateGroup refuses what Kafka would accept but no operator means:
// whitespace at the ends, control characters, absurd lengths.
func validateGroup(g string) error {
	switch {
	case len(g) > maxGroupLen:
		return fmt.Errorf("kafka: group is %d bytes: at most %d", len(g), maxGroupLen)
	case strings.TrimSpace(g) != g:
		return fmt.Errorf("kafka: group %q: leading or trailing whitespace", g)
	case strings.IndexFunc(g, unicode.IsControl) >= 0:
		return fmt.Errorf("kafka: group %q: must not contain control characters", g)
	}
	return nil
}

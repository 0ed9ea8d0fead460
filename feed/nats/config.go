package nats

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Defaults of Config.
const (
	DefaultDurable     = "freshen"
	DefaultMaxInFlight = 256
	DefaultAckWait     = 30 * time.Second
	// StreamMaxAge is how long a stream the feed creates keeps events.
	StreamMaxAge = 7 * 24 * time.Hour
)

// maxNameLen is JetStream's limit on stream and consumer names.
const maxNameLen = 255

// Config configures the feed.
type Config struct {
	// URL is one server or a comma-separated list of servers of one
	// cluster: nats://host:port or tls://host:port (user:password@ may
	// precede the host).
	URL string
	// Stream is the JetStream stream holding the events; it is created
	// (capturing Subject) if it does not exist.
	Stream string
	// Subject the events are published on (versitygw's
	// --event-nats-topic); wildcards are allowed.
	Subject string
	// Durable names the consumer; processes sharing it share the work.
	// Default "freshen".
	Durable string
	// MaxInFlight bounds the messages delivered and not yet acked (the
	// consumer's MaxAckPending, shared by all processes on the durable)
	// and the size of a fetch. Default 256.
	MaxInFlight int
	// AckWait is how long the server waits for an ack before it delivers
	// a message again. Default 30s.
	AckWait time.Duration
}

// withDefaults fills the zero fields.
func (c Config) withDefaults() Config {
	if c.Durable == "" {
		c.Durable = DefaultDurable
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.AckWait == 0 {
		c.AckWait = DefaultAckWait
	}
	return c
}

// Validate checks the configuration without connecting; zero Durable,
// MaxInFlight and AckWait are valid (their defaults apply).
func (c Config) Validate() error {
	var errs []error
	if err := validateURL(c.URL); err != nil {
		errs = append(errs, err)
	}
	if err := validateName("stream", c.Stream); err != nil {
		errs = append(errs, err)
	}
	if err := validateSubject(c.Subject); err != nil {
		errs = append(errs, err)
	}
	if c.Durable != "" {
		if err := validateName("durable", c.Durable); err != nil {
			errs = append(errs, err)
		}
	}
	if c.MaxInFlight < 0 {
		errs = append(errs, fmt.Errorf("nats: max-in-flight %d: must be positive (default %d)", c.MaxInFlight, DefaultMaxInFlight))
	}
	if c.AckWait != 0 && c.AckWait < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("nats: ack-wait %s: must be at least 100ms (default %s)", c.AckWait, DefaultAckWait))
	}
	return errors.Join(errs...)
}

func validateURL(list string) error {
	if strings.TrimSpace(list) == "" {
		return errors.New("nats: url is empty: want nats://host:4222 (or tls://host:port, comma-separated for a cluster)")
	}
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if !strings.Contains(s, "://") {
			return fmt.Errorf("nats: url %q: scheme must be nats:// or tls:// (e.g. nats://host:4222)", redact(s))
		}
		u, err := url.Parse(s)
		if err != nil {
			return fmt.Errorf("nats: url %q: %v", redact(s), errors.Unwrap(err))
		}
		switch {
		case u.Scheme != "nats" && u.Scheme != "tls":
			return fmt.Errorf("nats: url %q: scheme must be nats:// or tls:// (e.g. nats://host:4222)", redact(s))
		case u.Hostname() == "":
			return fmt.Errorf("nats: url %q: no host (want nats://host:port)", redact(s))
		case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "":
			return fmt.Errorf("nats: url %q: only scheme://host:port is allowed, no path or query", redact(s))
		}
		if p := u.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				return fmt.Errorf("nats: url %q: port %q is not 1-65535", redact(s), p)
			}
		}
	}
	return nil
}

// validateName applies JetStream's rules for stream and consumer names
// (they become file names on the server).
func validateName(what, name string) error {
	if name == "" {
		return fmt.Errorf("nats: %s name is empty", what)
	}
	if len(name) > maxNameLen {
		return fmt.Errorf("nats: %s name is %d bytes: at most %d", what, len(name), maxNameLen)
	}
	for _, r := range name {
		if unicode.IsSpace(r) || unicode.IsControl(r) || strings.ContainsRune(".*>/\\", r) {
			return fmt.Errorf("nats: %s name %q: must not contain whitespace, control characters, '.', '*', '>', '/' or '\\'", what, name)
		}
	}
	return nil
}

// validateSubject checks a NATS subject: dot-separated non-empty tokens,
// '*' and '>' only as whole tokens, '>' only last.
func validateSubject(s string) error {
	if s == "" {
		return errors.New("nats: subject is empty (versitygw's --event-nats-topic, e.g. s3.events)")
	}
	if strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return fmt.Errorf("nats: subject %q: must not contain spaces or control characters", s)
	}
	toks := strings.Split(s, ".")
	for i, tok := range toks {
		switch {
		case tok == "":
			return fmt.Errorf("nats: subject %q: empty token (leading, trailing or double '.')", s)
		case tok == ">" && i != len(toks)-1:
			return fmt.Errorf("nats: subject %q: '>' must be the last token", s)
		case tok != "*" && tok != ">" && strings.ContainsAny(tok, "*>"):
			return fmt.Errorf("nats: subject %q: '*' and '>' must be whole tokens", s)
		}
	}
	return nil
}

// redact hides the password of URLs with user:password@ for logs and
// errors.
func redact(s string) string {
	var out []string
	for _, one := range strings.Split(s, ",") {
		one = strings.TrimSpace(one)
		if u, err := url.Parse(one); err == nil && u.User != nil {
			if _, ok := u.User.Password(); !ok {
				u.User = url.User("xxxxx") // nats://TOKEN@host
			}
			out = append(out, u.Redacted())
			continue
		}
		out = append(out, one)
	}
	return strings.Join(out, ",")
}

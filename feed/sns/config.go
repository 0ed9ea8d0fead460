package sns

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// ErrUntrusted wraps every error that rejects a message or URL as not
// provably from SNS: a bad or unsupported signature, a URL that is not
// https or whose host is not allowed. The webhook answers 403; SNS never
// retries its way past it, and neither should the caller.
var ErrUntrusted = errors.New("untrusted SNS message")

// untrustedError reads as its own message yet matches ErrUntrusted, so that
// errors say what failed without a generic prefix in the middle.
type untrustedError struct{ msg string }

func (e *untrustedError) Error() string        { return e.msg }
func (e *untrustedError) Is(target error) bool { return target == ErrUntrusted }

func untrusted(format string, args ...any) error {
	return &untrustedError{fmt.Sprintf(format, args...)}
}

// defaultAllowedHosts are the hosts SNS serves signing certificates and
// subscription URLs from: sns.<region>.amazonaws.com (commercial and
// GovCloud partitions) and sns.<region>.amazonaws.com.cn (China).
var defaultAllowedHosts = []string{"sns.*.amazonaws.com", "sns.*.amazonaws.com.cn"}

// Config configures a Handler. The zero value is usable: it does not
// verify signatures before confirming, trusts only the AWS SNS hosts and
// uses a fresh http.Client.
type Config struct {
	// Verify makes Confirm check a confirmation's signature before it
	// fetches the SubscribeURL. It is also the webhook's cue to call
	// Handler.Verify on notifications; Handler.Verify itself always
	// verifies. Turn it on whenever the sender is real SNS: without it,
	// anyone who can reach the webhook can post fake notifications.
	Verify bool
	// AllowedHosts are host patterns that both SigningCertURL and
	// SubscribeURL (and any redirect from them) must match. A pattern is a
	// DNS name in which "*" stands for exactly one whole label, or an IP
	// literal. Patterns match the host name only, case-insensitively: a
	// pattern may not include a port, and any port of a matching host is
	// accepted (the scheme must still be https). Empty means
	// "sns.*.amazonaws.com" and "sns.*.amazonaws.com.cn".
	AllowedHosts []string
	// Client fetches certificates and subscription URLs; nil means a new
	// http.Client. Its CheckRedirect is wrapped so that redirects obey
	// AllowedHosts too. Every request also gets a 10 s timeout.
	Client *http.Client
}

// Validate reports the first malformed pattern in AllowedHosts. It does no
// I/O. New does not call it: an invalid pattern given to New matches
// nothing, so a mistake fails closed.
func (c Config) Validate() error {
	for _, p := range c.AllowedHosts {
		if err := validPattern(p); err != nil {
			return fmt.Errorf("sns: config: allowed host %q: %w", p, err)
		}
	}
	return nil
}

func validPattern(p string) error {
	switch {
	case p == "":
		return errors.New("is empty")
	case strings.Contains(p, "/"):
		return errors.New("must be a host name, not a URL")
	case strings.ContainsAny(p, "[]"):
		return errors.New("write an IPv6 address without brackets")
	case net.ParseIP(p) != nil:
		return nil
	}
	if _, _, err := net.SplitHostPort(p); err == nil {
		return errors.New("must not include a port (patterns match any port)")
	}
	labels := strings.Split(strings.ToLower(p), ".")
	for i, l := range labels {
		if l == "*" {
			// "*.com" or "example.*" would trust most of the Internet.
			if i >= len(labels)-2 {
				return errors.New(`"*" may not be one of the last two labels`)
			}
			continue
		}
		if !isLabel(l) {
			return fmt.Errorf("label %q is not a DNS label or \"*\"", l)
		}
	}
	return nil
}

// isLabel reports whether l is a non-empty run of letters, digits and
// hyphens (lower case).
func isLabel(l string) bool {
	if l == "" {
		return false
	}
	for _, r := range l {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return false
		}
	}
	return true
}

// normalizeHost lower-cases h and drops the root dot of a fully qualified
// name, so "SNS.us-east-1.amazonaws.com." is the host it names.
func normalizeHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// matchHost reports whether host (as url.URL.Hostname returns it) matches
// pattern. A "*" label matches exactly one non-empty DNS label, so
// "sns.*.amazonaws.com" matches "sns.us-east-1.amazonaws.com" but not
// "sns.amazonaws.com.evil.com" nor "sns.a.b.amazonaws.com".
func matchHost(pattern, host string) bool {
	if validPattern(pattern) != nil {
		return false
	}
	pattern, host = normalizeHost(pattern), normalizeHost(host)
	if pip := net.ParseIP(pattern); pip != nil {
		hip := net.ParseIP(host)
		return hip != nil && hip.Equal(pip)
	}
	pl, hl := strings.Split(pattern, "."), strings.Split(host, ".")
	if len(pl) != len(hl) {
		return false
	}
	for i := range pl {
		if !isLabel(hl[i]) || (pl[i] != "*" && pl[i] != hl[i]) {
			return false
		}
	}
	return true
}

// checkURL parses raw and requires https and an allowed host; what names
// the URL in errors ("certificate", "SubscribeURL"). Every rejection wraps
// ErrUntrusted.
func (h *Handler) checkURL(what, raw string) (*url.URL, error) {
	if raw == "" {
		return nil, untrusted("no %s URL", what)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, untrusted("%s URL is not a URL: %v", what, err)
	}
	return u, h.allowed(what, u)
}

func (h *Handler) allowed(what string, u *url.URL) error {
	if u.Scheme != "https" {
		return untrusted("%s URL %s is not https", what, redact(u))
	}
	host := u.Hostname()
	for _, p := range h.hosts {
		if matchHost(p, host) {
			return nil
		}
	}
	return untrusted("%s host %q is not allowed (allowed: %s)", what, host, strings.Join(h.hosts, ", "))
}

// redact drops the query and user info of u for error messages: a
// SubscribeURL's query holds the subscription token.
func redact(u *url.URL) string {
	r := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
	return r.String()
}

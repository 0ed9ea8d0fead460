package sns

import (
	"net/url"
	"strings"
	"testing"
)

func TestMatchHost(t *testing.T) {
	const aws, cn = "sns.*.amazonaws.com", "sns.*.amazonaws.com.cn"
	for _, c := range []struct {
		pattern, host string
		want          bool
	}{
		{aws, "sns.us-east-1.amazonaws.com", true},
		{aws, "sns.us-gov-west-1.amazonaws.com", true},
		{aws, "SNS.EU-West-1.AmazonAWS.com", true},
		{aws, "sns.us-east-1.amazonaws.com.", true},
		{aws, "sns.amazonaws.com.evil.com", false},
		{aws, "evilsns.us-east-1.amazonaws.com", false},
		{aws, "sns.us-east-1.amazonaws.com.evil.com", false},
		{aws, "sns.amazonaws.com", false},
		{aws, "sns..amazonaws.com", false},
		{aws, "sns.a.b.amazonaws.com", false},
		{aws, "sns.us-east-1.amazonaws.com.cn", false},
		{aws, "sns.us_east.amazonaws.com", false},
		{cn, "sns.cn-north-1.amazonaws.com.cn", true},
		{cn, "sns.cn-north-1.amazonaws.com", false},
		{"127.0.0.1", "127.0.0.1", true},
		{"127.0.0.1", "127.0.0.2", false},
		{"::1", "::1", true},
		{"::1", "0:0:0:0:0:0:0:1", true},
		{"localhost", "localhost", true},
		{"localhost", "localhost.evil.com", false},
		// Invalid patterns match nothing.
		{"*.com", "evil.com", false},
		{"127.0.0.1:443", "127.0.0.1", false},
		{"", "", false},
	} {
		if got := matchHost(c.pattern, c.host); got != c.want {
			t.Errorf("matchHost(%q, %q) = %v; want %v", c.pattern, c.host, got, c.want)
		}
	}
}

// The defaults accept SNS's own URLs and nothing like them.
func TestDefaultHosts(t *testing.T) {
	h := New(Config{})
	for raw, want := range map[string]bool{
		"https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000.pem": true,
		"https://sns.us-east-1.amazonaws.com:443/x.pem":                          true,
		"https://sns.cn-northwest-1.amazonaws.com.cn/x.pem":                      true,
		"http://sns.us-east-1.amazonaws.com/x.pem":                               false,
		"https://sns.amazonaws.com.evil.com/x.pem":                               false,
		"https://evilsns.us-east-1.amazonaws.com/x.pem":                          false,
		"https://sns.us-east-1.amazonaws.com@evil.com/x.pem":                     false,
		"https://s3.us-east-1.amazonaws.com/x.pem":                               false,
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if got := h.allowed("certificate", u) == nil; got != want {
			t.Errorf("%s: allowed = %v; want %v", raw, got, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, ok := range [][]string{
		nil,
		{"sns.*.amazonaws.com", "sns.*.amazonaws.com.cn"},
		{"127.0.0.1", "::1", "localhost", "sns.example.internal", "SNS.*.Example.com"},
	} {
		if err := (Config{AllowedHosts: ok}).Validate(); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for pattern, want := range map[string]string{
		"":                          "is empty",
		"https://sns.amazonaws.com": "not a URL",
		"127.0.0.1:8443":            "must not include a port",
		"[::1]":                     "without brackets",
		"*.com":                     `"*" may not be one of the last two labels`,
		"sns.*":                     `"*" may not be one of the last two labels`,
		"*":                         `"*" may not be one of the last two labels`,
		"sns.us-*.amazonaws.com":    `label "us-*" is not a DNS label`,
		"sns..amazonaws.com":        `label "" is not a DNS label`,
	} {
		err := (Config{AllowedHosts: []string{pattern}}).Validate()
		if err == nil || !strings.HasPrefix(err.Error(), "sns: config: allowed host ") || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v; want an error containing %q", pattern, err, want)
		}
	}
}

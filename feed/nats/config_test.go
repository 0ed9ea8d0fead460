package nats

import (
	"strings"
	"testing"
	"time"

	"github.com/freshen-io/freshen/feed/feedtest"
)

func TestValidate(t *testing.T) {
	ok := Config{URL: "nats://127.0.0.1:4222", Stream: "S3", Subject: "s3.events"}
	feedtest.CheckValidate(t, ok, []struct {
		Edit func(*Config)
		Want string // "" means valid
	}{
		{func(*Config) {}, ""},
		{func(c *Config) { c.URL = "tls://a.example:4222, nats://user:pw@b.example:4222,nats://c.example" }, ""},
		{func(c *Config) { c.Subject = "s3.*.events.>" }, ""},
		{func(c *Config) { c.Durable, c.MaxInFlight, c.AckWait = "freshen-prod_1", 10, time.Second }, ""},
		{func(c *Config) { c.URL = "" }, "url is empty"},
		{func(c *Config) { c.URL = "127.0.0.1:4222" }, "nats:// or tls://"},
		{func(c *Config) { c.URL = "http://host:4222" }, "nats:// or tls://"},
		{func(c *Config) { c.URL = "nats://" }, "no host"},
		{func(c *Config) { c.URL = "nats://host:99999" }, "port"},
		{func(c *Config) { c.URL = "nats://host:4222/path" }, "no path"},
		{func(c *Config) { c.URL = "nats://a:1,ws://b:2" }, "nats:// or tls://"},
		{func(c *Config) { c.Stream = "" }, "stream name is empty"},
		{func(c *Config) { c.Stream = "s3.events" }, "'.'"},
		{func(c *Config) { c.Stream = "my stream" }, "whitespace"},
		{func(c *Config) { c.Stream = strings.Repeat("s", 256) }, "at most 255"},
		{func(c *Config) { c.Durable = "a/b" }, "durable name"},
		{func(c *Config) { c.Subject = "" }, "subject is empty"},
		{func(c *Config) { c.Subject = "s3 events" }, "spaces"},
		{func(c *Config) { c.Subject = "s3..events" }, "empty token"},
		{func(c *Config) { c.Subject = "s3.events." }, "empty token"},
		{func(c *Config) { c.Subject = "s3.>.x" }, "last token"},
		{func(c *Config) { c.Subject = "s3.ev*" }, "whole tokens"},
		{func(c *Config) { c.MaxInFlight = -1 }, "max-in-flight"},
		{func(c *Config) { c.AckWait = time.Millisecond }, "ack-wait"},
	})
}

func TestNewDefaultsAndRedaction(t *testing.T) {
	f, err := New(Config{URL: "nats://u:secret@h:1,nats://tok3n@h:2", Stream: "S", Subject: "s"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.cfg.Durable != "freshen" || f.cfg.MaxInFlight != 256 || f.cfg.AckWait != 30*time.Second || f.Name() != "nats" {
		t.Fatalf("defaults: %+v, name %q", f.cfg, f.Name())
	}
	if r := redact(f.cfg.URL); strings.Contains(r, "secret") || strings.Contains(r, "tok3n") {
		t.Fatalf("redact = %q", r)
	}
	if _, err := New(Config{URL: "nats://u:secret@h:99999", Stream: "S", Subject: "s"}, nil); err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("New error %v: want an error without the password", err)
	}
}

func TestSubjectWithin(t *testing.T) {
	for _, tc := range []struct {
		sub, pattern string
		want         bool
	}{
		{"s3.events", "s3.events", true},
		{"s3.events", "s3.>", true},
		{"s3.events.x", "s3.>", true},
		{"s3", "s3.>", false},
		{"s3.events", "s3.*", true},
		{"s3.*", "s3.*", true},
		{"s3.*", "s3.>", true},
		{"s3.>", "s3.*", false},
		{"s3.>", "s3.>", true},
		{"s3.>", ">", true},
		{"s3.events", "s3.other", false},
		{"s3.events.x", "s3.*", false},
		{"elsewhere", "s3.>", false},
		{"s3.events", "*.events", true},
	} {
		if got := subjectWithin(tc.sub, tc.pattern); got != tc.want {
			t.Errorf("subjectWithin(%q, %q) = %v", tc.sub, tc.pattern, got)
		}
	}
}

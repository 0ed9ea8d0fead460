package kafka

import (
	"strings"
	"testing"

	"github.com/freshen-io/freshen/feed/feedtest"
)

func TestValidate(t *testing.T) {
	ok := Config{Brokers: []string{"127.0.0.1:9092"}, Topic: "s3-events"}
	feedtest.CheckValidate(t, ok, []struct {
		Edit func(*Config)
		Want string // "" means valid
	}{
		{func(*Config) {}, ""},
		{func(c *Config) { c.Brokers = []string{"kafka-1.example:9092", "kafka-2.example", "[::1]:9093"} }, ""},
		{func(c *Config) { c.Topic = "s3.events_v2-prod" }, ""},
		{func(c *Config) { c.Group, c.MaxRecords = "freshen prod/1", 10 }, ""},
		{func(c *Config) { c.Brokers = nil }, "brokers is empty"},
		{func(c *Config) { c.Brokers = []string{""} }, "broker is empty"},
		{func(c *Config) { c.Brokers = []string{"kafka://host:9092"} }, "not a URL"},
		{func(c *Config) { c.Brokers = []string{"a:9092,b:9092"} }, "list brokers separately"},
		{func(c *Config) { c.Brokers = []string{"host:99999"} }, "port"},
		{func(c *Config) { c.Brokers = []string{"host:"} }, "port"},
		{func(c *Config) { c.Brokers = []string{":9092"} }, "no host"},
		{func(c *Config) { c.Brokers = []string{"::1"} }, "IPv6"},
		{func(c *Config) { c.Brokers = []string{"my host:9092"} }, "spaces"},
		{func(c *Config) { c.Topic = "" }, "topic is empty"},
		{func(c *Config) { c.Topic = "s3 events" }, "only ASCII"},
		{func(c *Config) { c.Topic = "s3/events" }, "only ASCII"},
		{func(c *Config) { c.Topic = ".." }, "not allowed"},
		{func(c *Config) { c.Topic = strings.Repeat("t", 250) }, "at most 249"},
		{func(c *Config) { c.Group = " freshen" }, "whitespace"},
		{func(c *Config) { c.Group = "a\x00b" }, "control"},
		{func(c *Config) { c.Group = strings.Repeat("g", 256) }, "at most 255"},
		{func(c *Config) { c.MaxRecords = -1 }, "max-records"},
		{func(c *Config) { c.MaxRecords = MaxRecordsLimit + 1 }, "max-records"},
	})
}

func TestNewDefaults(t *testing.T) {
	f, err := New(Config{Brokers: []string{"h:9092"}, Topic: "t"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.cfg.Group != "freshen" || f.cfg.MaxRecords != 500 || f.Name() != "kafka" {
		t.Fatalf("defaults: %+v, name %q", f.cfg, f.Name())
	}
	if _, err := New(Config{Topic: "t"}, nil); err == nil {
		t.Fatal("New accepted a config without brokers")
	}
}

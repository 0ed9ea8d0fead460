// Package testenv starts the real servers that integration tests need
// (versitygw, an S3-compatible store with event notifications) on
// loopback, and stops them when the test ends or its process dies.
//
// A missing server binary fails the test with instructions; it never
// skips, so CI cannot pass by testing nothing.
package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	s3source "github.com/freshen-io/freshen/source/s3"
)

// Credentials of the root user of every test store.
const (
	AccessKey = "freshen-test"
	SecretKey = "freshen-test-secret"
)

// FindBinary finds an installed server binary: $FRESHEN_CACHE/bin, then
// ~/.cache/freshen/bin (where the project's scripts install it), then PATH.
func FindBinary(name string) (string, error) {
	var dirs []string
	if c := os.Getenv("FRESHEN_CACHE"); c != "" {
		dirs = append(dirs, filepath.Join(c, "bin"))
	}
	if h, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(h, ".cache", "freshen", "bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s is not installed: run ./scripts/test.sh (it installs it into ~/.cache/freshen/bin)", name)
}

// Binary is FindBinary for tests: a missing binary fails the test.
func Binary(t testing.TB, name string) string {
	t.Helper()
	p, err := FindBinary(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// freePort is FreePort for code that reports errors.
func freePort() (int, error) {
	ports, err := freePorts("port")
	return ports["port"], err
}

// VersityGW is a running versitygw with a POSIX backend.
type VersityGW struct {
	Endpoint string
	Root     string
	cmd      *exec.Cmd
}

// GWOptions configure StartVersityGW.
type GWOptions struct {
	// WebhookURL receives S3 event notifications; it must be listening
	// before the gateway starts (versitygw sends a test event and exits
	// if nobody answers).
	WebhookURL string
	// Dir holds the backend; a fresh temporary directory by default.
	// Reusing it across restarts keeps the objects.
	Dir string
	// Port to listen on; a free one by default.
	Port int
	// NATSURL and NATSTopic publish the events to a NATS server instead
	// (a JetStream stream on the subject captures them); KafkaURL,
	// KafkaTopic and KafkaKey to a Kafka broker.
	NATSURL, NATSTopic             string
	KafkaURL, KafkaTopic, KafkaKey string
}

// StartVersityGW starts versitygw on loopback and waits until it answers.
func StartVersityGW(t testing.TB, o GWOptions) *VersityGW {
	t.Helper()
	bin := Binary(t, "versitygw")
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	if o.Port == 0 {
		o.Port = FreePort(t)
	}
	root, ver := filepath.Join(o.Dir, "root"), filepath.Join(o.Dir, "ver")
	for _, d := range []string{root, ver} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	addr := "127.0.0.1:" + strconv.Itoa(o.Port)
	args := []string{"--port", addr, "--access", AccessKey, "--secret", SecretKey, "--quiet"}
	if o.WebhookURL != "" {
		args = append(args, "--event-webhook-url", o.WebhookURL)
	}
	if o.NATSURL != "" {
		args = append(args, "--event-nats-url", o.NATSURL, "--event-nats-topic", o.NATSTopic)
	}
	if o.KafkaURL != "" {
		args = append(args, "--event-kafka-url", o.KafkaURL, "--event-kafka-topic", o.KafkaTopic)
		if o.KafkaKey != "" {
			args = append(args, "--event-kafka-key", o.KafkaKey)
		}
	}
	args = append(args, "posix", "--versioning-dir", ver, root)
	cmd := exec.Command(bin, args...)
	logf, err := os.Create(filepath.Join(o.Dir, "versitygw.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	// The gateway dies with the test process, even on a crash.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start versitygw: %v", err)
	}
	g := &VersityGW{Endpoint: "http://" + addr, Root: root, cmd: cmd}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logf.Close() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case err := <-exited:
			log, _ := os.ReadFile(filepath.Join(o.Dir, "versitygw.log"))
			t.Fatalf("versitygw exited at start (%v):\n%s", err, log)
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return g
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw did not listen on %s within 20s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills the gateway (like a crash: no graceful shutdown).
func (g *VersityGW) Stop() { g.cmd.Process.Kill() }

// Source returns a freshen S3 source for bucket on this gateway.
func (g *VersityGW) Source(t testing.TB, bucket string) *s3source.Source {
	t.Helper()
	src, err := s3source.New(context.Background(), g.Config(bucket), StaticCredentials())
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// Config is the source configuration for bucket on this gateway.
func (g *VersityGW) Config(bucket string) s3source.Config {
	return s3source.Config{Bucket: bucket, Endpoint: g.Endpoint, Region: "us-east-1", PathStyle: true}
}

// Env is the environment a freshen process needs to reach this gateway.
func (g *VersityGW) Env() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + AccessKey, "AWS_SECRET_ACCESS_KEY=" + SecretKey, "AWS_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true"}
}

// StaticCredentials makes the SDK use the test root user.
func StaticCredentials() func(*awsconfig.LoadOptions) error {
	return awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, ""))
}

// CreateBucket creates bucket and returns a client for it.
func (g *VersityGW) CreateBucket(t testing.TB, bucket string) *s3.Client {
	t.Helper()
	c := g.Source(t, bucket).Client()
	if _, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("create bucket %s: %v", bucket, err)
	}
	return c
}

// Put uploads body to bucket/key.
func Put(t testing.TB, c *s3.Client, bucket, key, contentType string, body []byte) {
	t.Helper()
	in := &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytesReader(body)}
	if contentType != "" {
		in.ContentType = aws.String(contentType)
	}
	if _, err := c.PutObject(context.Background(), in); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

// Delete removes bucket/key.
func Delete(t testing.TB, c *s3.Client, bucket, key string) {
	t.Helper()
	if _, err := c.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
		t.Fatalf("delete %s: %v", key, err)
	}
}

// Copy copies bucket/src to bucket/dst, optionally replacing metadata.
func Copy(t testing.TB, c *s3.Client, bucket, src, dst string, metadata map[string]string) {
	t.Helper()
	in := &s3.CopyObjectInput{Bucket: aws.String(bucket), Key: aws.String(dst), CopySource: aws.String(copySource(bucket, src))}
	if metadata != nil {
		in.Metadata = metadata
		in.MetadataDirective = "REPLACE"
	}
	if _, err := c.CopyObject(context.Background(), in); err != nil {
		t.Fatalf("copy %s -> %s: %v", src, dst, err)
	}
}

func copySource(bucket, key string) string {
	return bucket + "/" + escapePath(key)
}

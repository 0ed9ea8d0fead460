package s3_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/internal/testenv"
	s3source "github.com/freshen-io/freshen/source/s3"
	"github.com/freshen-io/freshen/source/sourcetest"
)

// bucket writes to a bucket with a plain SDK client, as any other writer
// of the store would.
type bucket struct {
	client *s3.Client
	name   string
}

func (b bucket) Put(ctx context.Context, key, contentType string, body []byte) error {
	in := &s3.PutObjectInput{Bucket: aws.String(b.name), Key: aws.String(key), Body: bytes.NewReader(body)}
	if contentType != "" {
		in.ContentType = aws.String(contentType)
	}
	_, err := b.client.PutObject(ctx, in)
	return err
}

func (b bucket) Delete(ctx context.Context, key string) error {
	_, err := b.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(b.name), Key: aws.String(key)})
	return err
}

// newBucket creates a fresh bucket on the store at endpoint and returns a
// Source over it; every subtest of the suite gets its own.
func newBucket(t *testing.T, endpoint string, n *atomic.Int64) (freshen.Source, sourcetest.Bucket) {
	t.Helper()
	name := fmt.Sprintf("conformance-%d", n.Add(1))
	cfg := s3source.Config{Bucket: name, Endpoint: endpoint, Region: "us-east-1", PathStyle: true}
	src, err := s3source.New(context.Background(), cfg, testenv.StaticCredentials())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
	return src, bucket{client: src.Client(), name: name}
}

// TestConformanceGoFakeS3 runs the suite against gofakes3 in process: fast,
// no binary needed. gofakes3 ignores If-Match on GET; the source's own
// ETag check on the response is what turns a stale read into
// ErrPreconditionFailed there.
func TestConformanceGoFakeS3(t *testing.T) {
	srv := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	t.Cleanup(srv.Close)
	var n atomic.Int64
	sourcetest.Run(t, func(t *testing.T) (freshen.Source, sourcetest.Bucket) {
		return newBucket(t, srv.URL, &n)
	})
}

// TestConformanceVersityGW runs the suite against a real S3-compatible
// server. Like every integration test it fails, never skips, when
// versitygw is not installed (./scripts/test.sh installs it).
func TestConformanceVersityGW(t *testing.T) {
	gw := testenv.StartVersityGW(t, testenv.GWOptions{})
	var n atomic.Int64
	sourcetest.Run(t, func(t *testing.T) (freshen.Source, sourcetest.Bucket) {
		return newBucket(t, gw.Endpoint, &n)
	})
}

// TestOpenChecksETagWhenStoreIgnoresIfMatch covers the path the suite
// cannot reach on gofakes3 (which pins by version ID): an unversioned
// object on a store that ignores If-Match, as gofakes3 does, must still
// fail with ErrPreconditionFailed instead of handing back the new bytes.
func TestOpenChecksETagWhenStoreIgnoresIfMatch(t *testing.T) {
	ctx := context.Background()
	srv := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	t.Cleanup(srv.Close)
	var n atomic.Int64
	src, b := newBucket(t, srv.URL, &n)
	if err := b.Put(ctx, "k.txt", "text/plain", []byte("one")); err != nil {
		t.Fatal(err)
	}
	old, err := src.Stat(ctx, "k.txt")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, "k.txt", "text/plain", []byte("two")); err != nil {
		t.Fatal(err)
	}
	old.VersionID = ""
	if r, err := src.Open(ctx, old); !errors.Is(err, freshen.ErrPreconditionFailed) {
		if r != nil {
			r.Close()
		}
		t.Fatalf("Open(stale ETag) = %v, want an error wrapping ErrPreconditionFailed", err)
	}
}

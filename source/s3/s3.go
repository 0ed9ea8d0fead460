// Package s3 reads objects from AWS S3 or any S3-compatible store
// (MinIO, Ceph RGW, R2, GCS's S3 API, versitygw) with aws-sdk-go-v2.
//
// It never writes to the bucket. Not-found and precondition failures are
// translated into freshen.ErrNotFound and freshen.ErrPreconditionFailed at
// this boundary so nothing above it sees SDK error types.
package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/internal/awsconf"
)

// Config says which bucket to read and how to reach it. Credentials are
// not part of it: they come from the standard AWS chain (environment,
// shared config and credentials files, SSO, IMDS...).
type Config struct {
	Bucket string `yaml:"bucket" json:"bucket"`
	// Endpoint is the store's URL for S3-compatible stores; empty for AWS.
	Endpoint string `yaml:"endpoint" json:"endpoint,omitempty"`
	// Region defaults to the AWS chain's region, else us-east-1.
	Region string `yaml:"region" json:"region,omitempty"`
	// PathStyle addresses buckets as endpoint/bucket instead of
	// bucket.endpoint; most self-hosted stores need it.
	PathStyle bool `yaml:"path-style" json:"path_style,omitempty"`
}

// Validate checks the configuration without network access.
func (c Config) Validate() error {
	if c.Bucket == "" {
		return errors.New("source.bucket is required")
	}
	if strings.ContainsAny(c.Bucket, "/ ") {
		return fmt.Errorf("source.bucket %q: a bucket name has no slashes or spaces (put a key prefix in source.prefix)", c.Bucket)
	}
	if c.Endpoint != "" && !strings.HasPrefix(c.Endpoint, "http://") && !strings.HasPrefix(c.Endpoint, "https://") {
		return fmt.Errorf("source.endpoint %q must start with http:// or https://", c.Endpoint)
	}
	return nil
}

// Source implements freshen.Source for one bucket.
type Source struct {
	client *s3.Client
	bucket string
}

var _ freshen.Source = (*Source)(nil)

// New builds a Source. opts adjust the AWS configuration (tests use them
// for static credentials).
func New(ctx context.Context, cfg Config, opts ...func(*awsconfig.LoadOptions) error) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("s3: %w", err)
	}
	awsCfg, err := awsconf.Load(ctx, cfg.Region, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3: load AWS configuration: %w", err)
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
		// Stores other than AWS often reject or mangle the newer default
		// checksums; only compute them when an operation requires them.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	return &Source{client: client, bucket: cfg.Bucket}, nil
}

// Client exposes the SDK client (tests and tools upload with it).
func (s *Source) Client() *s3.Client { return s.client }

// Bucket returns the bucket name.
func (s *Source) Bucket() string { return s.bucket }

// List implements freshen.Source with ListObjectsV2, 1000 keys a page.
func (s *Source) List(ctx context.Context, prefix, startAfter string, fn func(freshen.ObjectInfo) error) error {
	in := &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket), MaxKeys: aws.Int32(1000)}
	if prefix != "" {
		in.Prefix = aws.String(prefix)
	}
	if startAfter != "" {
		in.StartAfter = aws.String(startAfter)
	}
	p := s3.NewListObjectsV2Paginator(s.client, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("s3: list %s/%s: %w", s.bucket, prefix, translate(err))
		}
		for _, o := range page.Contents {
			info := freshen.ObjectInfo{
				Bucket:       s.bucket,
				Key:          aws.ToString(o.Key),
				ETag:         trimETag(aws.ToString(o.ETag)),
				Size:         aws.ToInt64(o.Size),
				LastModified: aws.ToTime(o.LastModified).UTC(),
			}
			if err := fn(info); err != nil {
				return err
			}
		}
	}
	return nil
}

// Stat implements freshen.Source with HeadObject.
func (s *Source) Stat(ctx context.Context, key string) (freshen.ObjectInfo, error) {
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		err = translate(err)
		if status(err) == http.StatusBadRequest && s.unlisted(ctx, key) {
			// The store refuses the key itself (too long, climbing out of
			// the bucket): no such object can exist.
			err = fmt.Errorf("%w: the store rejects the key and does not list it: %v", freshen.ErrNotFound, err)
		}
		return freshen.ObjectInfo{}, fmt.Errorf("s3: head %s: %w", freshen.KeyForLog(key), err)
	}
	if aws.ToBool(out.DeleteMarker) {
		return freshen.ObjectInfo{}, fmt.Errorf("s3: head %s: delete marker: %w", key, freshen.ErrNotFound)
	}
	return freshen.ObjectInfo{
		Bucket:       s.bucket,
		Key:          key,
		ETag:         trimETag(aws.ToString(out.ETag)),
		VersionID:    versionID(out.VersionId),
		Size:         aws.ToInt64(out.ContentLength),
		LastModified: aws.ToTime(out.LastModified).UTC(),
		ContentType:  aws.ToString(out.ContentType),
		Metadata:     userMetadata(out.Metadata),
	}, nil
}

// userMetadata is S3's user metadata with names lower-cased (S3 keeps
// them case-insensitively; stores differ in what they return).
func userMetadata(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[strings.ToLower(k)] = v
	}
	return out
}

// Open implements freshen.Source with GetObject pinned to the version obj
// names: VersionId when known, and If-Match on the ETag.
func (s *Source) Open(ctx context.Context, obj freshen.ObjectInfo) (io.ReadCloser, error) {
	in := &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(obj.Key)}
	if obj.VersionID != "" {
		in.VersionId = aws.String(obj.VersionID)
	}
	if obj.ETag != "" {
		in.IfMatch = aws.String(`"` + obj.ETag + `"`)
	}
	out, err := s.client.GetObject(ctx, in)
	if err != nil {
		err = translate(err)
		// A pinned version that is missing (NoSuchVersion, or a version
		// expired by a lifecycle rule) does not mean the key is gone: if it
		// still exists, the object changed since obj was taken, and
		// reporting ErrNotFound would have the caller drop a live object.
		if obj.VersionID != "" && errors.Is(err, freshen.ErrNotFound) {
			switch _, herr := s.Stat(ctx, obj.Key); {
			case herr == nil:
				return nil, fmt.Errorf("s3: get %s: version %s: %w (%v)", obj.Key, obj.VersionID, freshen.ErrPreconditionFailed, err)
			case !errors.Is(herr, freshen.ErrNotFound):
				// Unsure whether the key is gone: an error that is not
				// ErrNotFound, so the caller retries instead of deleting.
				return nil, fmt.Errorf("s3: get %s: version %s missing (%v), then %w", obj.Key, obj.VersionID, err, herr)
			}
		}
		return nil, fmt.Errorf("s3: get %s: %w", obj.Key, err)
	}
	// A store that ignores If-Match could hand us another version.
	if got := trimETag(aws.ToString(out.ETag)); obj.ETag != "" && got != "" && got != obj.ETag {
		out.Body.Close()
		return nil, fmt.Errorf("s3: get %s: etag %s, want %s: %w", obj.Key, got, obj.ETag, freshen.ErrPreconditionFailed)
	}
	return out.Body, nil
}

func versionID(v *string) string {
	s := aws.ToString(v)
	if s == "null" { // unversioned objects in versioned buckets
		return ""
	}
	return s
}

func trimETag(s string) string { return strings.Trim(s, `"`) }

// translate maps SDK errors onto freshen's sentinels.
// unlisted reports whether a listing of the key's own prefix succeeds
// without it. A HEAD's 400 has no body to say why; the listing tells "the
// key is invalid here" from "the request is wrong" (which fails the
// listing too, and must stay an error rather than delete anything).
func (s *Source) unlisted(ctx context.Context, key string) bool {
	prefix := key
	if len(prefix) > 1024 {
		prefix = prefix[:1024]
	}
	out, err := s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket), Prefix: aws.String(prefix), MaxKeys: aws.Int32(1)})
	if err != nil {
		return status(translate(err)) == http.StatusBadRequest && s.listable(ctx)
	}
	return len(out.Contents) == 0 || aws.ToString(out.Contents[0].Key) != key
}

// listable reports whether the bucket can be listed at all.
func (s *Source) listable(ctx context.Context) bool {
	_, err := s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket), MaxKeys: aws.Int32(1)})
	return err == nil
}

// status is the HTTP status of an SDK error, or 0.
func status(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func translate(err error) error {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	var nsb *types.NoSuchBucket
	switch {
	case errors.As(err, &nsk), errors.As(err, &nf):
		return fmt.Errorf("%w: %v", freshen.ErrNotFound, err)
	case errors.As(err, &nsb):
		return fmt.Errorf("bucket does not exist: %w", err)
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		switch re.HTTPStatusCode() {
		case http.StatusNotFound:
			return fmt.Errorf("%w: %v", freshen.ErrNotFound, err)
		case http.StatusPreconditionFailed:
			return fmt.Errorf("%w: %v", freshen.ErrPreconditionFailed, err)
		}
	}
	return err
}

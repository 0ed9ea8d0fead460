// Package memsource is an in-memory freshen.Source for unit tests and
// benchmarks: a bucket held in a map, with S3's listing order and ETag
// pinning, and counters of the requests made.
package memsource

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/freshen-io/freshen"
)

// Source is an in-memory bucket. The zero value is not usable; call New.
type Source struct {
	bucket string
	mu     sync.Mutex
	objs   map[string]object
	// Lists, Stats and Opens count requests (a List of N keys counts
	// ceil(N/1000) requests, like ListObjectsV2 pages).
	Lists, Stats, Opens atomic.Int64
}

type object struct {
	body        []byte
	contentType string
	modified    time.Time
	meta        map[string]string
}

var _ freshen.Source = (*Source)(nil)

// New returns an empty bucket.
func New(bucket string) *Source { return &Source{bucket: bucket, objs: map[string]object{}} }

// Put stores body under key.
func (s *Source) Put(key, contentType string, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.objs[key] = object{body: bytes.Clone(body), contentType: contentType, modified: time.Now()}
}

// PutMeta stores body under key with user metadata (x-amz-meta-*).
func (s *Source) PutMeta(key, contentType string, body []byte, meta map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.objs[key] = object{body: bytes.Clone(body), contentType: contentType, modified: time.Now(), meta: maps.Clone(meta)}
}

// Delete removes key.
func (s *Source) Delete(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.objs, key)
}

// ETag is the MD5 of body, as S3 computes it for single-part uploads.
func ETag(body []byte) string {
	h := md5.Sum(body)
	return hex.EncodeToString(h[:])
}

func (s *Source) info(key string, o object) freshen.ObjectInfo {
	return freshen.ObjectInfo{Bucket: s.bucket, Key: key, ETag: ETag(o.body), Size: int64(len(o.body)), LastModified: o.modified, ContentType: o.contentType}
}

// List implements freshen.Source. Unlike a real store it copies the
// matching entries before calling fn (the bucket is in memory anyway), so
// fn sees a snapshot taken at the call and may itself call the Source.
func (s *Source) List(ctx context.Context, prefix, startAfter string, fn func(freshen.ObjectInfo) error) error {
	s.mu.Lock()
	var infos []freshen.ObjectInfo
	for k, o := range s.objs {
		if strings.HasPrefix(k, prefix) && k > startAfter {
			infos = append(infos, s.info(k, o))
		}
	}
	s.mu.Unlock()
	sort.Slice(infos, func(i, j int) bool { return infos[i].Key < infos[j].Key })
	s.Lists.Add(int64(max(1, (len(infos)+999)/1000)))
	for _, info := range infos {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}

// Stat implements freshen.Source.
func (s *Source) Stat(ctx context.Context, key string) (freshen.ObjectInfo, error) {
	s.Stats.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.objs[key]
	if !ok {
		return freshen.ObjectInfo{}, fmt.Errorf("memsource: stat %s: %w", key, freshen.ErrNotFound)
	}
	info := s.info(key, o)
	info.Metadata = maps.Clone(o.meta)
	return info, nil
}

// Open implements freshen.Source, pinned to obj.ETag.
func (s *Source) Open(ctx context.Context, obj freshen.ObjectInfo) (io.ReadCloser, error) {
	s.Opens.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.objs[obj.Key]
	if !ok {
		return nil, fmt.Errorf("memsource: get %s: %w", obj.Key, freshen.ErrNotFound)
	}
	if obj.ETag != "" && ETag(o.body) != obj.ETag {
		return nil, fmt.Errorf("memsource: get %s: %w", obj.Key, freshen.ErrPreconditionFailed)
	}
	return io.NopCloser(bytes.NewReader(o.body)), nil
}

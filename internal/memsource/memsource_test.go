package memsource_test

import (
	"context"
	"testing"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/internal/memsource"
	"github.com/freshen-io/freshen/source/sourcetest"
)

// bucket writes through memsource's own Put and Delete.
type bucket struct{ s *memsource.Source }

func (b bucket) Put(_ context.Context, key, contentType string, body []byte) error {
	b.s.Put(key, contentType, body)
	return nil
}

func (b bucket) Delete(_ context.Context, key string) error {
	b.s.Delete(key)
	return nil
}

func TestConformance(t *testing.T) {
	sourcetest.Run(t, func(t *testing.T) (freshen.Source, sourcetest.Bucket) {
		s := memsource.New("mem")
		return s, bucket{s}
	})
}

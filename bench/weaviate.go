package main

import (
	"context"
	"os"

	"github.com/freshen-io/freshen/index/weaviate"
	"github.com/freshen-io/freshen/internal/testenv"
)

func init() { extraIndexBenches = append(extraIndexBenches, weaviateBench) }

// weaviateBench measures a Weaviate collection on a local weaviate-server
// (one node, in its own network namespace, reached over loopback).
func weaviateBench(ctx context.Context, sizes []int) (indexBench, error) {
	dir, err := os.MkdirTemp("", "freshen-bench-weaviate-")
	if err != nil {
		return indexBench{}, err
	}
	defer os.RemoveAll(dir)
	wv, err := testenv.LaunchWeaviate(dir)
	if err != nil {
		return indexBench{}, err
	}
	defer wv.Stop()
	x, err := weaviate.Open(ctx, weaviate.Config{URL: wv.URL, Collection: "BenchChunks", Dim: indexDim, Create: true})
	if err != nil {
		return indexBench{}, err
	}
	defer x.Close()
	return runIndexBench(ctx, "weaviate (one node)", x, sizes)
}

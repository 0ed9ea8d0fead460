// Copyright 2025 The Freshen Authors.

//go:build !amd64 || purego

package vecmath

// archImpls returns no extra paths: this build has only the pure-Go one.
func archImpls() []matMulImpl { return nil }

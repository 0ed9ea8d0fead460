package freshen

import (
	"context"
	"testing"
)

func TestShares(t *testing.T) {
	for _, c := range []struct {
		tokens  int64
		weights []int64
	}{
		{100, []int64{1, 1, 1}},
		{7, []int64{0, 0}},
		{1000, []int64{3, 5, 0, 11}},
		{1, []int64{10, 10, 10}},
		{0, []int64{4}},
	} {
		got := Shares(c.tokens, c.weights)
		var sum int64
		for _, n := range got {
			if n < 0 {
				t.Errorf("Shares(%d, %v) = %v: a negative share", c.tokens, c.weights, got)
			}
			sum += n
		}
		if sum != c.tokens {
			t.Errorf("Shares(%d, %v) = %v, adds up to %d", c.tokens, c.weights, got, sum)
		}
	}
	if got := Shares(90, []int64{1, 2}); got[0] != 30 || got[1] != 60 {
		t.Errorf("Shares(90, [1 2]) = %v, want [30 60]", got)
	}
}

func TestMeter(t *testing.T) {
	var m Meter
	ReportUsage(context.Background(), 5) // no meter: nothing happens
	ctx := WithMeter(context.Background(), &m)
	if _, ok := m.Tokens(); ok {
		t.Fatal("a fresh meter says something was reported")
	}
	ReportUsage(ctx, 5)
	ReportUsage(ctx, 0)
	var inner Meter
	ReportUsage(WithMeter(ctx, &inner), 7)
	if n, ok := m.Tokens(); !ok || n != 5 {
		t.Errorf("meter = %d, %v; want 5, true", n, ok)
	}
	if n, _ := inner.Tokens(); n != 7 {
		t.Errorf("inner meter = %d, want 7", n)
	}
}

// Package tracing turns on OpenTelemetry tracing when the standard
// OTEL_EXPORTER_OTLP_* variables ask for it: spans are then exported
// with OTLP (HTTP/protobuf, or gRPC with OTEL_EXPORTER_OTLP_PROTOCOL=grpc)
// to the endpoint they name. Otherwise the global tracer provider stays
// OpenTelemetry's no-op one, and tracing costs nothing.
package tracing

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
)

// Enabled reports whether the environment asks for traces: an OTLP
// endpoint is set, the SDK is not disabled, and OTEL_TRACES_EXPORTER is
// not "none".
func Enabled(env func(string) string) bool {
	if strings.EqualFold(env("OTEL_SDK_DISABLED"), "true") || strings.EqualFold(env("OTEL_TRACES_EXPORTER"), "none") {
		return false
	}
	return env("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Setup installs an exporting tracer provider as the global one when
// Enabled; the returned function flushes and stops it (a no-op
// otherwise). version names this build in the service's resource.
func Setup(ctx context.Context, version string) (shutdown func(context.Context) error, err error) {
	if !Enabled(os.Getenv) {
		return func(context.Context) error { return nil }, nil
	}
	var exp sdktrace.SpanExporter
	proto := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if proto == "" {
		proto = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	switch proto {
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	case "", "http/protobuf":
		exp, err = otlptracehttp.New(ctx)
	default:
		return nil, fmt.Errorf("tracing: OTEL_EXPORTER_OTLP_PROTOCOL=%q: freshen exports grpc or http/protobuf", proto)
	}
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	// The resource takes OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
	// from the environment; "freshen" is the default name.
	res, err := resource.Merge(resource.NewSchemaless(semconv.ServiceName("freshen"), semconv.ServiceVersion(version)), resource.Environment())
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(2*time.Second)), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	return tp.Shutdown, nil
}

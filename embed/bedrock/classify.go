package bedrock

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/freshen-io/freshen"
)

// classify turns a failed InvokeModel into freshen's error classes. It is
// the only place that does, and it reads the SDK's typed errors and HTTP
// status codes, never messages:
//
//   - ctx done: ctx.Err(), as it is.
//   - Config.Timeout ran out: retryable.
//   - ThrottlingException, ServiceQuotaExceededException, an untyped 429:
//     retryable, wrapping freshen.ErrRateLimited (Retry-After honoured).
//   - ServiceUnavailableException, ModelNotReadyException, an untyped
//     503: retryable, wrapping freshen.ErrUnavailable (not an attempt).
//   - InternalServerException, ModelTimeoutException, ModelErrorException,
//     other 5xx, 408, 424: retryable.
//   - ValidationException, an untyped 400/413/422: permanent; also
//     freshen.ErrBatchTooLarge when the request sent broke one of
//     Bedrock's documented limits (texts a request, characters a text).
//   - AccessDeniedException, ResourceNotFoundException, an untyped 404:
//     permanent. (An untyped 401/403 is an expired token or a bad
//     signature, which says nothing about the input: retryable.)
//   - anything else (a reset connection, DNS, a garbled answer):
//     unclassified, which freshen retries.
func (e *Embedder) classify(ctx, callCtx context.Context, err error, texts []string) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	op := "bedrock: invoke " + e.cfg.Model
	if errors.Is(context.Cause(callCtx), errTimeout) {
		return freshen.Retryable(fmt.Errorf("%s: %w (%s)", op, errTimeout, e.cfg.Timeout), 0)
	}
	var (
		throttled   *types.ThrottlingException
		quota       *types.ServiceQuotaExceededException
		unavailable *types.ServiceUnavailableException
		notReady    *types.ModelNotReadyException
		internal    *types.InternalServerException
		modelTime   *types.ModelTimeoutException
		modelErr    *types.ModelErrorException
		invalid     *types.ValidationException
		denied      *types.AccessDeniedException
		notFound    *types.ResourceNotFoundException
	)
	after := retryAfter(err)
	rateLimited := func() error {
		return freshen.Retryable(fmt.Errorf("%s: %w: %w", op, freshen.ErrRateLimited, err), after)
	}
	down := func() error {
		return freshen.Retryable(fmt.Errorf("%s: %w: %w", op, freshen.ErrUnavailable, err), after)
	}
	retry := func() error { return freshen.Retryable(fmt.Errorf("%s: %w", op, err), after) }
	permanent := func() error { return freshen.Permanent(fmt.Errorf("%s: %w", op, err)) }
	rejected := func() error {
		if why := e.fam.overLimit(texts); why != "" {
			return freshen.Permanent(fmt.Errorf("%s: %w (%s): %w", op, freshen.ErrBatchTooLarge, why, err))
		}
		return permanent()
	}
	switch {
	case errors.As(err, &throttled), errors.As(err, &quota):
		return rateLimited()
	case errors.As(err, &unavailable), errors.As(err, &notReady):
		return down()
	case errors.As(err, &internal), errors.As(err, &modelTime), errors.As(err, &modelErr):
		return retry()
	case errors.As(err, &invalid):
		return rejected()
	case errors.As(err, &denied), errors.As(err, &notFound):
		return permanent()
	}
	switch code := status(err); {
	case code == http.StatusTooManyRequests:
		return rateLimited()
	case code == http.StatusServiceUnavailable:
		return down()
	case code >= 500, code == http.StatusRequestTimeout, code == http.StatusFailedDependency:
		return retry()
	case code == http.StatusBadRequest, code == http.StatusRequestEntityTooLarge, code == http.StatusUnprocessableEntity:
		return rejected()
	case code == http.StatusNotFound:
		return permanent()
	}
	return fmt.Errorf("%s: %w", op, err)
}

// status is the HTTP status of an SDK error, or 0.
func status(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// retryAfter reads a Retry-After header (seconds or an HTTP date) from an
// SDK error's response, or 0.
func retryAfter(err error) time.Duration {
	var re *smithyhttp.ResponseError
	if !errors.As(err, &re) || re.Response == nil {
		return 0
	}
	h := re.Response.Header.Get("Retry-After")
	if h == "" {
		return 0
	}
	if s, err := strconv.Atoi(h); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

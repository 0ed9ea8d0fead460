// Package breaker is an Embedder decorator whose one job is to stop
// calling an inner Embedder (a provider) that keeps failing, and to find
// out when it is back: a circuit breaker. While closed it counts
// consecutive failures; after too many, or after every call failed for a
// while, it opens and fails calls at once with an error wrapping
// freshen.ErrUnavailable (not an attempt, so no key is parked because a
// provider is down) that says until when. Then it lets exactly one probe
// call through: success closes it, failure opens it again for twice as
// long, up to a cap.
//
// It must never retry or delay a call (it only lets calls through or
// refuses them), never change a call's result, and never count against
// the provider what says nothing about its health: a permanent error or a
// request too large (the provider answered) and a call the caller
// cancelled are not failures.
package breaker

package sns

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"
)

const (
	// maxCerts bounds the certificate cache. SNS uses one certificate per
	// region at a time, so 32 outlives any rotation; the bound only stops
	// forged messages naming ever-new URLs on an allowed host from growing
	// it.
	maxCerts = 32
	// maxCertBytes caps a certificate response; SNS's PEM is under 2 KiB.
	maxCertBytes = 64 << 10
	// fetchTimeout bounds each certificate fetch and confirmation GET.
	fetchTimeout = 10 * time.Second
	// errBodyBytes is how much of a failed confirmation's body errors quote.
	errBodyBytes = 256
	maxRedirects = 10
)

// Handler verifies and confirms SNS messages. It is safe for concurrent
// use; build it with New.
type Handler struct {
	verify bool
	hosts  []string
	client *http.Client

	mu    sync.Mutex
	certs map[string]*certEntry
	order []string // keys of certs, oldest first, for eviction
}

// certEntry is one cached certificate, or the fetch of it under way:
// done is closed once key or err is set.
type certEntry struct {
	done chan struct{}
	key  *rsa.PublicKey
	err  error
}

// New returns a Handler for cfg (see Config for defaults). It does not
// validate cfg; call Config.Validate first to report mistakes.
func New(cfg Config) *Handler {
	h := &Handler{verify: cfg.Verify, certs: make(map[string]*certEntry)}
	hosts := cfg.AllowedHosts
	if len(hosts) == 0 {
		hosts = defaultAllowedHosts
	}
	h.hosts = slices.Clone(hosts)
	var c http.Client
	if cfg.Client != nil {
		c = *cfg.Client
	}
	next := c.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= maxRedirects {
			return fmt.Errorf("stopped after %d redirects", maxRedirects)
		}
		if err := h.allowed("redirect", req.URL); err != nil {
			return err
		}
		if next != nil {
			return next(req, via)
		}
		return nil
	}
	h.client = &c
	return h
}

// Verify checks that m was signed by SNS: SignatureVersion "1"
// (SHA1withRSA) or "2" (SHA256withRSA) over the string AWS documents for
// m's Type, with the key of the certificate at SigningCertURL, which must
// be https on an allowed host. Certificates are cached by URL, so
// verifying many messages fetches each certificate once.
//
// It always verifies, whatever Config.Verify says. Errors wrapping
// ErrUntrusted reject the message for good; any other error means the
// certificate could not be fetched or read, and the caller should answer
// 5xx so SNS retries. Verify does no I/O besides the certificate fetch and
// is idempotent. It does not check Timestamp's age or TopicArn.
func (h *Handler) Verify(ctx context.Context, m Message) error {
	if err := h.verifySignature(ctx, m); err != nil {
		return fmt.Errorf("sns: verify: %w", err)
	}
	return nil
}

func (h *Handler) verifySignature(ctx context.Context, m Message) error {
	var hash crypto.Hash
	switch m.SignatureVersion {
	case "1":
		hash = crypto.SHA1
	case "2":
		hash = crypto.SHA256
	case "":
		return untrusted("%s %s is not signed (no SignatureVersion)", m.Type, m.MessageID)
	default:
		return untrusted("SignatureVersion %q is not supported (want \"1\" or \"2\")", m.SignatureVersion)
	}
	s, err := stringToSign(m)
	if err != nil {
		return untrusted("%v", err)
	}
	if m.Signature == "" {
		return untrusted("%s %s has no Signature", m.Type, m.MessageID)
	}
	sig, err := base64.StdEncoding.DecodeString(m.Signature)
	if err != nil {
		return untrusted("Signature of %s %s is not base64: %v", m.Type, m.MessageID, err)
	}
	u, err := h.checkURL("certificate", m.SigningCertURL)
	if err != nil {
		return err
	}
	key, err := h.cert(ctx, u)
	if err != nil {
		return err
	}
	var digest []byte
	if hash == crypto.SHA1 {
		d := sha1.Sum([]byte(s))
		digest = d[:]
	} else {
		d := sha256.Sum256([]byte(s))
		digest = d[:]
	}
	if err := rsa.VerifyPKCS1v15(key, hash, digest, sig); err != nil {
		return untrusted("signature of %s %s (SignatureVersion %s) does not match certificate %s: %v",
			m.Type, m.MessageID, m.SignatureVersion, redact(u), err)
	}
	return nil
}

// Confirm confirms the subscription m announces by GETting its
// SubscribeURL, which must be https on an allowed host (else an error
// wrapping ErrUntrusted, before any request). With Config.Verify set it
// verifies m first, and an unverifiable m is never confirmed.
//
// m must be a SubscriptionConfirmation. A non-2xx answer is an error
// quoting the status and the start of the body. Confirming twice is
// harmless (SNS answers with the same subscription), so callers may retry
// errors that do not wrap ErrUntrusted.
func (h *Handler) Confirm(ctx context.Context, m Message) error {
	if m.Type != TypeSubscriptionConfirmation {
		return fmt.Errorf("sns: confirm: %s %s is not a %s", m.Type, m.MessageID, TypeSubscriptionConfirmation)
	}
	u, err := h.checkURL("SubscribeURL", m.SubscribeURL)
	if err != nil {
		return fmt.Errorf("sns: confirm %s: %w", m.TopicArn, err)
	}
	if h.verify {
		if err := h.verifySignature(ctx, m); err != nil {
			return fmt.Errorf("sns: confirm %s: verify: %w", m.TopicArn, err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	body, status, err := h.get(ctx, u, errBodyBytes)
	if err != nil {
		return fmt.Errorf("sns: confirm %s: %w", m.TopicArn, err)
	}
	if status/100 != 2 {
		return fmt.Errorf("sns: confirm %s: GET %s: %d %s: %q",
			m.TopicArn, redact(u), status, http.StatusText(status), body)
	}
	return nil
}

// get fetches u and returns at most limit bytes of its body, reading (and
// discarding) up to maxCertBytes so the connection can be reused. Errors
// name u without its query, which may hold a token.
func (h *Handler) get(ctx context.Context, u *url.URL, limit int) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, 0, fmt.Errorf("GET %s: %w", redact(u), err)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		// url.Error would print the full URL; keep its cause, which
		// carries ErrUntrusted when a redirect was refused.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, 0, fmt.Errorf("GET %s: %w", redact(u), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(limit)))
	if err == nil {
		_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, maxCertBytes))
	}
	if err != nil {
		return nil, resp.StatusCode, fmt.Errorf("GET %s: reading body: %w", redact(u), err)
	}
	return body, resp.StatusCode, nil
}

// cert returns the RSA key of the certificate at u, from the cache or by
// fetching it. Concurrent callers share one fetch, which runs detached from
// any one caller's cancellation (bounded by fetchTimeout) so that a caller
// giving up does not fail the others. Failures are not cached.
func (h *Handler) cert(ctx context.Context, u *url.URL) (*rsa.PublicKey, error) {
	k := u.String()
	h.mu.Lock()
	e, ok := h.certs[k]
	if !ok {
		if len(h.order) >= maxCerts {
			delete(h.certs, h.order[0])
			h.order = slices.Delete(h.order, 0, 1)
		}
		e = &certEntry{done: make(chan struct{})}
		h.certs[k] = e
		h.order = append(h.order, k)
		go h.fill(context.WithoutCancel(ctx), k, u, e)
	}
	h.mu.Unlock()
	select {
	case <-e.done:
		return e.key, e.err
	case <-ctx.Done():
		return nil, fmt.Errorf("fetch certificate %s: %w", redact(u), ctx.Err())
	}
}

func (h *Handler) fill(ctx context.Context, k string, u *url.URL, e *certEntry) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	key, err := h.fetchCert(ctx, u)
	if err != nil {
		h.mu.Lock()
		if h.certs[k] == e {
			delete(h.certs, k)
			h.order = slices.DeleteFunc(h.order, func(o string) bool { return o == k })
		}
		h.mu.Unlock()
	}
	e.key, e.err = key, err
	close(e.done)
}

// fetchCert GETs a PEM certificate and returns its RSA public key. Its
// chain is not verified: trust rests on having fetched it over https
// from an allowed host.
func (h *Handler) fetchCert(ctx context.Context, u *url.URL) (*rsa.PublicKey, error) {
	body, status, err := h.get(ctx, u, maxCertBytes+1)
	if err != nil {
		return nil, fmt.Errorf("fetch certificate: %w", err)
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("fetch certificate %s: %d %s", redact(u), status, http.StatusText(status))
	}
	if len(body) > maxCertBytes {
		return nil, fmt.Errorf("fetch certificate %s: larger than %d bytes", redact(u), maxCertBytes)
	}
	for rest := body; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, fmt.Errorf("fetch certificate %s: no PEM CERTIFICATE block", redact(u))
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("fetch certificate %s: %w", redact(u), err)
		}
		key, ok := c.PublicKey.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("fetch certificate %s: key is %T, not RSA", redact(u), c.PublicKey)
		}
		return key, nil
	}
}

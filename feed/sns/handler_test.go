package sns

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// signer is the test's stand-in for SNS: a key and its self-signed
// certificate, made once because RSA key generation is slow under -race.
type signer struct {
	key     *rsa.PrivateKey
	certPEM []byte
}

var testSigner = sync.OnceValue(func() signer {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return signer{key: key, certPEM: selfSigned(key, &key.PublicKey)}
})

func selfSigned(priv crypto.Signer, pub any) []byte {
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "sns.test.amazonaws.com"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// testBundle is what setup starts: a TLS server playing SNS's certificate
// host and subscription endpoint, with counters of what reached it.
type testBundle struct {
	srv *httptest.Server
	// requests counts every request the Handler's client attempted,
	// whatever its host; the others count what the server served.
	requests     atomic.Int64
	certHits     atomic.Int64
	confirmHits  atomic.Int64
	lastToken    atomic.Value // string
	confirmFails atomic.Bool
	release      chan struct{} // unblocks /slow.pem
}

func (b *testBundle) url(path string) string { return b.srv.URL + path }

type countingTransport struct {
	n    *atomic.Int64
	next http.RoundTripper
}

func (t countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.n.Add(1)
	return t.next.RoundTrip(r)
}

// setup returns a Handler that trusts the test server (by its IP,
// "127.0.0.1", on any port); edit adjusts the Config before New.
func setup(t *testing.T, edit func(*Config)) (*Handler, *testBundle) {
	t.Helper()
	s := testSigner()
	b := &testBundle{release: make(chan struct{})}
	var flaky atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/cert.pem", func(w http.ResponseWriter, r *http.Request) {
		b.certHits.Add(1)
		w.Write(s.certPEM)
	})
	mux.HandleFunc("/flaky.pem", func(w http.ResponseWriter, r *http.Request) {
		b.certHits.Add(1)
		if flaky.Add(1) == 1 {
			http.Error(w, "try later", http.StatusServiceUnavailable)
			return
		}
		w.Write(s.certPEM)
	})
	mux.HandleFunc("/slow.pem", func(w http.ResponseWriter, r *http.Request) {
		b.certHits.Add(1)
		<-b.release
		w.Write(s.certPEM)
	})
	mux.HandleFunc("/big.pem", func(w http.ResponseWriter, r *http.Request) {
		b.certHits.Add(1)
		w.Write(append(append([]byte{}, s.certPEM...), strings.Repeat("#", maxCertBytes)...))
	})
	mux.HandleFunc("/garbage.pem", func(w http.ResponseWriter, r *http.Request) {
		b.certHits.Add(1)
		fmt.Fprint(w, "<html>not a certificate</html>")
	})
	mux.HandleFunc("/ecdsa.pem", func(w http.ResponseWriter, r *http.Request) {
		b.certHits.Add(1)
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		w.Write(selfSigned(k, &k.PublicKey))
	})
	mux.HandleFunc("/confirm", func(w http.ResponseWriter, r *http.Request) {
		b.confirmHits.Add(1)
		b.lastToken.Store(r.URL.Query().Get("Token"))
		if b.confirmFails.Load() {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, "<ErrorResponse><Error><Code>AuthorizationError</Code></Error>"+strings.Repeat("x", 1000)+"</ErrorResponse>")
			return
		}
		fmt.Fprint(w, "<ConfirmSubscriptionResponse/>")
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.Query().Get("to"), http.StatusFound)
	})
	b.srv = httptest.NewTLSServer(mux)
	t.Cleanup(b.srv.Close)
	t.Cleanup(func() {
		select {
		case <-b.release:
		default:
			close(b.release)
		}
	})

	client := b.srv.Client()
	client.Transport = countingTransport{n: &b.requests, next: client.Transport}
	cfg := Config{AllowedHosts: []string{"127.0.0.1"}, Client: client}
	if edit != nil {
		edit(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return New(cfg), b
}

func (b *testBundle) notification() Message {
	return Message{
		Type: TypeNotification, MessageID: "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
		TopicArn: "arn:aws:sns:us-east-1:123456789012:docs-events", Subject: "Amazon S3 Notification",
		Message:        `{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"docs"},"object":{"key":"a.md"}}}]}`,
		Timestamp:      "2026-11-26T07:42:08.655Z",
		SigningCertURL: b.url("/cert.pem"),
		UnsubscribeURL: b.url("/unsubscribe"),
	}
}

func (b *testBundle) confirmation() Message {
	return Message{
		Type: TypeSubscriptionConfirmation, MessageID: "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
		Token: "tok3n", TopicArn: "arn:aws:sns:us-east-1:123456789012:docs-events",
		Message:        "You have chosen to subscribe to the topic arn:aws:sns:us-east-1:123456789012:docs-events.\nTo confirm the subscription, visit the SubscribeURL included in this message.",
		SubscribeURL:   b.url("/confirm?Action=ConfirmSubscription&Token=tok3n"),
		Timestamp:      "2026-11-26T07:40:00.000Z",
		SigningCertURL: b.url("/cert.pem"),
	}
}

// sign signs m as SNS would with SignatureVersion version.
func sign(t *testing.T, m Message, version string) Message {
	t.Helper()
	s, err := stringToSign(m)
	if err != nil {
		t.Fatal(err)
	}
	var hash crypto.Hash
	var digest []byte
	switch version {
	case "1":
		d := sha1.Sum([]byte(s))
		hash, digest = crypto.SHA1, d[:]
	case "2":
		d := sha256.Sum256([]byte(s))
		hash, digest = crypto.SHA256, d[:]
	default:
		t.Fatalf("version %q", version)
	}
	sig, err := rsa.SignPKCS1v15(rand.Reader, testSigner().key, hash, digest)
	if err != nil {
		t.Fatal(err)
	}
	m.SignatureVersion, m.Signature = version, base64.StdEncoding.EncodeToString(sig)
	return m
}

func wantUntrusted(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, ErrUntrusted) {
		t.Errorf("%s: got %v, want ErrUntrusted", what, err)
	}
}

func TestVerify(t *testing.T) {
	h, b := setup(t, nil)
	ctx := t.Context()
	noSubject := b.notification()
	noSubject.Subject = ""
	unsub := b.confirmation()
	unsub.Type = TypeUnsubscribeConfirmation
	for _, v := range []string{"1", "2"} {
		for name, m := range map[string]Message{
			"notification": b.notification(), "notification without subject": noSubject,
			"subscription confirmation": b.confirmation(), "unsubscribe confirmation": unsub,
		} {
			if err := h.Verify(ctx, sign(t, m, v)); err != nil {
				t.Errorf("v%s %s: %v", v, name, err)
			}
		}
	}
	// Fields outside the string to sign may change: AWS does not sign them.
	m := sign(t, b.notification(), "2")
	m.UnsubscribeURL = "https://elsewhere/"
	if err := h.Verify(ctx, m); err != nil {
		t.Errorf("unsigned field changed: %v", err)
	}
}

func TestVerifyRejectsTampering(t *testing.T) {
	h, b := setup(t, nil)
	ctx := t.Context()
	for _, v := range []string{"1", "2"} {
		for _, c := range []struct {
			name string
			m    Message
			edit func(*Message)
		}{
			{"Message", b.notification(), func(m *Message) { m.Message = strings.Replace(m.Message, "a.md", "b.md", 1) }},
			{"Subject changed", b.notification(), func(m *Message) { m.Subject = "Amazon S3 Notification!" }},
			{"Subject removed", b.notification(), func(m *Message) { m.Subject = "" }},
			{"Subject added", func() Message { m := b.notification(); m.Subject = ""; return m }(), func(m *Message) { m.Subject = "hi" }},
			{"MessageId", b.notification(), func(m *Message) { m.MessageID = "other" }},
			{"TopicArn", b.notification(), func(m *Message) { m.TopicArn += "2" }},
			{"Timestamp", b.notification(), func(m *Message) { m.Timestamp = "2026-11-26T07:42:09.655Z" }},
			{"Type", b.confirmation(), func(m *Message) { m.Type = TypeUnsubscribeConfirmation }},
			{"Token", b.confirmation(), func(m *Message) { m.Token = "tok3m" }},
			{"SubscribeURL", b.confirmation(), func(m *Message) { m.SubscribeURL = b.url("/confirm?Token=other") }},
			{"confirmation Message", b.confirmation(), func(m *Message) { m.Message += " " }},
			{"other version", b.notification(), func(m *Message) { m.SignatureVersion = map[string]string{"1": "2", "2": "1"}[v] }},
			{"Signature bytes", b.notification(), func(m *Message) {
				sig, _ := base64.StdEncoding.DecodeString(m.Signature)
				sig[10] ^= 1
				m.Signature = base64.StdEncoding.EncodeToString(sig)
			}},
		} {
			m := sign(t, c.m, v)
			c.edit(&m)
			err := h.Verify(ctx, m)
			wantUntrusted(t, "v"+v+" "+c.name, err)
			if err != nil && !strings.Contains(err.Error(), "does not match certificate") {
				t.Errorf("v%s %s: error %q does not say the signature did not match", v, c.name, err)
			}
		}
	}
}

func TestVerifyRejectsBeforeFetching(t *testing.T) {
	h, b := setup(t, nil)
	ctx := t.Context()
	for _, c := range []struct {
		name, wantErr string
		edit          func(*Message)
	}{
		{"SignatureVersion 3", `sns: verify: SignatureVersion "3" is not supported (want "1" or "2")`, func(m *Message) { m.SignatureVersion = "3" }},
		{"no SignatureVersion", "is not signed", func(m *Message) { m.SignatureVersion = "" }},
		{"no Signature", "has no Signature", func(m *Message) { m.Signature = "" }},
		{"Signature not base64", "is not base64", func(m *Message) { m.Signature = "!!!" }},
		{"unknown Type", `unknown message type "Widget"`, func(m *Message) { m.Type = "Widget" }},
		{"disallowed host", `sns: verify: certificate host "evil.example" is not allowed (allowed: 127.0.0.1)`,
			func(m *Message) { m.SigningCertURL = "https://evil.example/cert.pem" }},
		{"lookalike host", `certificate host "127.0.0.1.evil.example" is not allowed`,
			func(m *Message) { m.SigningCertURL = "https://127.0.0.1.evil.example/cert.pem" }},
		{"userinfo trick", `certificate host "evil.example" is not allowed`,
			func(m *Message) { m.SigningCertURL = "https://127.0.0.1@evil.example/cert.pem" }},
		{"http", "sns: verify: certificate URL http://127.0.0.1", func(m *Message) { m.SigningCertURL = strings.Replace(b.url("/cert.pem"), "https:", "http:", 1) }},
		{"no cert URL", "no certificate URL", func(m *Message) { m.SigningCertURL = "" }},
		{"relative cert URL", "is not https", func(m *Message) { m.SigningCertURL = "/cert.pem" }},
	} {
		m := sign(t, b.notification(), "2")
		c.edit(&m)
		err := h.Verify(ctx, m)
		wantUntrusted(t, c.name, err)
		if err != nil && !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("%s: error %q does not contain %q", c.name, err, c.wantErr)
		}
	}
	if n := b.requests.Load(); n != 0 {
		t.Errorf("%d requests made; want none", n)
	}
}

func TestVerifyDefaultHostsRejectTestServer(t *testing.T) {
	h, b := setup(t, func(c *Config) { c.AllowedHosts = nil })
	err := h.Verify(t.Context(), sign(t, b.notification(), "2"))
	wantUntrusted(t, "default hosts", err)
	if err != nil && !strings.Contains(err.Error(), "(allowed: sns.*.amazonaws.com, sns.*.amazonaws.com.cn)") {
		t.Errorf("error %q does not list the default hosts", err)
	}
	if n := b.requests.Load(); n != 0 {
		t.Errorf("%d requests made; want none", n)
	}
}

func TestVerifyCachesCertificate(t *testing.T) {
	h, b := setup(t, nil)
	ctx := t.Context()
	msgs := []Message{sign(t, b.notification(), "1"), sign(t, b.notification(), "2"), sign(t, b.confirmation(), "2")}
	var wg sync.WaitGroup
	errs := make(chan error, 3*20)
	for range 20 {
		for _, m := range msgs {
			wg.Go(func() { errs <- h.Verify(ctx, m) })
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for range 20 {
		if err := h.Verify(ctx, msgs[0]); err != nil {
			t.Fatal(err)
		}
	}
	if n := b.certHits.Load(); n != 1 {
		t.Errorf("certificate fetched %d times; want 1", n)
	}
}

func TestVerifyCacheIsBounded(t *testing.T) {
	h, b := setup(t, nil)
	ctx := t.Context()
	verify := func(i int) {
		t.Helper()
		m := b.notification()
		m.SigningCertURL = b.url(fmt.Sprintf("/cert.pem?n=%d", i))
		if err := h.Verify(ctx, sign(t, m, "2")); err != nil {
			t.Fatal(err)
		}
	}
	for i := range maxCerts + 1 {
		verify(i)
	}
	h.mu.Lock()
	size, orderLen := len(h.certs), len(h.order)
	h.mu.Unlock()
	if size != maxCerts || orderLen != maxCerts {
		t.Errorf("cache holds %d certificates (%d in order); want %d", size, orderLen, maxCerts)
	}
	verify(maxCerts) // newest: cached
	if n := b.certHits.Load(); n != maxCerts+1 {
		t.Errorf("certificate fetched %d times; want %d", n, maxCerts+1)
	}
	verify(0) // oldest: evicted, fetched again
	if n := b.certHits.Load(); n != maxCerts+2 {
		t.Errorf("certificate fetched %d times; want %d", n, maxCerts+2)
	}
}

func TestVerifyCertificateFailures(t *testing.T) {
	h, b := setup(t, nil)
	ctx := t.Context()
	for path, want := range map[string]string{
		"/missing.pem": "404 Not Found",
		"/big.pem":     "larger than 65536 bytes",
		"/garbage.pem": "no PEM CERTIFICATE block",
		"/ecdsa.pem":   "key is *ecdsa.PublicKey, not RSA",
	} {
		m := b.notification()
		m.SigningCertURL = b.url(path)
		err := h.Verify(ctx, sign(t, m, "2"))
		if err == nil || errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v; want a retryable error containing %q", path, err, want)
		}
	}

	// A failed fetch is not cached: the next message fetches again.
	m := b.notification()
	m.SigningCertURL = b.url("/flaky.pem")
	m = sign(t, m, "2")
	before := b.certHits.Load()
	if err := h.Verify(ctx, m); err == nil || errors.Is(err, ErrUntrusted) {
		t.Errorf("flaky first: got %v; want a retryable error", err)
	}
	if err := h.Verify(ctx, m); err != nil {
		t.Errorf("flaky second: %v", err)
	}
	if n := b.certHits.Load() - before; n != 2 {
		t.Errorf("flaky certificate fetched %d times; want 2", n)
	}
}

func TestVerifyRedirects(t *testing.T) {
	h, b := setup(t, nil)
	ctx := t.Context()
	m := b.notification()
	m.SigningCertURL = b.url("/redirect?to=" + b.url("/cert.pem"))
	if err := h.Verify(ctx, sign(t, m, "2")); err != nil {
		t.Errorf("redirect to an allowed host: %v", err)
	}
	// localhost is the same server, but not an allowed host.
	m.SigningCertURL = b.url("/redirect?to=" + strings.Replace(b.url("/cert.pem?x"), "127.0.0.1", "localhost", 1))
	err := h.Verify(ctx, sign(t, m, "2"))
	wantUntrusted(t, "redirect to a disallowed host", err)
	if err != nil && !strings.Contains(err.Error(), `redirect host "localhost" is not allowed`) {
		t.Errorf("error %q does not name the redirect", err)
	}
	if n := b.certHits.Load(); n != 1 {
		t.Errorf("certificate served %d times; want 1", n)
	}
}

// A caller that gives up does not fail the fetch others are waiting on.
func TestVerifyCancelledCallerDoesNotFailFetch(t *testing.T) {
	h, b := setup(t, nil)
	m := b.notification()
	m.SigningCertURL = b.url("/slow.pem")
	m = sign(t, m, "2")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := h.Verify(ctx, m)
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrUntrusted) {
		t.Fatalf("cancelled: got %v; want context.Canceled", err)
	}
	close(b.release)
	if err := h.Verify(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	if n := b.certHits.Load(); n != 1 {
		t.Errorf("certificate fetched %d times; want 1", n)
	}
}

func TestConfirm(t *testing.T) {
	for _, verify := range []bool{false, true} {
		h, b := setup(t, func(c *Config) { c.Verify = verify })
		if err := h.Confirm(t.Context(), sign(t, b.confirmation(), "2")); err != nil {
			t.Fatalf("verify=%v: %v", verify, err)
		}
		if n := b.confirmHits.Load(); n != 1 {
			t.Errorf("verify=%v: SubscribeURL fetched %d times; want 1", verify, n)
		}
		if tok, _ := b.lastToken.Load().(string); tok != "tok3n" {
			t.Errorf("verify=%v: token %q reached the endpoint; want tok3n", verify, tok)
		}
		wantCert := int64(0)
		if verify {
			wantCert = 1
		}
		if n := b.certHits.Load(); n != wantCert {
			t.Errorf("verify=%v: certificate fetched %d times; want %d", verify, n, wantCert)
		}
	}
}

func TestConfirmRejectsBeforeRequesting(t *testing.T) {
	h, b := setup(t, func(c *Config) { c.Verify = true })
	ctx := t.Context()
	for _, c := range []struct {
		name, wantErr string
		untrusted     bool
		edit          func(*Message)
	}{
		{"disallowed host", `sns: confirm arn:aws:sns:us-east-1:123456789012:docs-events: SubscribeURL host "evil.example" is not allowed`, true,
			func(m *Message) { m.SubscribeURL = "https://evil.example/?Action=ConfirmSubscription" }},
		{"http", "SubscribeURL URL http://127.0.0.1", true,
			func(m *Message) { m.SubscribeURL = strings.Replace(m.SubscribeURL, "https:", "http:", 1) }},
		{"bad signature", "sns: confirm arn:aws:sns:us-east-1:123456789012:docs-events: verify: signature of SubscriptionConfirmation", true,
			func(m *Message) { m.Token = "forged" }},
		{"notification", "is not a SubscriptionConfirmation", false,
			func(m *Message) { m.Type = TypeNotification }},
		{"unsubscribe", "is not a SubscriptionConfirmation", false,
			func(m *Message) { m.Type = TypeUnsubscribeConfirmation }},
	} {
		m := sign(t, b.confirmation(), "2")
		c.edit(&m)
		err := h.Confirm(ctx, m)
		if err == nil || errors.Is(err, ErrUntrusted) != c.untrusted || !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("%s: got %v; want error containing %q (untrusted %v)", c.name, err, c.wantErr, c.untrusted)
		}
		if err != nil && strings.Contains(err.Error(), "tok3n") {
			t.Errorf("%s: error %q leaks the token", c.name, err)
		}
	}
	if n := b.confirmHits.Load(); n != 0 {
		t.Errorf("SubscribeURL fetched %d times; want 0", n)
	}
	// Only the signature check fetched anything: the certificate, once.
	if n, cert := b.requests.Load(), b.certHits.Load(); n != 1 || cert != 1 {
		t.Errorf("%d requests, %d certificate fetches; want 1 and 1", n, cert)
	}
}

func TestConfirmWithoutVerifyIgnoresSignature(t *testing.T) {
	h, b := setup(t, nil)
	m := b.confirmation() // unsigned
	if err := h.Confirm(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	if n, cert := b.confirmHits.Load(), b.certHits.Load(); n != 1 || cert != 0 {
		t.Errorf("%d confirmations, %d certificate fetches; want 1 and 0", n, cert)
	}
}

func TestConfirmFailure(t *testing.T) {
	h, b := setup(t, nil)
	b.confirmFails.Store(true)
	err := h.Confirm(t.Context(), b.confirmation())
	if err == nil || errors.Is(err, ErrUntrusted) {
		t.Fatalf("got %v; want a retryable error", err)
	}
	for _, want := range []string{"403 Forbidden", "<ErrorResponse><Error><Code>AuthorizationError</Code>", b.url("/confirm") + ":"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "tok3n") {
		t.Errorf("error %q leaks the token", err)
	}
	if len(err.Error()) > 600 {
		t.Errorf("error quotes %d bytes; want the start of the body only", len(err.Error()))
	}
	if n := b.confirmHits.Load(); n != 1 {
		t.Errorf("SubscribeURL fetched %d times; want 1", n)
	}
}

func TestConfirmRedirectToDisallowedHost(t *testing.T) {
	h, b := setup(t, nil)
	m := b.confirmation()
	m.SubscribeURL = b.url("/redirect?to=https://evil.example/steal")
	err := h.Confirm(t.Context(), m)
	wantUntrusted(t, "redirect", err)
	if n := b.requests.Load(); n != 1 {
		t.Errorf("%d requests; want only the redirecting one", n)
	}
}

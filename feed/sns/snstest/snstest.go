// Package snstest plays Amazon SNS for tests: a TLS server on loopback
// that serves a signing certificate and the SubscribeURL endpoint, and
// signs messages as SNS does, so that code receiving SNS HTTP(S)
// deliveries is tested against real signatures without the internet.
package snstest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/freshen-io/freshen/feed/sns"
)

// Host is the host pattern that trusts the server (its loopback IP).
const Host = "127.0.0.1"

// Topic is the topic ARN the server's messages carry.
const Topic = "arn:aws:sns:us-east-1:123456789012:freshen-test"

var key = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// Server is a fake SNS endpoint.
type Server struct {
	srv *httptest.Server
	// Confirmed counts GETs of the SubscribeURL.
	Confirmed atomic.Int64
}

// New starts a server that stops when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	k := key()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sns.test.amazonaws.com"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	s := &Server{}
	mux := http.NewServeMux()
	mux.HandleFunc("/cert.pem", func(w http.ResponseWriter, r *http.Request) { w.Write(certPEM) })
	mux.HandleFunc("/confirm", func(w http.ResponseWriter, r *http.Request) {
		s.Confirmed.Add(1)
		fmt.Fprint(w, "<ConfirmSubscriptionResponse/>")
	})
	s.srv = httptest.NewTLSServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

// Client trusts the server's certificate.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// Confirmation returns a signed SubscriptionConfirmation whose
// SubscribeURL is the server's.
func (s *Server) Confirmation() sns.Message {
	return s.Sign(sns.Message{
		Type: sns.TypeSubscriptionConfirmation, MessageID: "165545c9-2a5c-472c-8df2-7ff2be2b3b1b", Token: "tok3n", TopicArn: Topic,
		Message:      "You have chosen to subscribe to the topic " + Topic + ".",
		SubscribeURL: s.srv.URL + "/confirm?Action=ConfirmSubscription&Token=tok3n", Timestamp: time.Now().UTC().Format(time.RFC3339),
	})
}

// Notification returns a signed Notification carrying body (an S3 event).
func (s *Server) Notification(body string) sns.Message {
	return s.Sign(sns.Message{
		Type: sns.TypeNotification, MessageID: fmt.Sprintf("m-%d", time.Now().UnixNano()), TopicArn: Topic,
		Subject: "Amazon S3 Notification", Message: body, Timestamp: time.Now().UTC().Format(time.RFC3339),
		UnsubscribeURL: s.srv.URL + "/unsubscribe",
	})
}

// Sign sets m's certificate URL and signs it (SignatureVersion 2).
func (s *Server) Sign(m sns.Message) sns.Message {
	m.SigningCertURL = s.srv.URL + "/cert.pem"
	str, err := sns.StringToSign(m)
	if err != nil {
		panic(err)
	}
	d := sha256.Sum256([]byte(str))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key(), crypto.SHA256, d[:])
	if err != nil {
		panic(err)
	}
	m.SignatureVersion, m.Signature = "2", base64.StdEncoding.EncodeToString(sig)
	return m
}

// JSON encodes m as SNS POSTs it.
func JSON(m sns.Message) []byte {
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

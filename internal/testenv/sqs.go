package testenv

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Admiral-Piett/goaws/app/gosqs"
	"github.com/Admiral-Piett/goaws/app/models"
	"github.com/Admiral-Piett/goaws/app/servertest"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/sirupsen/logrus"
)

// SQS is goaws, an SQS-compatible server, running in this process on
// loopback and spoken to with aws-sdk-go-v2's JSON protocol. Its
// periodic task runs too, so a message whose visibility timeout expires
// is delivered again, as on AWS.
//
// goaws keeps queues and messages in package-level memory, so every SQS
// of a test binary shares them (CreateQueue makes names unique), and
// Stop then Restart keeps them. That is the outage an SQS consumer
// actually meets: AWS does not lose a queue, but its endpoint can become
// unreachable or refuse connections for a while. What goaws does not
// model: ApproximateReceiveCount stays 1, ChangeMessageVisibilityBatch is
// missing (it answers 400 Bad Request), queue URLs name the host
// region.127.0.0.1 (harmless: the SDK sends every request to Endpoint and
// goaws reads the queue name from the URL's last segment), and it checks
// no signatures.
type SQS struct {
	// Endpoint is the server's URL, for sqs.Options.BaseEndpoint.
	Endpoint string
	// Region is the region test clients sign for.
	Region string
	// Client talks to the server (to create queues, send, inspect). It
	// does not validate message checksums, so tests may send bodies that
	// are not valid UTF-8.
	Client *sqs.Client

	addr string
	tr   *http.Transport

	mu  sync.Mutex
	srv *servertest.Server
}

var (
	quietGoaws sync.Once
	queueSeq   atomic.Int64
)

// StartSQS starts goaws on a free loopback port and stops it, with its
// periodic task, when the test ends.
func StartSQS(t testing.TB) *SQS {
	t.Helper()
	// goaws logs every request and every empty poll at Info and Warning.
	quietGoaws.Do(func() { logrus.SetLevel(logrus.ErrorLevel) })
	var (
		srv  *servertest.Server
		addr string
		err  error
	)
	for range 5 { // the free port may be taken before goaws listens on it
		addr = "127.0.0.1:" + strconv.Itoa(FreePort(t))
		if srv, err = servertest.New(addr); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("start goaws: %v", err)
	}
	quit := make(chan bool)
	ticking := make(chan struct{})
	go func() {
		defer close(ticking)
		// servertest does not start it: without it nothing is redelivered.
		gosqs.PeriodicTasks(100*time.Millisecond, quit)
	}()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	s := &SQS{Endpoint: "http://" + addr, Region: "us-east-1", addr: addr, tr: tr, srv: srv}
	s.Client = sqs.New(sqs.Options{
		Region:                           s.Region,
		BaseEndpoint:                     aws.String(s.Endpoint),
		Credentials:                      credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, ""),
		HTTPClient:                       &http.Client{Transport: tr},
		DisableMessageChecksumValidation: true,
	})
	t.Cleanup(func() {
		close(quit)
		<-ticking
		s.Stop()
	})
	return s
}

// Stop makes the endpoint go away: new connections are refused and
// requests on open ones are cut. Queues and messages are kept.
func (s *SQS) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		s.srv.Quit()
		s.srv = nil
	}
	s.tr.CloseIdleConnections()
}

// Restart brings a stopped endpoint back on the same address, with the
// queues and messages it had.
func (s *SQS) Restart(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return
	}
	// servertest.New rewrites goaws's global environment, which request
	// handlers read under this lock: taking it orders the write after them.
	models.SyncQueues.Lock()
	models.SyncQueues.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for {
		srv, err := servertest.New(s.addr)
		if err == nil {
			s.srv = srv
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("restart goaws on %s: %v", s.addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// CreateQueue creates a queue whose name starts with prefix (made unique
// in this process) and returns its URL.
func (s *SQS) CreateQueue(t testing.TB, prefix string) string {
	t.Helper()
	name := fmt.Sprintf("%s-%d", prefix, queueSeq.Add(1))
	out, err := s.Client.CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: aws.String(name)})
	if err != nil {
		t.Fatalf("create queue %s: %v", name, err)
	}
	return aws.ToString(out.QueueUrl)
}

// Send puts body on the queue as it is (a raw message, as S3, SNS and
// EventBridge send theirs) and returns the message ID.
func (s *SQS) Send(t testing.TB, queueURL, body string) string {
	t.Helper()
	out, err := s.Client.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(queueURL), MessageBody: aws.String(body)})
	if err != nil {
		t.Fatalf("send to %s: %v", queueURL, err)
	}
	return aws.ToString(out.MessageId)
}

// Len is the number of messages on the queue, in flight or not: zero
// once every message sent has been deleted.
func (s *SQS) Len(t testing.TB, queueURL string) int {
	t.Helper()
	out, err := s.Client.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(queueURL), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages},
	})
	if err != nil {
		t.Fatalf("attributes of %s: %v", queueURL, err)
	}
	// goaws counts in-flight messages in ApproximateNumberOfMessages.
	n, err := strconv.Atoi(out.Attributes["ApproximateNumberOfMessages"])
	if err != nil {
		t.Fatalf("attributes of %s: %v", queueURL, err)
	}
	return n
}

// QueuedMessage is what the server holds of one message.
type QueuedMessage struct {
	// InFlight: received and not yet visible again.
	InFlight bool
	// Returned counts the times it became visible again after a receive:
	// its visibility timeout expired, or a consumer set it to zero.
	Returned int
}

// Peek looks at message id on the queue without receiving it; ok is false
// once the message was deleted. It reads goaws's memory: an SQS API has
// no such call.
func (s *SQS) Peek(queueURL, id string) (m QueuedMessage, ok bool) {
	name := queueURL[strings.LastIndexByte(queueURL, '/')+1:]
	models.SyncQueues.RLock()
	defer models.SyncQueues.RUnlock()
	q := models.SyncQueues.Queues[name]
	if q == nil {
		return QueuedMessage{}, false
	}
	for _, msg := range q.Messages {
		if msg.Uuid == id {
			return QueuedMessage{InFlight: msg.ReceiptHandle != "", Returned: msg.Retry}, true
		}
	}
	return QueuedMessage{}, false
}

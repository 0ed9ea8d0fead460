package bedrock

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/embed/bedrock/bedrocktest"
)

func newOnFake(t *testing.T, cfg Config) (*Embedder, *bedrocktest.Server) {
	t.Helper()
	srv := bedrocktest.Start(t, bedrocktest.Options{})
	cfg.Endpoint, cfg.Region = srv.URL, "us-east-1"
	e, err := New(context.Background(), cfg, bedrocktest.Credentials())
	if err != nil {
		t.Fatal(err)
	}
	return e, srv
}

// Embed never sends a request over Bedrock's limits; when one is sent
// anyway (here, bypassing the windows) the ValidationException it earns
// says ErrBatchTooLarge, judged from the request, not the message.
func TestOverLimitIsBatchTooLarge(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		model  string
		pieces []piece
		large  bool
	}{
		{TitanV2, []piece{{text: strings.Repeat("word ", 11000)}}, true}, // 55,000 characters
		{CohereEnglishV3, []piece{{text: "fine"}, {text: strings.Repeat("x", 2049)}}, true},
		{CohereV4, make([]piece, 97), true},
		// Too many tokens for Titan, within its characters: rejected, but
		// nothing in the request says it was too large.
		{TitanV2, []piece{{text: strings.Repeat("a ", 24000)}}, false},
	} {
		e, _ := newOnFake(t, Config{Model: c.model})
		for i := range c.pieces {
			if c.pieces[i].text == "" {
				c.pieces[i].text = "t"
			}
		}
		err := e.call(ctx, c.pieces, searchDocument)
		var invalid *types.ValidationException
		if !errors.As(err, &invalid) || !freshen.IsPermanent(err) {
			t.Errorf("%s: %v, want a permanent ValidationException", c.model, err)
		}
		if got := errors.Is(err, freshen.ErrBatchTooLarge); got != c.large {
			t.Errorf("%s: errors.Is(ErrBatchTooLarge) = %v, want %v: %v", c.model, got, c.large, err)
		}
	}
}

// A request that runs out of Config.Timeout is retryable and does not
// read as the caller's deadline.
func TestRequestTimeout(t *testing.T) {
	e, srv := newOnFake(t, Config{Model: CohereV4, Timeout: 50 * time.Millisecond})
	srv.Fail(bedrocktest.Slow, 1)
	_, err := e.Embed(context.Background(), []string{"x"})
	if !errors.Is(err, errTimeout) || freshen.IsPermanent(err) || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Embed = %v, want a retryable timeout that is not a ctx error", err)
	}
}

func TestWindows(t *testing.T) {
	lim := limits{tokens: 10, chars: 60}
	for _, c := range []struct {
		text string
		want []string
	}{
		{"Short text.", []string{"Short text."}},
		// Sentences are packed whole while they fit (10 tokens: 40 ASCII
		// characters).
		{"One two three. Four five six. Seven eight nine ten eleven. Twelve.",
			[]string{"One two three. Four five six.", "Seven eight nine ten eleven. Twelve."}},
		// A sentence too long is cut between words.
		{"alpha beta gamma delta epsilon zeta eta theta iota kappa lambda",
			[]string{"alpha beta gamma delta epsilon zeta eta", "theta iota kappa lambda"}},
		// A word too long is cut between characters.
		{strings.Repeat("x", 95), []string{strings.Repeat("x", 40), strings.Repeat("x", 40), strings.Repeat("x", 15)}},
		// Line breaks end units; windows are trimmed.
		{"first line here\n\n\n\nsecond line is here\n  third line.",
			[]string{"first line here\n\n\n\nsecond line is here", "third line."}},
		// Characters outside ASCII count a token each, and "。" ends a
		// sentence.
		{"大阪は西。東京都は日本の首都です。", []string{"大阪は西。", "東京都は日本の首都で", "す。"}},
	} {
		got := windows(c.text, lim)
		if strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("windows(%q) = %q, want %q", c.text, got, c.want)
		}
		for _, w := range got {
			if !lim.fits(measure(w)) {
				t.Errorf("window %q does not fit", w)
			}
		}
	}
	// Characters are UTF-16 code units: an emoji counts two.
	emoji := strings.Repeat("🙂", 5)
	if got := windows(emoji, limits{chars: 4}); len(got) != 3 || utf8.RuneCountInString(got[0]) != 2 {
		t.Errorf("windows(5 emoji, 4 UTF-16 units) = %q, want 2+2+1", got)
	}
}

type doFunc func(*http.Request) (*http.Response, error)

func (f doFunc) Do(r *http.Request) (*http.Response, error) { return f(r) }

// net/http must not reach the SDK's body through io.WriterTo, which
// fails once the SDK closed the body (see readOnlyBodies).
func TestRequestBodiesHideWriteTo(t *testing.T) {
	var body io.Reader
	c := readOnlyBodies{doFunc(func(r *http.Request) (*http.Response, error) {
		body = r.Body
		return nil, errors.New("not sent")
	})}
	r, err := http.NewRequest(http.MethodPost, "http://127.0.0.1/", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Body.(io.WriterTo); !ok {
		t.Fatal("the test body should offer WriteTo")
	}
	c.Do(r)
	if _, ok := body.(io.WriterTo); ok || body == nil {
		t.Errorf("the transport got a body with WriteTo (%T)", body)
	}
}

package bedrock

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// family is what differs between the models: request and response
// shapes, dimensions and limits.
type family struct {
	name       string
	cohere     bool
	v4         bool
	dims       []int // allowed Config.Dimensions besides 0
	defaultDim int
	// maxTokens is the model's context window in its own tokens
	// (ModelInfo.MaxTokens).
	maxTokens int
	// perCall is the most texts one request may carry.
	perCall int
	// window bounds one text sent (a whole input, or one window of it).
	window limits
	// callTokens bounds the estimated tokens of one request (0: none).
	callTokens int
	// hardChars is Bedrock's documented limit on one text's characters:
	// a rejected request over it is ErrBatchTooLarge.
	hardChars int
}

// limits bound one window. Tokens are this package's estimate (size.tokens),
// characters are UTF-16 code units, which is never fewer than the code
// points a schema validator counts. Zero means no bound.
type limits struct {
	tokens int
	chars  int
}

func (l limits) fits(z size) bool {
	return (l.tokens == 0 || z.tokens() <= l.tokens) && (l.chars == 0 || z.utf16 <= l.chars)
}

var (
	// Titan v2 accepts 8,192 of its tokens and 50,000 characters. Its
	// tokens are not knowable here, so windows hold half the token window
	// by the estimate: an input would need fewer than two bytes a token
	// (base64 does not) to overflow. Over the limit Titan fails, it does
	// not truncate.
	titanV2 = &family{
		name: "titan-embed-text-v2", dims: []int{256, 512, 1024}, defaultDim: 1024,
		maxTokens: 8192, perCall: 1,
		window:    limits{tokens: 4096, chars: 50000},
		hardChars: 50000,
	}
	// Cohere v3 on Bedrock rejects a text over 2,048 characters (the
	// "END" truncation applies only below that, to the model's 512-token
	// window), so longer texts are windowed at 2,048 characters and 512
	// estimated tokens. "END" stays in the request as a last resort: a
	// window whose real tokens exceed 512 loses its tail instead of
	// failing.
	cohereV3 = &family{
		name: "cohere-embed-v3", cohere: true, dims: []int{1024}, defaultDim: 1024,
		maxTokens: 512, perCall: 96,
		window:    limits{tokens: 512, chars: 2048},
		hardChars: 2048,
	}
	// Cohere v4 reads about 128k tokens; windows and requests hold half
	// of that by the estimate, like Titan's.
	cohereV4 = &family{
		name: "cohere-embed-v4", cohere: true, v4: true, dims: []int{256, 512, 1024, 1536}, defaultDim: 1536,
		maxTokens: 128000, perCall: 96,
		window:     limits{tokens: 64000},
		callTokens: 64000,
	}
)

// familyOf recognizes a model ID, inference profile ID ("us.cohere…") or
// ARN that names one of the supported models.
func familyOf(model string) *family {
	switch {
	case strings.Contains(model, "amazon.titan-embed-text-v2"):
		return titanV2
	case strings.Contains(model, "cohere.embed-v4"):
		return cohereV4
	case strings.Contains(model, "cohere.embed-english-v3"), strings.Contains(model, "cohere.embed-multilingual-v3"):
		return cohereV3
	}
	return nil
}

// overLimit says why texts, as one request, break one of Bedrock's
// documented limits, or "" if they do not.
func (f *family) overLimit(texts []string) string {
	if len(texts) > f.perCall {
		return fmt.Sprintf("%d texts, the limit is %d", len(texts), f.perCall)
	}
	if f.hardChars > 0 {
		for i, t := range texts {
			if n := utf8.RuneCountInString(t); n > f.hardChars {
				return fmt.Sprintf("text %d has %d characters, the limit is %d", i, n, f.hardChars)
			}
		}
	}
	return ""
}

// Cohere input types.
const (
	searchDocument = "search_document"
	searchQuery    = "search_query"
)

type titanRequest struct {
	InputText  string `json:"inputText"`
	Dimensions int    `json:"dimensions"`
	Normalize  bool   `json:"normalize"`
}

type titanResponse struct {
	Embedding           []float32 `json:"embedding"`
	InputTextTokenCount int       `json:"inputTextTokenCount"`
}

type cohereRequest struct {
	Texts           []string `json:"texts"`
	InputType       string   `json:"input_type"`
	Truncate        string   `json:"truncate"`
	EmbeddingTypes  []string `json:"embedding_types,omitempty"`
	OutputDimension int      `json:"output_dimension,omitempty"`
}

// body is the InvokeModel body for texts. outDim is the requested
// dimension (0: the model's default, not sent to Cohere).
func (f *family) body(texts []string, inputType string, dim, outDim int) ([]byte, error) {
	if !f.cohere {
		return json.Marshal(titanRequest{InputText: texts[0], Dimensions: dim, Normalize: true})
	}
	req := cohereRequest{Texts: texts, InputType: inputType, Truncate: "END"}
	if f.v4 {
		req.EmbeddingTypes = []string{"float"}
		req.OutputDimension = outDim
	}
	return json.Marshal(req)
}

// errShape reports a response that parsed but is not the answer to the
// request (wrong count, missing vectors): permanent.
var errShape = errors.New("response does not match the request")

// parse returns the vectors of a response body and, for Titan, the
// tokens it reports (0 when it does not say).
func (f *family) parse(body []byte) ([][]float32, int, error) {
	if !f.cohere {
		var r titanResponse
		if err := json.Unmarshal(body, &r); err != nil {
			return nil, 0, err
		}
		if r.Embedding == nil {
			return nil, r.InputTextTokenCount, nil
		}
		return [][]float32{r.Embedding}, r.InputTextTokenCount, nil
	}
	var r struct {
		Embeddings json.RawMessage `json:"embeddings"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, 0, err
	}
	raw := bytes.TrimSpace(r.Embeddings)
	switch {
	case len(raw) == 0 || bytes.Equal(raw, []byte("null")):
		return nil, 0, nil
	case raw[0] == '[': // v3: "embeddings": [[...], ...]
		var vecs [][]float32
		err := json.Unmarshal(raw, &vecs)
		return vecs, 0, err
	case raw[0] == '{': // by type (v4): "embeddings": {"float": [[...], ...]}
		var byType struct {
			Float [][]float32 `json:"float"`
		}
		err := json.Unmarshal(raw, &byType)
		return byType.Float, 0, err
	}
	return nil, 0, fmt.Errorf("%w: embeddings is neither an array nor an object", errShape)
}

// size measures text additively, so windows can be packed without
// measuring them again.
type size struct {
	ascii, other, utf16 int
}

func measure(s string) size {
	var z size
	for _, r := range s {
		z = z.plus(runeSize(r))
	}
	return z
}

func runeSize(r rune) size {
	switch {
	case r < utf8.RuneSelf:
		return size{ascii: 1, utf16: 1}
	case r > 0xFFFF:
		return size{other: 1, utf16: 2}
	}
	return size{other: 1, utf16: 1}
}

func (z size) plus(o size) size {
	return size{z.ascii + o.ascii, z.other + o.other, z.utf16 + o.utf16}
}

// tokens is the package's token estimate: four ASCII characters a token
// (Cohere's own rule of thumb; Titan counts about 4.5–5 on English prose)
// and one token for every other character (CJK runs about one a
// character; accented Latin is overcounted).
func (z size) tokens() int {
	return (z.ascii+3)/4 + z.other
}

// fitsDim reports whether allowed lists d.
func (f *family) fitsDim(d int) bool { return d == 0 || slices.Contains(f.dims, d) }

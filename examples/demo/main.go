// Command demo shows freshen end to end on this machine: it starts
// `freshen run` and a real S3-compatible server (versitygw) whose event
// notifications go to freshen, uploads the sample corpus, searches, edits a
// document and shows the new answer arriving within seconds, then stays up.
// Run it through ./scripts/demo.sh, which installs and builds what it needs.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

const (
	accessKey = "freshen-demo"
	secretKey = "freshen-demo-secret"
	bucket    = "docs"
)

func main() {
	freshenBin := flag.String("freshen", "bin/freshen", "freshen binary")
	gwBin := flag.String("versitygw", "versitygw", "versitygw binary")
	corpus := flag.String("corpus", "examples/corpus", "documents to upload")
	dir := flag.String("dir", ".demo", "working directory (reset on every run)")
	apiPort := flag.Int("port", 8080, "freshen's HTTP port")
	s3Port := flag.Int("s3-port", 7070, "versitygw's port")
	exitAfter := flag.Bool("exit", false, "stop after the walkthrough instead of staying up")
	flag.Parse()
	log.SetFlags(0)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *freshenBin, *gwBin, *corpus, *dir, *apiPort, *s3Port, *exitAfter); err != nil {
		log.Fatalf("demo: %v", err)
	}
}

func say(format string, args ...any) { fmt.Printf("\033[1m==> "+format+"\033[0m\n", args...) }

func run(ctx context.Context, freshenBin, gwBin, corpus, dir string, apiPort, s3Port int, exitAfter bool) error {
	for _, port := range []int{apiPort, s3Port} {
		if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err != nil {
			return fmt.Errorf("port %d is busy (is a demo already running?): pick others with --port and --s3-port", port)
		} else {
			l.Close()
		}
	}
	os.RemoveAll(dir)
	for _, d := range []string{"s3/root", "s3/versions", "freshen"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	api := fmt.Sprintf("http://127.0.0.1:%d", apiPort)
	endpoint := fmt.Sprintf("http://127.0.0.1:%d", s3Port)
	cfgPath := filepath.Join(dir, "freshen.yaml")
	cfg := fmt.Sprintf(`# written by the demo
source:
  bucket: %s
  endpoint: %s
  path-style: true
data-dir: freshen
listen: 127.0.0.1:%d
reconcile-interval: 30s
`, bucket, endpoint, apiPort)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return err
	}
	env := append(os.Environ(), "AWS_ACCESS_KEY_ID="+accessKey, "AWS_SECRET_ACCESS_KEY="+secretKey, "AWS_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true")

	// freshen first: versitygw sends a test event at start and exits if
	// nobody answers.
	say("starting freshen run (API %s, log %s)", api, filepath.Join(dir, "freshen.log"))
	fr, err := start(freshenBin, env, filepath.Join(dir, "freshen.log"), "run", "--config", cfgPath, "-v")
	if err != nil {
		return err
	}
	defer stopProcess(fr)
	if err := waitPort(ctx, apiPort); err != nil {
		return fmt.Errorf("freshen did not start (see %s): %w", filepath.Join(dir, "freshen.log"), err)
	}
	say("starting versitygw (S3 at %s, event notifications → %s/v1/events/s3)", endpoint, api)
	root, _ := filepath.Abs(filepath.Join(dir, "s3/root"))
	vers, _ := filepath.Abs(filepath.Join(dir, "s3/versions"))
	gw, err := start(gwBin, env, filepath.Join(dir, "versitygw.log"), "--port", fmt.Sprintf("127.0.0.1:%d", s3Port),
		"--access", accessKey, "--secret", secretKey, "--quiet", "--event-webhook-url", api+"/v1/events/s3",
		"posix", "--versioning-dir", vers, root)
	if err != nil {
		return err
	}
	defer stopProcess(gw)
	if err := waitPort(ctx, s3Port); err != nil {
		return fmt.Errorf("versitygw did not start (see %s): %w", filepath.Join(dir, "versitygw.log"), err)
	}

	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion("us-east-1"),
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(accessKey, secretKey, "")))
	if err != nil {
		return err
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) { o.BaseEndpoint = aws.String(endpoint); o.UsePathStyle = true })
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		return fmt.Errorf("create bucket: %w", err)
	}

	// Upload the corpus.
	var keys []string
	start := time.Now()
	err = filepath.WalkDir(corpus, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.EqualFold(d.Name(), "LICENSE.md") {
			return err
		}
		key, _ := filepath.Rel(corpus, path)
		body, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		keys = append(keys, key)
		return put(ctx, client, key, body)
	})
	if err != nil {
		return err
	}
	say("uploaded %d documents to s3://%s; freshen embeds them as the events arrive", len(keys), bucket)
	if err := waitIdle(ctx, api, len(keys), start); err != nil {
		return err
	}
	st := status(api)
	say("all %d documents searchable after %s: %d chunks, %d tokens embedded by the built-in model",
		st.Objects, time.Since(start).Round(100*time.Millisecond), st.Chunks, st.TokensEmbedded)

	q := "How many days per week may employees work remotely?"
	say("search: %q", q)
	printHits(search(api, q, 3))

	// Edit one sentence of one document and watch the answer change.
	const key = "handbook/remote-work.md"
	old, err := os.ReadFile(filepath.Join(corpus, key))
	if err != nil {
		return err
	}
	edited := strings.Replace(string(old), "up to three days per week", "up to four days per week", 1)
	if edited == string(old) {
		return fmt.Errorf("%s no longer contains the sentence the demo edits", key)
	}
	before := status(api)
	say("editing %s: \"up to three days per week\" → \"up to four days per week\"", key)
	t0 := time.Now()
	if err := put(ctx, client, key, []byte(edited)); err != nil {
		return err
	}
	for {
		hits := search(api, q, 3)
		if hasHit(hits, key, "up to four days per week") {
			say("the new answer is searchable %s after the PUT:", time.Since(t0).Round(time.Millisecond))
			printHits(hits)
			break
		}
		if time.Since(t0) > 30*time.Second {
			return fmt.Errorf("the edit did not become searchable within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	after := status(api)
	say("that edit re-embedded %d chunk(s); the other %d chunks of the corpus were not touched",
		after.ChunksEmbedded-before.ChunksEmbedded, after.Chunks-int(after.ChunksEmbedded-before.ChunksEmbedded))

	fmt.Printf(`
freshen is running on the demo bucket.

  Dashboard: %[1]s/  (open it in a browser: freshness, cost, newest objects, search)

Try:

  curl -s '%[1]s/v1/search?q=e-bike+battery+range&k=3' | jq .
  curl -s %[1]s/v1/status | jq .
  curl -s %[1]s/v1/objects/products/harbor-commuter-3.md | jq .
  curl -s %[1]s/metrics | grep ^freshen_
  %[2]s search --config %[3]s "returns and refunds"
  %[2]s status --config %[3]s

S3 endpoint %[4]s (bucket %[5]q, access key %[6]q, secret %[7]q): upload, edit or delete
documents with any S3 client and search again. Logs: %[8]s
Press Ctrl-C to stop.
`, api, freshenBin, cfgPath, endpoint, bucket, accessKey, secretKey, filepath.Join(dir, "freshen.log"))
	if exitAfter {
		return nil
	}
	<-ctx.Done()
	say("stopping")
	return nil
}

func put(ctx context.Context, c *s3.Client, key string, body []byte) error {
	ct := mime.TypeByExtension(filepath.Ext(key))
	if strings.HasSuffix(key, ".md") {
		ct = "text/markdown"
	}
	in := &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(string(body))}
	if ct != "" {
		in.ContentType = aws.String(ct)
	}
	_, err := c.PutObject(ctx, in)
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

func start(bin string, env []string, logPath string, args ...string) (*exec.Cmd, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	return cmd, nil
}

func stopProcess(cmd *exec.Cmd) {
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
	}
}

func waitPort(ctx context.Context, port int) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("nothing listening on port %d after 20s", port)
}

type statusJSON struct {
	Objects        int   `json:"objects"`
	Chunks         int   `json:"chunks"`
	ChunksEmbedded int64 `json:"chunks_embedded"`
	TokensEmbedded int64 `json:"tokens_embedded"`
	Backlog        int   `json:"backlog"`
	SkippedTotal   int   `json:"skipped_total"`
	FailedTotal    int   `json:"failed_total"`
}

func status(api string) statusJSON {
	var s statusJSON
	getJSON(api+"/v1/status", &s)
	return s
}

// waitIdle waits until every uploaded document is accounted for and the
// backlog is empty, printing progress.
func waitIdle(ctx context.Context, api string, n int, start time.Time) error {
	last := -1
	for {
		s := status(api)
		done := s.Objects + s.SkippedTotal + s.FailedTotal
		if done != last {
			fmt.Printf("\r   %d/%d documents indexed, %d chunks embedded, backlog %d   ", done, n, s.ChunksEmbedded, s.Backlog)
			last = done
		}
		if done >= n && s.Backlog == 0 {
			fmt.Println()
			return nil
		}
		if time.Since(start) > 10*time.Minute {
			return fmt.Errorf("the corpus was not indexed within 10 minutes")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// hasHit reports whether key is among hits with a chunk containing text.
func hasHit(hits []hit, key, text string) bool {
	for _, h := range hits {
		if h.Key == key && strings.Contains(h.Text, text) {
			return true
		}
	}
	return false
}

type hit struct {
	Key      string   `json:"key"`
	Score    float64  `json:"score"`
	Text     string   `json:"text"`
	Headings []string `json:"headings"`
}

func search(api, q string, k int) []hit {
	var hits []hit
	getJSON(fmt.Sprintf("%s/v1/search?q=%s&k=%d", api, url.QueryEscape(q), k), &hits)
	return hits
}

func printHits(hits []hit) {
	for i, h := range hits {
		trail := ""
		if len(h.Headings) > 0 {
			trail = " › " + strings.Join(h.Headings, " › ")
		}
		text := strings.Join(strings.Fields(h.Text), " ")
		if r := []rune(text); len(r) > 160 {
			text = string(r[:160]) + "…"
		}
		fmt.Printf("   %d. %.3f  %s%s\n      %s\n", i+1, h.Score, h.Key, trail, text)
	}
}

func getJSON(u string, v any) {
	resp, err := http.Get(u)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	json.Unmarshal(b, v)
}

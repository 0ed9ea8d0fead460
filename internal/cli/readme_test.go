package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestREADMEConfigExamples: every configuration example in the README
// passes `freshen config check` as printed (with the key variable the
// README says to export).
func TestREADMEConfigExamples(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	examples := regexp.MustCompile("(?s)<!-- config-example: ([a-z]+) -->\n```yaml\n(.*?)```").FindAllStringSubmatch(string(readme), -1)
	seen := map[string]bool{}
	t.Setenv("OPENAI_API_KEY", "sk-example")
	t.Setenv("AZURE_OPENAI_API_KEY", "example")
	for _, ex := range examples {
		name, body := ex[1], ex[2]
		seen[name] = true
		file := filepath.Join(t.TempDir(), name+".yaml")
		os.WriteFile(file, []byte(body), 0o644)
		code, out, errs := run(t, "config", "check", "--config", file)
		if code != 0 || !strings.Contains(out, "configuration OK") {
			t.Errorf("README example %q: exit %d\n%s\n%s", name, code, out, errs)
		}
	}
	for _, want := range []string{"openai", "azure", "ollama", "tei", "bedrock", "simulator", "pgvector", "weaviate"} {
		if !seen[want] {
			t.Errorf("README has no %q configuration example", want)
		}
	}
}

package e2e

import (
	"fmt"
	"math/rand"
	"strings"
)

var words = strings.Fields(`river mountain budget invoice server cluster garden recipe
	harbor engine customer market schedule library window winter summer lantern
	orchard bridge valley protocol contract meeting journey harvest signal circuit
	forest village kitchen painting melody planet theory student teacher hospital
	railway airport factory battery camera language history science weather ocean
	desert island castle festival museum theater election currency software network`)

// paragraph makes a plausible sentence-y paragraph of n words.
func paragraph(r *rand.Rand, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		w := words[r.Intn(len(words))]
		if i == 0 || b.String()[b.Len()-1] == '.' {
			w = strings.ToUpper(w[:1]) + w[1:]
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(w)
		if r.Intn(9) == 0 || i == n-1 {
			b.WriteByte('.')
		}
	}
	return b.String()
}

// markdownDoc makes a document with sections of paragraphs.
func markdownDoc(seed int64, sections, paras int) string {
	r := rand.New(rand.NewSource(seed))
	var b strings.Builder
	fmt.Fprintf(&b, "# Document %d\n\n", seed)
	for s := 0; s < sections; s++ {
		fmt.Fprintf(&b, "## Section %d: %s %s\n\n", s+1, words[r.Intn(len(words))], words[r.Intn(len(words))])
		for p := 0; p < paras; p++ {
			b.WriteString(paragraph(r, 30+r.Intn(60)))
			b.WriteString("\n\n")
		}
	}
	return b.String()
}

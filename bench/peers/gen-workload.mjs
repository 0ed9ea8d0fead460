#!/usr/bin/env node
// Generates a synthetic workload in run.mjs's format, for local timing of the
// peers (the real workloads are written by the Go side).
//
//   node gen-workload.mjs [--docs 300] [--kb 20 | --kb 1-200] [--steps 40] [--seed 1] > /tmp/workload.json
//
// --kb N gives every document about N KB of text; --kb A-B draws sizes
// log-uniformly between A and B KB. Steps cycle through all edit kinds.

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (i < 0) return def;
  return args[i].includes("=") ? args[i].split("=")[1] : args[i + 1];
};
const nDocs = Number(opt("docs", 300));
const kb = String(opt("kb", "20"));
const nSteps = Number(opt("steps", 40));
let seed = Number(opt("seed", 1)) >>> 0 || 1;

const rnd = () => {
  seed ^= seed << 13; seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5; seed >>>= 0;
  return seed / 0x100000000;
};
const pick = (a) => a[Math.floor(rnd() * a.length)];
const WORDS = ("the of and to in is that for it as with was on be by this are from or an at which not have has but can also more use " +
  "when data index file value one all their will each into only other new some time these may bucket object vector chunk embed store " +
  "request response cache layer query model token service update delete version config cluster region replica shard latency").split(" ");
const sentence = () => {
  const n = 6 + Math.floor(rnd() * 20);
  const w = Array.from({ length: n }, () => pick(WORDS));
  if (rnd() < 0.15) w.splice(Math.floor(rnd() * n), 0, String(Math.floor(rnd() * 5000)));
  const s = w.join(" ");
  return s[0].toUpperCase() + s.slice(1) + (rnd() < 0.1 ? "?" : ".");
};
const paragraph = () => Array.from({ length: 2 + Math.floor(rnd() * 6) }, sentence).join(" ");
const heading = () => `Section ${Math.floor(rnd() * 100)}: ${pick(WORDS)} ${pick(WORDS)}`;
const docText = (bytes) => {
  const p = [heading()];
  let n = p[0].length;
  while (n < bytes) {
    const x = rnd() < 0.08 ? heading() : paragraph();
    p.push(x);
    n += x.length + 2;
  }
  return p.join("\n\n");
};
const sizeBytes = () => {
  if (kb.includes("-")) {
    const [a, b] = kb.split("-").map(Number);
    return Math.round(1024 * Math.exp(Math.log(a) + rnd() * (Math.log(b) - Math.log(a))));
  }
  return Math.round(Number(kb) * 1024 * (0.9 + rnd() * 0.2));
};

const corpus = new Map();
const docs = [];
for (let i = 0; i < nDocs; i++) {
  const key = `docs/guide-${String(i + 1).padStart(3, "0")}.md`;
  const text = docText(sizeBytes());
  corpus.set(key, text);
  docs.push({ key, text });
}

const KINDS = ["typo", "insert-top", "insert-middle", "insert-end", "delete-paragraph", "move-section", "append-section",
  "metadata-only", "identical-reupload", "rename", "duplicate"];
const paras = (t) => t.split("\n\n");
let fresh = 0;
const steps = [];
for (let s = 0; s < nSteps; s++) {
  const kind = KINDS[s % KINDS.length];
  const key = pick([...corpus.keys()]);
  const text = corpus.get(key);
  const p = paras(text);
  const at = Math.floor(rnd() * p.length);
  let ops;
  const put = (t) => [{ op: "put", key, text: t }];
  switch (kind) {
    case "typo": {
      const i = p.findIndex((x, j) => j >= at && x.length > 20);
      const j = i < 0 ? p.findIndex((x) => x.length > 20) : i;
      const pos = 5 + Math.floor(rnd() * (p[j].length - 10));
      p[j] = p[j].slice(0, pos) + p[j][pos + 1] + p[j][pos] + p[j].slice(pos + 2);
      ops = put(p.join("\n\n"));
      break;
    }
    case "insert-top": ops = put([paragraph(), ...p].join("\n\n")); break;
    case "insert-middle": p.splice(Math.floor(p.length / 2), 0, paragraph()); ops = put(p.join("\n\n")); break;
    case "insert-end": ops = put([...p, paragraph()].join("\n\n")); break;
    case "delete-paragraph": if (p.length > 1) p.splice(at, 1); ops = put(p.join("\n\n")); break;
    case "move-section": {
      const len = Math.max(1, Math.min(5, Math.floor(p.length / 4)));
      const from = Math.floor(rnd() * Math.max(1, p.length - len));
      const block = p.splice(from, len);
      const to = Math.floor(rnd() * (p.length + 1));
      p.splice(to, 0, ...block);
      ops = put(p.join("\n\n"));
      break;
    }
    case "append-section": ops = put([...p, heading(), paragraph(), paragraph(), paragraph()].join("\n\n")); break;
    case "metadata-only":
    case "identical-reupload": ops = put(text); break;
    case "rename": {
      const nk = `docs/renamed-${++fresh}.md`;
      ops = [{ op: "put", key: nk, text }, { op: "delete", key }];
      corpus.delete(key);
      corpus.set(nk, text);
      break;
    }
    case "duplicate": {
      const nk = `docs/copy-${++fresh}.md`;
      ops = [{ op: "put", key: nk, text }];
      corpus.set(nk, text);
      break;
    }
  }
  for (const o of ops) if (o.op === "put") corpus.set(o.key, o.text);
  steps.push({ kind, ops });
}

process.stdout.write(JSON.stringify({ docs, steps }));

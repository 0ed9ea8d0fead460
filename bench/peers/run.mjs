#!/usr/bin/env node
// Side-by-side peers for freshen's benchmarks: replays a workload (initial
// corpus + edit steps) through LangChain.js's indexing API and LlamaIndex.TS's
// IngestionPipeline, counting every text that reaches the embedder.
//
//   node run.mjs WORKLOAD.json [--tool langchain|llamaindex|all] > RESULT.json
//   node run.mjs --selftest
//
// See README.md for what is measured and how each tool is configured.
// stdout carries only the result JSON; progress and warnings go to stderr.

import { existsSync, readFileSync } from "node:fs";
import { register } from "node:module";
import { delimiter, dirname, join, resolve as resolvePath, basename } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { randomUUID } from "node:crypto";

// Libraries sometimes log with console.log/info; keep stdout clean for the JSON.
for (const m of ["log", "info", "debug", "warn"]) console[m] = (...a) => console.error(...a);

const HERE = dirname(fileURLToPath(import.meta.url));
const PINNED = JSON.parse(readFileSync(join(HERE, "package.json"), "utf8")).dependencies;

// ---------------------------------------------------------------------------
// Module resolution: ./node_modules (plain `npm ci` here) or a cache dir.
// FRESHEN_PEERS_NODE_MODULES (or a NODE_PATH entry) may name either a
// node_modules directory or the directory that contains it (the --prefix of
// `npm ci`). If set, it takes precedence over ./node_modules.
// ---------------------------------------------------------------------------
function findModulesDir() {
  const asNodeModules = (p) => {
    if (!p) return null;
    p = resolvePath(p);
    if (existsSync(join(p, "node_modules", "llamaindex")) || existsSync(join(p, "node_modules", "@langchain"))) return join(p, "node_modules");
    if (existsSync(join(p, "llamaindex")) || existsSync(join(p, "@langchain"))) return p;
    return null;
  };
  const env = process.env.FRESHEN_PEERS_NODE_MODULES;
  if (env) {
    const d = asNodeModules(env);
    if (!d) throw new Error(`FRESHEN_PEERS_NODE_MODULES=${env}: no installed peers found there (run npm ci with this package.json/package-lock.json)`);
    return { dir: d, local: d === join(HERE, "node_modules") };
  }
  const local = join(HERE, "node_modules");
  if (asNodeModules(local)) return { dir: local, local: true };
  for (const p of (process.env.NODE_PATH || "").split(delimiter)) {
    const d = asNodeModules(p);
    if (d) return { dir: d, local: false };
  }
  throw new Error(`no node_modules with the peers found: run \`npm ci --no-audit --no-fund\` in ${HERE}, or set FRESHEN_PEERS_NODE_MODULES to the node_modules of a cache dir`);
}

let MODULES;
try {
  MODULES = findModulesDir();
} catch (e) {
  console.error(`run.mjs: ${e.message}`);
  process.exit(1);
}
if (!MODULES.local) {
  // ESM ignores NODE_PATH; retry failed bare imports as if made from inside the cache dir.
  const base = pathToFileURL(join(dirname(MODULES.dir), "__freshen_peers__.mjs")).href;
  const hook = `
let base;
export async function initialize(d) { base = d.base; }
export async function resolve(spec, ctx, next) {
  try { return await next(spec, ctx); }
  catch (e) {
    if (e && e.code === "ERR_MODULE_NOT_FOUND" && !/^[./]|^[a-z]+:/i.test(spec)) return next(spec, { ...ctx, parentURL: base });
    throw e;
  }
}`;
  register("data:text/javascript," + encodeURIComponent(hook), { data: { base } });
}

function installedVersion(pkg) {
  try {
    return JSON.parse(readFileSync(join(MODULES.dir, pkg, "package.json"), "utf8")).version;
  } catch {
    return "unknown";
  }
}

// ---------------------------------------------------------------------------
// The shared counting embedder (one design for both tools).
// ---------------------------------------------------------------------------
const DIM = 8;
const tokensOf = (t) => Math.ceil([...t].length / 4);

function hashVector(text) {
  // FNV-1a over UTF-16 code units, then an xorshift stream for 8 dimensions.
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  let s = (h ^ 0x9e3779b9) >>> 0 || 1;
  const v = new Array(DIM);
  let norm = 0;
  for (let i = 0; i < DIM; i++) {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    v[i] = s / 0xffffffff - 0.5;
    norm += v[i] * v[i];
  }
  norm = Math.sqrt(norm) || 1;
  return v.map((x) => x / norm);
}

class CountingEmbedder {
  constructor() {
    this.bucket = "initial";
    this.buckets = new Map();
    this.texts = 0; // running totals, used for per-call sanity checks
    this.tokens = 0;
  }
  embed(texts, path) {
    let b = this.buckets.get(this.bucket);
    if (!b) this.buckets.set(this.bucket, (b = { texts: 0, tokens: 0, paths: {} }));
    for (const t of texts) {
      const k = tokensOf(t);
      b.texts++; b.tokens += k;
      this.texts++; this.tokens += k;
    }
    b.paths[path] = (b.paths[path] || 0) + texts.length;
    return texts.map(hashVector);
  }
}

// ---------------------------------------------------------------------------
// LangChain.js: index() + InMemoryRecordManager + a minimal deletable store.
// ---------------------------------------------------------------------------
async function makeLangChain(counter, opts) {
  const { index } = await import("@langchain/core/indexing");
  const { VectorStore } = await import("@langchain/core/vectorstores");
  const { Embeddings } = await import("@langchain/core/embeddings");
  const { Document } = await import("@langchain/core/documents");
  const { RecursiveCharacterTextSplitter } = await import("@langchain/textsplitters");
  const { InMemoryRecordManager } = await import("@langchain/community/indexes/memory");

  class CountingEmbeddings extends Embeddings {
    constructor() { super({}); }
    async embedDocuments(texts) { return counter.embed(texts, "embedDocuments"); }
    async embedQuery(text) { return counter.embed([text], "embedQuery")[0]; }
  }

  // MemoryVectorStore has no delete(); this is the smallest store index() can use.
  class DeletableMemoryVectorStore extends VectorStore {
    constructor(embeddings) { super(embeddings, {}); this.records = new Map(); }
    _vectorstoreType() { return "freshen-bench-memory"; }
    async addDocuments(documents, options) {
      const vectors = await this.embeddings.embedDocuments(documents.map((d) => d.pageContent));
      return this.addVectors(vectors, documents, options);
    }
    async addVectors(vectors, documents, options = {}) {
      const ids = options.ids ?? documents.map(() => randomUUID());
      documents.forEach((d, i) => this.records.set(ids[i], { vector: vectors[i], pageContent: d.pageContent, metadata: d.metadata }));
      return ids;
    }
    async delete(params = {}) {
      for (const id of params.ids ?? []) this.records.delete(id);
    }
    async similaritySearchVectorWithScore(query, k, filter) {
      const scored = [];
      for (const r of this.records.values()) {
        if (typeof filter === "function" && !filter(r)) continue;
        let dot = 0;
        for (let i = 0; i < query.length; i++) dot += query[i] * r.vector[i];
        scored.push([new Document({ pageContent: r.pageContent, metadata: r.metadata }), dot]);
      }
      return scored.sort((a, b) => b[1] - a[1]).slice(0, k);
    }
  }

  // InMemoryRecordManager stamps records with Date.now() (ms) and listKeys()
  // treats `updatedAt <= before` as stale, so a record written in the same
  // millisecond index() started is deleted right after being added. A strictly
  // increasing clock restores the intended semantics (SQL record managers use
  // the database clock at µs resolution).
  class MonotonicInMemoryRecordManager extends InMemoryRecordManager {
    last = 0;
    async getTime() {
      const now = Date.now();
      this.last = now > this.last ? now : this.last + 1;
      return this.last;
    }
  }

  const notes = [];
  const embeddings = new CountingEmbeddings();
  const vectorStore = new DeletableMemoryVectorStore(embeddings);
  const recordManager = opts.lcRawClock ? new InMemoryRecordManager() : new MonotonicInMemoryRecordManager();
  await recordManager.createSchema();
  const splitter = new RecursiveCharacterTextSplitter({ chunkSize: 1000, chunkOverlap: 200 });
  const stats = { numAdded: 0, numUpdated: 0, numSkipped: 0, numDeleted: 0, indexCalls: 0, directDeletes: 0 };
  let mismatch = 0;

  notes.push(
    "RecursiveCharacterTextSplitter({chunkSize: 1000, chunkOverlap: 200}); index({cleanup: 'incremental', sourceIdKey: 'source'}) called once per put with that key's chunks.",
    "chunks = splitter.createDocuments([text], [{source: key}]) (metadata source + the splitter's loc.lines). loc.lines does not reach the record key: _HashedDocument hashes metadata with JSON.stringify(metadata, sortedTopLevelKeys), whose replacer array drops nested keys, so shifted line numbers do not cause re-embeds.",
    opts.lcBatchSize
      ? `index() batchSize = ${opts.lcBatchSize}; with incremental cleanup, chunks of one source past the first batch are deleted by the first batch's cleanup and re-embedded on every put (langchain-ai/langchain#32612).`
      : "index() batchSize = max(100, chunks of the document) so each put is one batch: with the default 100, incremental cleanup after the first batch deletes the same source's later (unchanged) chunks and they are re-embedded on every put (langchain-ai/langchain#32612); use --lc-batch-size 100 to measure the default.",
    opts.lcRawClock
      ? "record manager: stock InMemoryRecordManager clock (ms, `<=` staleness) — results may include same-millisecond self-deletion."
      : "record manager: InMemoryRecordManager subclassed only to make getTime() strictly increasing (stock ms clock + `updatedAt <= before` deletes records written in the same millisecond index() started).",
    "delete of a key: LangChain has no incremental 'source removed' path, so recordManager.listKeys({groupIds: [key]}) -> vectorStore.delete({ids}) -> recordManager.deleteKeys(keys) (what index()'s cleanup does internally); embeds nothing.",
  );

  const chunksOf = (key, text) => splitter.createDocuments([text], [{ source: key }]);

  async function del(key) {
    const keys = await recordManager.listKeys({ groupIds: [key] });
    if (keys.length > 0) {
      await vectorStore.delete({ ids: keys });
      await recordManager.deleteKeys(keys);
    }
    stats.directDeletes++;
    return keys.length;
  }

  let emptyNoted = false;
  async function put(key, text) {
    const docs = await chunksOf(key, text);
    if (docs.length === 0) {
      // index([]) runs no batch and so no incremental cleanup: treat as a delete.
      if (!emptyNoted) notes.push("a put with text that splits to no chunks is applied as a delete (index() with no documents performs no incremental cleanup).");
      emptyNoted = true;
      return del(key);
    }
    const before = counter.texts;
    const res = await index({
      docsSource: docs,
      recordManager,
      vectorStore,
      options: {
        cleanup: "incremental",
        sourceIdKey: "source",
        batchSize: opts.lcBatchSize || Math.max(100, docs.length),
      },
    });
    stats.indexCalls++;
    for (const k of ["numAdded", "numUpdated", "numSkipped", "numDeleted"]) stats[k] += res[k];
    const embedded = counter.texts - before;
    if (embedded !== res.numAdded + res.numUpdated && mismatch++ < 3) {
      notes.push(`sanity: index() for ${key} reported numAdded=${res.numAdded} numUpdated=${res.numUpdated} but ${embedded} texts were embedded`);
    }
    return res;
  }

  async function verify(corpus) {
    // The store must hold exactly the (deduplicated) chunks of the final corpus.
    const have = new Map();
    for (const r of vectorStore.records.values()) {
      const s = r.metadata.source;
      if (!have.has(s)) have.set(s, new Set());
      have.get(s).add(r.pageContent);
    }
    const problems = [];
    for (const [key, text] of corpus) {
      const want = new Set((await chunksOf(key, text)).map((d) => d.pageContent));
      const got = have.get(key) || new Set();
      const ok = want.size === got.size && [...want].every((c) => got.has(c));
      if (!ok) problems.push(`${key}: store has ${got.size} distinct chunks, expected ${want.size}`);
      have.delete(key);
    }
    for (const [key, got] of have) problems.push(`${key}: ${got.size} chunks left for a key not in the final corpus`);
    const rmKeys = (await recordManager.listKeys()).length;
    if (rmKeys !== vectorStore.records.size) problems.push(`record manager has ${rmKeys} keys, vector store ${vectorStore.records.size} records`);
    return { problems, vectors: vectorStore.records.size };
  }

  return {
    name: "langchain",
    version: {
      "@langchain/core": installedVersion("@langchain/core"),
      "@langchain/textsplitters": installedVersion("@langchain/textsplitters"),
      "@langchain/community": installedVersion("@langchain/community"),
    },
    put, del, verify, notes,
    extra: () => ({ index_results: stats }),
  };
}

// LlamaIndex.TS 0.12.1's SentenceSplitter runs a sentence tokenizer (vendored
// from `natural`) over the whole document when it has no "\n\n\n" paragraph
// breaks. Its revertReplacements/revertDelimiters loop over every placeholder
// of the document for every sentence, building a RegExp each time: O(sentences
// x placeholders), ~10 s for one 200 KB document. This swaps in single-pass
// versions with identical output (any text containing "{{" or a replacement
// value containing "$" falls back to the original methods); the self-test
// compares both on sample texts. --li-no-speedup disables it.
// The class is not exported, so its prototype is captured from the instance a
// SentenceSplitter constructs, via a one-shot setter trap on Object.prototype.
let sentenceTokenizerProto = null;
function captureSentenceTokenizer(SentenceSplitter) {
  if (sentenceTokenizerProto) return sentenceTokenizerProto;
  const prop = "replacementCounter";
  if (Object.prototype.hasOwnProperty(prop)) return null;
  let captured = null;
  Object.defineProperty(Object.prototype, prop, {
    configurable: true,
    set(v) {
      if (!captured && typeof this.tokenize === "function") captured = Object.getPrototypeOf(this);
      Object.defineProperty(this, prop, { value: v, writable: true, enumerable: true, configurable: true });
    },
  });
  try {
    new SentenceSplitter();
  } finally {
    delete Object.prototype[prop];
  }
  if (!captured || !["tokenize", "revertReplacements", "revertDelimiters"].every((m) => typeof captured[m] === "function")) return null;
  return (sentenceTokenizerProto = captured);
}

const PLACEHOLDER_RE = /\{\{(?:NUMBER|URI|ABBREV)_\d+\}\}/g;
const DELIM_RE = /\{\{DELIM_\d+\}\}/g;
let speedupState = null; // null = not attempted; {on, orig} afterwards

function setSentenceTokenizerSpeedup(SentenceSplitter, on) {
  const proto = captureSentenceTokenizer(SentenceSplitter);
  if (!proto) return false;
  if (!speedupState) {
    speedupState = { orig: { tokenize: proto.tokenize, revertReplacements: proto.revertReplacements, revertDelimiters: proto.revertDelimiters } };
  }
  const orig = speedupState.orig;
  if (!on) {
    Object.assign(proto, orig);
    return true;
  }
  proto.tokenize = function (text) {
    this.__fast = typeof text === "string" && !text.includes("{{");
    return orig.tokenize.call(this, text);
  };
  proto.revertReplacements = function (text) {
    if (!this.__fast) return orig.revertReplacements.call(this, text);
    if (this.__valuesChecked !== this.replacementMap) {
      this.__valuesChecked = this.replacementMap;
      this.__valuesOk = true;
      for (const v of this.replacementMap.values()) if (v.includes("$") || v.includes("{{")) { this.__valuesOk = false; break; }
    }
    if (!this.__valuesOk) return orig.revertReplacements.call(this, text);
    const m = this.replacementMap;
    return text.replace(PLACEHOLDER_RE, (p) => (m.has(p) ? m.get(p) : p));
  };
  proto.revertDelimiters = function (text) {
    if (!this.__fast) return orig.revertDelimiters.call(this, text);
    if (this.__delimsChecked !== this.delimiterMap) {
      this.__delimsChecked = this.delimiterMap;
      this.__delimsOk = true;
      for (const v of this.delimiterMap.values()) if (v.includes("$") || v.includes("{{")) { this.__delimsOk = false; break; }
    }
    if (!this.__delimsOk) return orig.revertDelimiters.call(this, text);
    const m = this.delimiterMap;
    return text.replace(DELIM_RE, (p) => (m.has(p) ? m.get(p) : p));
  };
  return true;
}

// ---------------------------------------------------------------------------
// LlamaIndex.TS: IngestionPipeline with UPSERTS docstore strategy.
// ---------------------------------------------------------------------------
async function makeLlamaIndex(counter, opts) {
  const li = await import("llamaindex");
  const { IngestionPipeline, DocStoreStrategy, SimpleDocumentStore, SimpleVectorStore, SentenceSplitter, BaseEmbedding, Document } = li;
  const sped = setSentenceTokenizerSpeedup(SentenceSplitter, !opts.liNoSpeedup);
  if (!opts.liNoSpeedup && !sped) console.error("run.mjs: warning: could not install the SentenceTokenizer speed-up; LlamaIndex will be slow on large documents");

  class CountingEmbedding extends BaseEmbedding {
    constructor() {
      super();
      // BaseEmbedding defines getTextEmbeddings as an instance field that loops
      // over getTextEmbedding; replace it so each text is counted exactly once.
      this.getTextEmbeddings = async (texts) => counter.embed(texts, "getTextEmbeddings");
    }
    async getTextEmbedding(text) { return counter.embed([text], "getTextEmbedding")[0]; }
  }

  const notes = [];
  const embedModel = new CountingEmbedding();
  const docStore = new SimpleDocumentStore();
  const vectorStore = new SimpleVectorStore({ embedModel });
  const pipeline = new IngestionPipeline({
    transformations: [new SentenceSplitter(), embedModel],
    docStore,
    vectorStore,
    docStoreStrategy: DocStoreStrategy.UPSERTS,
    disableCache: !opts.liCache,
  });
  const stats = { runs: 0, nodesEmbedded: 0, docsSkipped: 0, directDeletes: 0 };
  let mismatch = 0;

  notes.push(
    "IngestionPipeline({transformations: [new SentenceSplitter() /* defaults: 1024 tokens, overlap 200 */, embedModel], docStore: new SimpleDocumentStore(), vectorStore: new SimpleVectorStore(), docStoreStrategy: DocStoreStrategy.UPSERTS}); one pipeline.run({documents: [new Document({text, id_: key})]}) per put.",
    "UPSERTS compares the whole Document's hash: any change deletes all of the document's nodes (vectorStore.delete(refDocId)) and re-splits and re-embeds the whole document.",
    opts.liCache
      ? "IngestionCache left enabled (pipeline default): it keys on the full text of a run's input, so a rename/duplicate of unchanged text replays the OLD document's cached nodes (old ids and ref_doc_id) without embedding — the new key gets no vectors and a later delete of the old key removes them; see the verify result."
      : "disableCache: true. The pipeline's default in-memory IngestionCache keys on the text of a run's input and returns the cached nodes of whichever document first had that text (its node ids and ref_doc_id), so a rename or duplicate would embed nothing but leave the new key with no vectors of its own (and the old key's delete then removes them). Disabled to keep the index correct; use --li-cache to measure the default.",
    opts.liNoSpeedup || !sped
      ? "SentenceSplitter's sentence tokenizer left as shipped (quadratic in sentences per document)."
      : "performance only: the vendored SentenceTokenizer's revertReplacements/revertDelimiters (O(sentences x placeholders) per document, ~10 s per 200 KB) are replaced by single-pass versions with identical output (self-test compares them); chunks and counts are unchanged.",
    "delete of a key: no per-document delete in the pipeline (only UPSERTS_AND_DELETE, which needs the full corpus in one run), so we do what that strategy does for missing docs: vectorStore.delete(key) + docStore.deleteDocument(key, false) (+ docStore.deleteRefDoc(key, false), a no-op here because UPSERTS stores only the source Document, which has no ref_doc_info); embeds nothing.",
  );

  async function put(key, text) {
    const before = counter.texts;
    const nodes = await pipeline.run({ documents: [new Document({ text, id_: key })] });
    stats.runs++;
    const withEmb = nodes.filter((n) => n.embedding).length;
    stats.nodesEmbedded += withEmb;
    if (nodes.length === 0) stats.docsSkipped++;
    const embedded = counter.texts - before;
    if (!opts.liCache && embedded !== withEmb && mismatch++ < 3) {
      notes.push(`sanity: pipeline.run for ${key} returned ${withEmb} embedded nodes but ${embedded} texts were embedded`);
    }
  }

  async function del(key) {
    await vectorStore.delete(key);
    await docStore.deleteRefDoc(key, false);
    await docStore.deleteDocument(key, false);
    stats.directDeletes++;
  }

  async function verify(corpus) {
    const problems = [];
    const perRef = new Map();
    for (const [, ref] of Object.entries(vectorStore.data.textIdToRefDocId)) perRef.set(ref, (perRef.get(ref) || 0) + 1);
    const splitter = new SentenceSplitter();
    for (const [key, text] of corpus) {
      const want = splitter.getNodesFromDocuments([new Document({ text, id_: key })]).length;
      const got = perRef.get(key) || 0;
      if (want !== got) problems.push(`${key}: vector store has ${got} nodes, expected ${want}`);
      perRef.delete(key);
    }
    for (const [key, got] of perRef) problems.push(`${key}: ${got} nodes left for a key not in the final corpus`);
    const hashes = Object.values(await docStore.getAllDocumentHashes());
    const stray = hashes.filter((k) => !corpus.has(k));
    if (stray.length) problems.push(`docstore still tracks ${stray.length} deleted keys (e.g. ${stray[0]})`);
    const vectors = Object.keys(vectorStore.data.embeddingDict).length;
    if (vectors !== Object.keys(vectorStore.data.textIdToRefDocId).length) problems.push("vector store has embeddings without ref_doc_id");
    return { problems, vectors };
  }

  return {
    name: "llamaindex",
    version: { llamaindex: installedVersion("llamaindex"), "@llamaindex/core": installedVersion("@llamaindex/core") },
    put, del, verify, notes,
    extra: () => ({ pipeline_results: stats }),
  };
}

// ---------------------------------------------------------------------------
// Runner.
// ---------------------------------------------------------------------------
const FACTORIES = { langchain: makeLangChain, llamaindex: makeLlamaIndex };
const now = () => performance.now() / 1000;
const round = (s) => Math.round(s * 1000) / 1000;

async function runTool(name, workload, opts) {
  const counter = new CountingEmbedder();
  const tool = await FACTORIES[name](counter, opts);
  const corpus = new Map();
  const apply = async (op) => {
    if (op.op === "put") {
      if (typeof op.text !== "string") throw new Error(`put ${op.key}: text missing`);
      await tool.put(op.key, op.text);
      corpus.set(op.key, op.text);
    } else if (op.op === "delete") {
      await tool.del(op.key);
      corpus.delete(op.key);
    } else {
      throw new Error(`unknown op ${JSON.stringify(op.op)}`);
    }
  };

  const t0 = now();
  counter.bucket = "initial";
  for (const d of workload.docs) await apply({ op: "put", key: d.key, text: d.text });
  const initialSeconds = now() - t0;
  const ib = counter.buckets.get("initial") || { texts: 0, tokens: 0 };
  const initial = { docs: workload.docs.length, texts: ib.texts, tokens: ib.tokens, seconds: round(initialSeconds) };
  if (!opts.quiet) console.error(`[${name}] initial: ${initial.docs} docs, ${initial.texts} texts, ${initial.tokens} tokens, ${initial.seconds}s`);

  const kinds = {};
  const perStep = [];
  const steps = workload.steps || [];
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i];
    const kind = step.kind || "unknown";
    const k = (kinds[kind] ||= { steps: 0, texts: 0, tokens: 0, seconds: 0 });
    const bt = counter.texts, bk = counter.tokens;
    counter.bucket = kind;
    const ts = now();
    for (const op of step.ops || []) await apply(op);
    const secs = now() - ts;
    k.steps++; k.texts += counter.texts - bt; k.tokens += counter.tokens - bk; k.seconds += secs;
    perStep.push({ kind, texts: counter.texts - bt, tokens: counter.tokens - bk });
  }
  for (const k of Object.values(kinds)) k.seconds = round(k.seconds);
  const stepsTotal = Object.values(kinds).reduce((a, k) => ({ texts: a.texts + k.texts, tokens: a.tokens + k.tokens }), { texts: 0, tokens: 0 });
  const totalSeconds = now() - t0;
  if (!opts.quiet) console.error(`[${name}] ${steps.length} steps: ${stepsTotal.texts} texts, ${stepsTotal.tokens} tokens, ${round(totalSeconds - initialSeconds)}s`);

  const notes = [...tool.notes];
  const queryCalls = [...counter.buckets.values()].reduce((a, b) => a + (b.paths.embedQuery || 0), 0);
  if (queryCalls) notes.push(`WARNING: ${queryCalls} texts reached the embedder through a query path (counted).`);
  let verify = null;
  if (!opts.noVerify) {
    const v = await tool.verify(corpus);
    verify = { ok: v.problems.length === 0, vectors: v.vectors, keys: corpus.size, problems: v.problems.slice(0, 10), problem_count: v.problems.length };
    if (!verify.ok) {
      notes.push(`WARNING: final index does not match the final corpus (${v.problems.length} problems, first: ${v.problems[0]})`);
      console.error(`[${name}] VERIFY FAILED: ${v.problems.slice(0, 3).join("; ")}`);
    }
  }

  return {
    version: Object.entries(tool.version).map(([p, v]) => `${p}@${v}`).join(" "),
    versions: tool.version,
    initial,
    kinds,
    steps_total: stepsTotal,
    total: { texts: counter.texts, tokens: counter.tokens, seconds: round(totalSeconds) },
    ...(opts.perStep ? { per_step: perStep } : {}),
    verify,
    ...tool.extra(),
    notes,
  };
}

async function runAll(workload, opts) {
  const names = opts.tool === "all" ? ["langchain", "llamaindex"] : [opts.tool];
  const tools = {};
  for (const n of names) tools[n] = await runTool(n, workload, opts);
  return {
    embedder: { dims: DIM, tokens: "Math.ceil([...text].length / 4) per embedded text" },
    workload: { docs: workload.docs.length, steps: (workload.steps || []).length },
    options: {
      lc_batch_size: opts.lcBatchSize || "per-document",
      lc_raw_clock: !!opts.lcRawClock,
      li_cache: !!opts.liCache,
      li_sentence_tokenizer_speedup: !opts.liNoSpeedup,
    },
    tools,
  };
}

// ---------------------------------------------------------------------------
// Self-test: a built-in 3-document workload with obvious expectations.
// ---------------------------------------------------------------------------
function selftestWorkload() {
  const para = (d, i) =>
    `Paragraph ${i} of document ${d}. ` +
    Array.from({ length: 12 }, (_, j) => `Sentence ${j} about topic ${(d * 31 + i * 7 + j) % 97} explains a detail of section ${i}.`).join(" ");
  const docText = (d, n) => Array.from({ length: n }, (_, i) => para(d, i)).join("\n\n");
  const a = docText(1, 40), b = docText(2, 30), c = docText(3, 8);
  const aTypo = a.replace("Sentence 5 about", "Sentense 5 about");
  return {
    docs: [
      { key: "docs/a.md", text: a },
      { key: "docs/b.md", text: b },
      { key: "docs/c.md", text: c },
    ],
    steps: [
      { kind: "identical-reupload", ops: [{ op: "put", key: "docs/a.md", text: a }] },
      { kind: "typo", ops: [{ op: "put", key: "docs/a.md", text: aTypo }] },
      { kind: "append-section", ops: [{ op: "put", key: "docs/c.md", text: c + "\n\nAn appended closing section with a few more words." }] },
      { kind: "rename", ops: [{ op: "put", key: "docs/b-renamed.md", text: b }, { op: "delete", key: "docs/b.md" }] },
      { kind: "metadata-only", ops: [{ op: "put", key: "docs/a.md", text: aTypo }] },
    ],
  };
}

async function selftest(opts) {
  const wl = selftestWorkload();
  const res = await runAll(wl, { ...opts, tool: "all", quiet: true, perStep: true });
  const failures = [];
  const check = (cond, msg) => { console.error(`${cond ? "ok  " : "FAIL"} ${msg}`); if (!cond) failures.push(msg); };
  const lc = res.tools.langchain, li = res.tools.llamaindex;
  const kind = (t, k) => t.kinds[k] || { texts: -1 };
  const chunks = (t) => t.initial.texts;

  for (const [n, t] of [["langchain", lc], ["llamaindex", li]]) {
    check(t.initial.texts > 0 && t.initial.tokens > 0, `${n}: initial corpus embeds texts (${t.initial.texts} texts, ${t.initial.tokens} tokens)`);
    check(kind(t, "identical-reupload").texts === 0, `${n}: identical re-upload embeds 0 texts (got ${kind(t, "identical-reupload").texts})`);
    check(kind(t, "metadata-only").texts === 0, `${n}: metadata-only (same text) embeds 0 texts (got ${kind(t, "metadata-only").texts})`);
    check(kind(t, "rename").texts > 0, `${n}: rename re-embeds (got ${kind(t, "rename").texts} texts)`);
    check(t.verify && t.verify.ok, `${n}: final index matches final corpus${t.verify && !t.verify.ok ? ": " + t.verify.problems[0] : ""}`);
  }
  const lcTypo = kind(lc, "typo").texts;
  check(lcTypo >= 1, `langchain: typo fix embeds >= 1 text (got ${lcTypo})`);
  check(lcTypo <= 3, `langchain: typo fix embeds only the affected chunk(s) (got ${lcTypo}; doc a has many chunks)`);

  // LlamaIndex re-embeds the whole document on any change: typo in a, append in c.
  const SentenceSplitter = (await import("llamaindex")).SentenceSplitter;
  const Document = (await import("llamaindex")).Document;
  const sp = new SentenceSplitter();
  const nodesOf = (text) => sp.getNodesFromDocuments([new Document({ text })]).length;
  const aTypo = wl.steps[1].ops[0].text, cApp = wl.steps[2].ops[0].text, b = wl.docs[1].text;
  check(kind(li, "typo").texts === nodesOf(aTypo) && nodesOf(aTypo) > 1, `llamaindex: typo re-embeds the whole document (${kind(li, "typo").texts} texts = all ${nodesOf(aTypo)} nodes)`);
  check(kind(li, "append-section").texts === nodesOf(cApp), `llamaindex: append re-embeds the whole document (${kind(li, "append-section").texts} = ${nodesOf(cApp)})`);
  check(kind(li, "rename").texts === nodesOf(b), `llamaindex: rename re-embeds the whole document (${kind(li, "rename").texts} = ${nodesOf(b)})`);
  check(lcTypo < kind(li, "typo").texts, `langchain typo (${lcTypo}) < llamaindex typo (${kind(li, "typo").texts})`);
  check(chunks(lc) > 3 && chunks(li) > 3, "both tools split the corpus into several chunks");

  // The SentenceTokenizer speed-up must not change a single sentence or chunk.
  if (!opts.liNoSpeedup) {
    const { splitBySentenceTokenizer } = await import("llamaindex");
    const samples = [
      wl.docs[1].text.slice(0, 12000),
      wl.docs[2].text,
      "Dr. Smith met Mr. Jones at 10.30 a.m. on 1,200 St. e.g. near www.example.com/a.b?c=1. Then he left! Did he? \"Yes.\" (Really.) Done…",
      "Costs were $5.00 and US$ 1,000. See https://x.org/$&/$1/$$ now. E.g. fine. Mrs. Doe paid $$. End.",
      "Literal {{NUMBER_0}} and {{DELIM_1}} markers. Also 42 apples. OK.",
      "Visit www.foo.com/e.g.x today. Version 1.2.3 shipped. Prof. X said so.",
      "no delimiters at all and the number 7",
      "",
    ];
    const big = Array.from({ length: 150 }, (_, i) => `Item ${i}: see http://h${i}.io/p. Dr. Who ${i * 3}.${i} left; e.g. ${i}$ ok? Yes!`).join(" ");
    samples.push(big);
    const { SentenceSplitter: SS } = await import("llamaindex");
    const run = (on) => {
      setSentenceTokenizerSpeedup(SS, on);
      const tok = splitBySentenceTokenizer();
      const sp2 = new SS();
      return samples.map((t) => JSON.stringify([tok(t), sp2.splitText(t)]));
    };
    const slow = run(false), fast = run(true);
    const diff = slow.findIndex((x, i) => x !== fast[i]);
    check(diff === -1, `llamaindex: SentenceTokenizer speed-up gives identical sentences and chunks on ${samples.length} samples${diff >= 0 ? " (sample " + diff + " differs)" : ""}`);
  }

  if (failures.length) {
    console.error(`selftest: ${failures.length} failure(s)`);
    process.exitCode = 1;
  } else {
    console.error("selftest: all checks passed");
  }
  process.stdout.write(JSON.stringify({ selftest: failures.length ? "fail" : "ok", failures, result: res }, null, 2) + "\n");
}

// ---------------------------------------------------------------------------
// CLI.
// ---------------------------------------------------------------------------
function usage(msg) {
  if (msg) console.error(`run.mjs: ${msg}`);
  console.error(`usage: node run.mjs WORKLOAD.json [--tool langchain|llamaindex|all] [--per-step] [--no-verify]
       node run.mjs --selftest
  measurement variants (defaults are documented in README.md):
    --lc-batch-size N   pass batchSize N to index() (default: one batch per document)
    --lc-raw-clock      stock InMemoryRecordManager clock
    --li-cache          keep IngestionPipeline's default IngestionCache
    --li-no-speedup     keep SentenceSplitter's quadratic sentence tokenizer
  WORKLOAD.json may be "-" for stdin.`);
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { tool: "all" };
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i], v;
    const eq = a.indexOf("=");
    if (a.startsWith("--") && eq > 0) { v = a.slice(eq + 1); a = a.slice(0, eq); }
    const val = () => (v !== undefined ? v : argv[++i]);
    switch (a) {
      case "--tool": opts.tool = val(); break;
      case "--selftest": opts.selftest = true; break;
      case "--per-step": opts.perStep = true; break;
      case "--no-verify": opts.noVerify = true; break;
      case "--lc-batch-size": opts.lcBatchSize = Number(val()); if (!(opts.lcBatchSize > 0)) usage("--lc-batch-size needs a positive number"); break;
      case "--lc-raw-clock": opts.lcRawClock = true; break;
      case "--li-cache": opts.liCache = true; break;
      case "--li-no-speedup": opts.liNoSpeedup = true; break;
      case "-h": case "--help": usage(); break;
      default:
        if (a.startsWith("--")) usage(`unknown flag ${a}`);
        rest.push(a);
    }
  }
  if (!["all", "langchain", "llamaindex"].includes(opts.tool)) usage(`bad --tool ${opts.tool}`);
  if (!opts.selftest && rest.length !== 1) usage("expected one WORKLOAD.json");
  opts.workload = rest[0];
  return opts;
}

function validateWorkload(w) {
  if (!w || !Array.isArray(w.docs)) throw new Error("workload: docs[] missing");
  for (const d of w.docs) if (typeof d.key !== "string" || typeof d.text !== "string") throw new Error("workload: each doc needs key and text strings");
  if (w.steps !== undefined && !Array.isArray(w.steps)) throw new Error("workload: steps must be an array");
  return w;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  for (const [pkg, want] of Object.entries(PINNED)) {
    const got = installedVersion(pkg);
    if (got !== want) console.error(`run.mjs: warning: ${pkg} ${got} installed in ${MODULES.dir}, package.json pins ${want}`);
  }
  if (opts.selftest) return selftest(opts);
  const raw = opts.workload === "-" ? readFileSync(0, "utf8") : readFileSync(opts.workload, "utf8");
  const workload = validateWorkload(JSON.parse(raw));
  const res = await runAll(workload, opts);
  process.stdout.write(JSON.stringify(res, null, 2) + "\n");
}

main().catch((e) => {
  console.error(`run.mjs: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});

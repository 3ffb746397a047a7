// Chat requests with tools, as an OpenAI client sends them (tool-call arguments as JSON strings, assistant
// content null beside tool calls, tool messages with tool_call_id): the server turns each into the chat
// template's variables (server::chat_template_context), and render_jinja2.py turns each the way vLLM hands
// it to transformers (arguments decoded with Python's json.loads). Only families whose template renders
// tools have them. Fixed cases: every one says what it checks.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const WEATHER = { type: 'function', function: { name: 'get_weather', description: 'Get the weather for a city.',
  parameters: { type: 'object', properties: { city: { type: 'string', description: 'City name, e.g. Tokyo' },
    unit: { type: 'string', enum: ['celsius', 'fahrenheit'] }, days: { type: 'integer', minimum: 1, maximum: 7.5,
      default: 1.0 } }, required: ['city'] }, strict: true } };
const SEARCH = { type: 'function', function: { name: 'web-search_v2',
  description: 'Search the web: returns <b>HTML</b> & "quoted" text.\nSecond line — 计算器, Évalue.' } };
const ORDERED = { function: { parameters: { type: 'object', properties: { z: {}, a: {} } }, name: 'zeta' },
  type: 'function' };

const USER = { role: 'user', content: 'What is the weather in Tokyo?' };
const call = (id, name, args) => ({ id, type: 'function', function: { name, arguments: args } });
const asked = (calls, content = null) => ({ role: 'assistant', content, tool_calls: calls });
const answer = (id, content) => ({ role: 'tool', tool_call_id: id, content });

// Arguments strings as clients and models write them: compact, spaced, escaped, numbers Python prints
// its own way (1e3 -> 1000.0, 2.0 stays 2.0, -0.0), nested, empty, and JSON texts that are not objects.
const ARGUMENTS = [
  ['compact', '{"city":"Tokyo","unit":"celsius"}'],
  ['spaced and on lines', '{\n  "city" :  "Paris",\n\t"days": 3\n}'],
  ['unicode escapes', '{"city": "\\u6771\\u4eac", "note": "caf\\u00e9 \\ud83d\\ude00"}'],
  ['raw unicode', '{"city": "東京", "emoji": "👨‍👩‍👧"}'],
  ['floats and exponents', '{"x": 2.0, "y": 1e3, "z": -0.0, "w": 0.1, "v": 1.5e-7, "u": 123456789.125}'],
  ['integers', '{"a": 0, "b": -7, "c": 9007199254740993, "d": 9223372036854775807}'],
  ['nested, null and booleans', '{"q": {"list": [1, "two", null, true, false, {"deep": [[]]}]}, "r": {}}'],
  ['empty object', '{}'],
  ['escapes in strings', '{"path": "C:\\\\dir\\\\file", "quote": "say \\"hi\\"", "nl": "a\\nb", "tab": "\\t", "slash": "\\/"}'],
  ['key order kept', '{"zeta": 1, "alpha": 2, "mid": 3}'],
  ['an array, not an object', '[1, 2]'],
  ['a string, not an object', '"just text"'],
];

// Meta's Llama 3.1 template (tests/data/templates/README.md names its source): tools as JSON in the first
// user message (or the system message with tools_in_user_message false), one call per assistant message
// written {"name": ..., "parameters": ...}, tool results as ipython messages.
const LLAMA31_TEMPLATE = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'data', 'templates',
  'llama-3.1-instruct.jinja');

function llama31Requests() {
  const rows = [
    { description: 'tools, one user question', request: { messages: [USER], tools: [WEATHER, SEARCH] } },
    { description: 'tools with a system message', request: {
      messages: [{ role: 'system', content: 'You are terse.' }, USER], tools: [SEARCH] } },
    { description: 'tools in the system message (tools_in_user_message false)', request: {
      messages: [USER], tools: [WEATHER, ORDERED], chat_template_kwargs: { tools_in_user_message: false } } },
    { description: 'no tools: tools is None', request: { messages: [USER] } },
    { description: 'tool_choice none: the same prompt', request: {
      messages: [USER], tools: [WEATHER], tool_choice: 'none', parallel_tool_calls: false } },
    { description: 'tools and no user message: the template raises', request: {
      messages: [{ role: 'system', content: 'Only a system message.' }], tools: [WEATHER] } },
  ];
  for (const [what, args] of ARGUMENTS) {
    rows.push({ description: `one call, arguments ${what}, and its result`, request: {
      messages: [USER, asked([call('call_a', 'get_weather', args)]), answer('call_a', '{"temperature": 21}')],
      tools: [WEATHER] } });
  }
  rows.push(
    { description: 'two calls in one message: the template raises', request: { tools: [WEATHER], messages: [
      USER, asked([call('c1', 'get_weather', '{"city": "Tokyo"}'), call('c2', 'get_weather', '{"city":"Paris"}')])] } },
    { description: 'two rounds of calls, results as text and as parts', request: { tools: [WEATHER, SEARCH], messages: [
      USER, asked([call('c1', 'get_weather', '{"city": "Tokyo"}')]), answer('c1', 'Sunny'),
      { role: 'assistant', content: 'Sunny in Tokyo.' }, { role: 'user', content: 'Search for umbrellas.' },
      asked([call('c2', 'web-search_v2', '{"q": "umbrella"}')]),
      answer('c2', [{ type: 'text', text: '<b>result</b>' }, { type: 'text', text: '& more' }])] } },
    { description: 'content beside the call (the template drops it)', request: { tools: [WEATHER], messages: [
      USER, asked([call('c1', 'get_weather', '{"city": "Tokyo"}')], 'Let me check.'), answer('c1', 'Sunny')] } },
    { description: 'what the openai SDK sends back: refusal, annotations, index, name', request: {
      tools: [WEATHER], messages: [{ ...USER, name: 'alice' },
        { role: 'assistant', content: null, refusal: null, annotations: [],
          tool_calls: [{ index: 0, ...call('c1', 'get_weather', '{"city": "Tokyo"}') }] },
        answer('c1', 'Sunny')] } },
    { description: 'calls without tools in the request', request: { messages: [
      USER, asked([call('c1', 'get_weather', '{"city": "Tokyo"}')]), answer('c1', 'Sunny')] } },
  );
  return rows.map((r) => ({ ...r, chat_template_file: LLAMA31_TEMPLATE }));
}

export function requestsFor(family) {
  if (family === 'llama3_1') return llama31Requests();
  if (family !== 'qwen3') return [];
  const rows = [
    { description: 'tools, one user question', request: { messages: [USER], tools: [WEATHER, SEARCH] } },
    { description: 'tools with a system message', request: {
      messages: [{ role: 'system', content: 'You are terse.' }, USER], tools: [SEARCH] } },
    { description: 'tool keys in an unusual order', request: { messages: [USER], tools: [ORDERED] } },
    { description: 'no tools: tools is None', request: { messages: [USER] } },
    { description: 'tool_choice none and parallel_tool_calls: the same prompt', request: {
      messages: [USER], tools: [WEATHER], tool_choice: 'none', parallel_tool_calls: false } },
    { description: 'enable_thinking false with tools', request: {
      messages: [USER], tools: [WEATHER], chat_template_kwargs: { enable_thinking: false } } },
  ];
  for (const [what, args] of ARGUMENTS) {
    rows.push({ description: `one call, arguments ${what}, and its result`, request: {
      messages: [USER, asked([call('call_a', 'get_weather', args)]), answer('call_a', '{"temperature": 21}')],
      tools: [WEATHER] } });
  }
  rows.push(
    { description: 'two calls, two results, then the answer', request: { tools: [WEATHER], messages: [
      { role: 'user', content: 'Tokyo and Paris?' },
      asked([call('c1', 'get_weather', '{"city": "Tokyo"}'), call('c2', 'get_weather', '{"city":"Paris"}')]),
      answer('c1', '21'), answer('c2', [{ type: 'text', text: '18' }, { type: 'text', text: 'cloudy' }]),
      { role: 'assistant', content: 'Tokyo 21, Paris 18.' }] } },
    { description: 'content beside the call', request: { tools: [WEATHER], messages: [
      USER, asked([call('c1', 'get_weather', '{"city": "Tokyo"}')], 'Let me check.'), answer('c1', 'Sunny')] } },
    { description: 'empty content beside the call', request: { tools: [WEATHER], messages: [
      USER, asked([call('c1', 'get_weather', '{"city": "Tokyo"}')], ''), answer('c1', 'Sunny')] } },
    { description: 'content parts beside the call', request: { tools: [WEATHER], messages: [
      USER, asked([call('c1', 'get_weather', '{}')], [{ type: 'text', text: 'Checking' }]), answer('c1', '')] } },
    { description: 'two rounds of calls', request: { tools: [WEATHER, SEARCH], messages: [
      USER, asked([call('c1', 'get_weather', '{"city": "Tokyo"}')]), answer('c1', 'Sunny'),
      { role: 'assistant', content: 'Sunny in Tokyo.' }, { role: 'user', content: 'Search for umbrellas.' },
      asked([call('c2', 'web-search_v2', '{"q": "umbrella"}')]), answer('c2', '<b>result</b> & more')] } },
    { description: 'what the openai SDK sends back: refusal, annotations, index, name', request: {
      tools: [WEATHER], messages: [{ ...USER, name: 'alice' },
        { role: 'assistant', content: null, refusal: null, annotations: [],
          tool_calls: [{ index: 0, ...call('c1', 'get_weather', '{"city": "Tokyo"}') }] },
        answer('c1', 'Sunny')] } },
    { description: 'a result that looks like a tool response', request: { tools: [WEATHER], messages: [
      USER, asked([call('c1', 'get_weather', '{}')]), answer('c1', '<tool_response>\nx\n</tool_response>')] } },
    { description: 'calls without tools in the request', request: { messages: [
      USER, asked([call('c1', 'get_weather', '{"city": "Tokyo"}')]), answer('c1', 'Sunny')] } },
  );
  return rows;
}

// The tokenizer conformance corpus: a deterministic (seeded) list of strings per tokenizer family that
// hits what byte-level and SentencePiece-style BPE get wrong: scripts, code, emoji sequences, combining
// marks, odd whitespace, digit runs, special tokens inside text and text that came from invalid UTF-8.
// It only produces strings; generate.mjs runs the reference tokenizers on them.

// mulberry32: tiny, fast and identical on every Node version, so the corpus never drifts.
export function makeRng(seedText) {
  let h = 2166136261;
  for (const ch of seedText) h = Math.imul(h ^ ch.codePointAt(0), 16777619) >>> 0;
  let a = h;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo, hi) => lo + Math.floor(next() * (hi - lo + 1));  // inclusive
  const pick = (xs) => xs[Math.floor(next() * xs.length)];
  return { next, int, pick };
}

const MULTILINGUAL = [
  'The quick brown fox jumps over the lazy dog.', "don't I'LL we'Re it's they'd you've she'S",
  '中文测试：你好，世界！', '日本語のテキスト。カタカナとひらがな、漢字。', '한국어 텍스트 입니다', '繁體中文與简体中文混合',
  'مرحبا بالعالم، هذا نص عربي.', 'שלום עולם, זה טקסט בעברית', 'नमस्ते दुनिया, यह हिंदी पाठ है।', 'স্বাগতম বাংলা',
  'สวัสดีชาวโลก ภาษาไทยไม่มีช่องว่าง', 'Привет, мир! Съешь же ещё этих мягких французских булок.',
  'Γειά σου Κόσμε, ελληνικά γράμματα ΑΒΓΔ', 'Բարեւ աշխարհ', 'გამარჯობა მსოფლიო', 'ሰላም ለዓለም', 'ជំរាបសួរ',
  'Tiếng Việt có dấu: Đường phố Hà Nội', 'Zażółć gęślą jaźń', 'Ærøskøbing Straße naïve café façade',
  'İstanbul ılık ŞĞÜ', 'ئۇيغۇرچە', 'فارسی: سلام دنیا', 'اردو زبان', 'தமிழ் மொழி', 'తెలుగు భాష', 'ಕನ್ನಡ', 'മലയാളം',
  'ગુજરાતી', 'ਪੰਜਾਬੀ', 'සිංහල', 'မြန်မာဘာသာ', 'ພາສາລາວ', 'བོད་སྐད་', 'ᠮᠣᠩᠭᠣᠯ ᠪᠢᠴᠢᠭ', 'ᚠᚢᚦᚨᚱᚲ', '𐌰𐌱𐌲 gothic',
  '𝐁𝐨𝐥𝐝 𝑖𝑡𝑎𝑙𝑖𝑐 𝔉𝔯𝔞𝔨𝔱𝔲𝔯', 'ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３', 'ﬁﬂ ligatures Å Ω K', '¿Qué tal? ¡Muy bien!',
  'Ελλάδα — “quotes” ‘single’ «guillemets» „German“', '…ellipsis · middle dot • bullet ‰ † ‡',
];

const CODE = [
  'def f(x):\n    return x**2  # comment\n',
  'class Foo:\n\tdef __init__(self, a: int = 0) -> None:\n\t\tself.a = a\n\n\tdef __repr__(self):\n\t\treturn f"Foo({self.a!r})"\n',
  'import numpy as np\nfor i in range(10):\n    if i % 2 == 0:\n        print(i, end=", ")\n    else:\n        continue\n',
  '#include <vector>\nint main() {\n  std::vector<int> v{1, 2, 3};\n  for (auto& x : v) x <<= 2;\n  return v[0] != 4;\n}\n',
  'template <typename T>\nconstexpr T clamp(T x, T lo, T hi) noexcept { return x < lo ? lo : (x > hi ? hi : x); }',
  '{\n  "name": "adallm",\n  "version": 1,\n  "nested": {"a": [1, 2.5, -3e10, null, true, false]},\n  "s": "\\u00e9\\n"\n}',
  '[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]',
  'SELECT id, name FROM users WHERE age >= 18 AND name LIKE \'%son\' ORDER BY id DESC;',
  '<div class="x">\n  <a href="https://example.com/?q=1&r=2">link</a>\n</div>',
  'fn main() {\n    let s: &str = "héllo";\n    println!("{}", s.len());\n}',
  '$ ls -la | grep "\\.cpp$" && echo done || exit 1', 'x = a->b ?: c; y = (a >> 3) ^ ~b; z ||= w &&= v;',
  '    \t  mixed indentation\n\t    again\n', 'if (a) {\r\n    b();\r\n}\r\n', '/* block */ // line\n#define X(a) #a',
];

const EMOJI = [
  '\u{1F44B}', '\u{1F44B}\u{1F3FD}', '\u{1F468}\u200d\u{1F469}\u200d\u{1F467}\u200d\u{1F466}', '\u{1F1EF}\u{1F1F5}',
  '\u{1F1FA}\u{1F1F8}', '\u2764\ufe0f', '\u{1F3F3}\ufe0f\u200d\u{1F308}', '\u{1F9D1}\u{1F3FF}\u200d\u{1F4BB}', '1\ufe0f\u20e3',
  '#\ufe0f\u20e3', '\u{1F3F4}\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}', '\u{1F600}\u{1F601}\u{1F602}',
  '\u{1F469}\u{1F3FB}\u200d\u2764\ufe0f\u200d\u{1F468}\u{1F3FE}', '\u263a', '\u263a\ufe0e', '\u{1FAE0}', '\u{1F44D}\u{1F3FC}',
  '\u{1F415}\u200d\u{1F9BA}', '\u{1F926}\u{1F3FD}\u200d\u2642\ufe0f', '\u2603', '\u{1F525}\u{1F525}\u{1F525}',
];

// Each entry is a char or short sequence that regex `\s`, NFC, Metaspace or byte-level handling treat specially.
const WHITESPACE = [
  ' ', '  ', '   ', '\t', '\n', '\n\n', '\r\n', '\r', '\u000b', '\u000c', '\u0085', '\u00a0', '\u1680', '\u180e', '\u2000',
  '\u2002', '\u2009', '\u200a', '\u200b', '\u200c', '\u200d', '\u2028', '\u2029', '\u202f', '\u205f', '\u3000', '\ufeff',
  '\u2060', ' \n', '\n ', ' \t\n', '\t\t', '\n\n\n\n',
];

const COMBINING = ['\u0300', '\u0301', '\u0302', '\u0303', '\u0308', '\u030a', '\u0327', '\u0328', '\u0323', '\u0336',
  '\u0345', '\u0361', '\u20d7', '\u05b7', '\u0651', '\u093c', '\u094d', '\u0e31', '\u302a', '\u3099'];
const NFC_BAIT = ['e\u0301', 'A\u030a', '\u212b', '\u2126', '\u1100\u1161\u11a8', 'n\u0303o\u0308', 'ﬁ', '①', '㎏', 'Ⅻ',
  '\u0041\u0308\u0301', '\u1e9b\u0323', 'ｶﾞ', 'ﾊﾟ', '\u0915\u093c', '\u00c5', '\u1ea0\u0306'];

const DIGITS = ['0123456789', '٠١٢٣٤٥٦٧٨٩', '०१२३४५६७८९', '０１２３４５６７８９', '๐๑๒๓๔๕๖๗๘๙', '𝟎𝟏𝟐𝟑'];

const WORDS = ['hello', 'world', 'token', 'Tokenizer', 'BPE', 'the', 'a', "isn't", 'AdaLLM', 'GPU', 'NVFP4', 'über',
  'x', 'i', 'foo_bar', 'camelCase', 'URL', 'https://hf.co/Qwen/Qwen3-8B', 'user@example.com', '$100.00', '3.14159',
  '-42', '1,000,000', 'C++', 'e.g.', "O'Neil", 'rock\'n\'roll', 'ALLCAPS', '____', '----', '....', '!!!', '???', '"', "'"];

const RANDOM_BLOCKS = [  // [lo, hi] code point ranges random characters are drawn from
  [0x20, 0x7e], [0x20, 0x7e], [0x00, 0x1f], [0x7f, 0x9f], [0xa0, 0x24f], [0x370, 0x3ff], [0x400, 0x4ff], [0x590, 0x6ff],
  [0x900, 0x97f], [0xe00, 0xe7f], [0x1100, 0x11ff], [0x2000, 0x206f], [0x2100, 0x22ff], [0x2e80, 0x2fdf],
  [0x3000, 0x30ff], [0x4e00, 0x9fff], [0xac00, 0xd7a3], [0xe000, 0xe0ff], [0xfe00, 0xfe0f], [0xff00, 0xffef],
  [0xfff0, 0xffff], [0x1f300, 0x1faff], [0x1d400, 0x1d7ff], [0x20000, 0x2a6df], [0xe0000, 0xe007f], [0x10fff0, 0x10ffff],
];

function randomChars(rng, n) {
  let s = '';
  for (let i = 0; i < n; i++) {
    const [lo, hi] = rng.pick(RANDOM_BLOCKS);
    s += String.fromCodePoint(rng.int(lo, hi));
  }
  return s;
}

function digitRun(rng) {
  const alphabet = rng.next() < 0.8 ? '0123456789' : rng.pick(DIGITS);
  const chars = [...alphabet];
  const n = rng.pick([1, 2, 3, 4, 5, 6, 7, 9, 10, 12, 16, 20, 33, 64, 100, 257]);
  let s = '';
  for (let i = 0; i < n; i++) s += rng.pick(chars);
  return s;
}

function whitespaceRun(rng) {
  let s = '';
  const n = rng.int(1, 6);
  for (let i = 0; i < n; i++) s += rng.pick(WHITESPACE).repeat(rng.next() < 0.2 ? rng.int(2, 40) : 1);
  return s;
}

function combining(rng) {
  let s = rng.pick([...'aeiouAEIOUnyzßøкяαω中ا']);
  const n = rng.int(1, rng.next() < 0.1 ? 12 : 3);
  for (let i = 0; i < n; i++) s += rng.pick(COMBINING);
  return rng.next() < 0.3 ? rng.pick(NFC_BAIT) + s : s;
}

function emojiRun(rng) {
  let s = '';
  const n = rng.int(1, 5);
  for (let i = 0; i < n; i++) s += rng.pick(EMOJI) + (rng.next() < 0.3 ? ' ' : '');
  return s;
}

function specialToken(rng, special) {
  const main = special.main;
  const tok = rng.next() < 0.7 ? rng.pick(main) : rng.pick(special.all);
  const r = rng.next();
  if (r < 0.08) return tok.slice(0, rng.int(1, tok.length - 1));  // truncated: must not match
  if (r < 0.12) return tok.toUpperCase();
  if (r < 0.16) return tok + tok;
  return tok;
}

function codeFragment(rng) {
  const base = rng.pick(CODE);
  if (rng.next() < 0.5) return base;
  const lines = base.split('\n');
  const a = rng.int(0, lines.length - 1);
  const indent = rng.pick(['', '  ', '    ', '\t', '\t\t', '        ']);
  return lines.slice(a, a + rng.int(1, 4)).map((l) => indent + l).join(rng.pick(['\n', '\r\n', '\n\n']));
}

// Strings built from random bytes with invalid UTF-8 in them: `bytes` is what a client could send,
// `text` is the WHATWG/`String::from_utf8_lossy` decoding (maximal subparts → U+FFFD) the reference sees.
const decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
const BAD_BYTES = [[0x80], [0xbf], [0xc0, 0xaf], [0xc3], [0xe2, 0x82], [0xed, 0xa0, 0x80], [0xf0, 0x9f, 0x98],
  [0xf4, 0x90, 0x80, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xfe], [0xff], [0xe0, 0x80, 0x80], [0xc1, 0xbf]];

function invalidUtf8(rng) {
  const parts = [];
  const n = rng.int(1, 5);
  for (let i = 0; i < n; i++) {
    if (rng.next() < 0.5) parts.push(...Buffer.from(rng.pick([...WORDS, ...EMOJI, ' ', '中文', 'é']), 'utf8'));
    else parts.push(...rng.pick(BAD_BYTES));
  }
  const bytes = Buffer.from(parts);
  return { text: decoder.decode(bytes), bytes };
}

// JS strings with lone surrogates: the N-API binding hands Rust U+FFFD for each, so the recorded text is
// the well-formed string (generate.mjs checks that the ids agree).
function loneSurrogates(rng) {
  let s = rng.pick(WORDS);
  const n = rng.int(1, 3);
  for (let i = 0; i < n; i++) {
    s += String.fromCharCode(rng.next() < 0.5 ? rng.int(0xd800, 0xdbff) : rng.int(0xdc00, 0xdfff));
    s += rng.next() < 0.5 ? rng.pick(WORDS) : '';
  }
  return s;
}

function fragmentMix(rng, special) {
  const makers = [
    () => rng.pick(MULTILINGUAL), () => rng.pick(WORDS), () => codeFragment(rng), () => emojiRun(rng),
    () => whitespaceRun(rng), () => digitRun(rng), () => combining(rng), () => specialToken(rng, special),
    () => randomChars(rng, rng.int(1, 8)), () => ' ', () => rng.pick(WORDS) + ' ',
  ];
  let s = '';
  const n = rng.int(2, 10);
  for (let i = 0; i < n; i++) s += rng.pick(makers)();
  return s;
}

// Hand-picked strings, including every input of the golden table in shared/docs/oracles.md §4.3.
function fixedCases(special) {
  const cases = [
    '', ' ', '  ', '\n', '\t', 'a', 'Hello', 'Hello, world!', ' Hello', 'Hello ', 'hello world', 'HELLO WORLD',
    '  leading spaces and   runs\t\ttabs\n\n\nnewlines   ',
    '<|im_start|>user\nhi<|im_end|>\n<|endoftext|>', "don't I'LL we'Re it's",
    'def f(x):\n    return x**2  # comment\n', 'numbers 1234567 3.14159 -42 1,000,000 ١٢٣',
    '中文测试：你好，世界！日本語のテキスト。한국어 텍스트',
    'emoji: \u{1F44B}\u{1F3FD} \u{1F468}\u200d\u{1F469}\u200d\u{1F467}\u200d\u{1F466} \u{1F1EF}\u{1F1F5} \u2764\ufe0f',
    '<start_of_turn>user\nhi<end_of_turn>\n<bos><eos>', '\u0000\u0001\u007f\ufffd zero-width\u200bjoiner',
    '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>', 'Hello 世界 👋🏽',
    '<|im_start|> \ufeffⅫ', ' \u180ea', '\u180e', 'a\u0085b', 'a\u00a0b', 'a\u2028b', 'a\u3000b', 'a\ufeffb', '\ufeff',
    'Hello , world ! do n\'t', '1'.repeat(100), '9'.repeat(257), '12345678901234567890', '3.14159265358979323846',
    ' '.repeat(100), '\n'.repeat(64), '\t'.repeat(33), ' \n'.repeat(20), '\r\n'.repeat(10), 'a' + ' '.repeat(17) + 'b',
    '▁', '▁▁hello▁', 'Ġ', 'ĠĠ', 'Ċ', '<unk>', '<s>', '</s>', '<pad>', '<mask>', '<|endoftext|>', '<|im_end|>',
    'x'.repeat(300), 'ab'.repeat(150), '😀'.repeat(50), '中'.repeat(100), 'ا'.repeat(80),
    "'s 't 're 've 'm 'll 'd 'S 'T 'RE 'VE 'M 'LL 'D", "'''", "''s", 'a\'s\'t', '\u0301', '\u200d', '\ufe0f',
  ];
  for (const tok of special.main) cases.push(tok, ` ${tok} `, `a${tok}b`, `${tok}\n`, `\n${tok}`, tok + tok);
  return cases;
}

// `special`: {main: the family's control tokens, all: every added token content}. Returns
// [{text, bytes?, surrogates?}], where `bytes` is set for strings decoded from invalid UTF-8.
export function buildCorpus(family, special, count) {
  const rng = makeRng(`adallm-corpus-${family}`);
  const out = fixedCases(special).map((text) => ({ text }));
  const kinds = [
    [6, () => rng.pick(MULTILINGUAL)], [2, () => rng.pick(MULTILINGUAL) + ' ' + rng.pick(MULTILINGUAL)],
    [5, () => codeFragment(rng)], [4, () => emojiRun(rng)], [4, () => whitespaceRun(rng)],
    [5, () => rng.pick(WORDS) + whitespaceRun(rng) + rng.pick(WORDS)], [3, () => digitRun(rng)],
    [3, () => rng.pick(WORDS) + ' ' + digitRun(rng) + rng.pick(['', '.', ',', ' ', 'px']) + digitRun(rng)],
    [4, () => combining(rng)], [5, () => rng.pick(WORDS) + specialToken(rng, special) + rng.pick(WORDS)],
    [3, () => randomChars(rng, rng.int(1, 24))], [30, () => fragmentMix(rng, special)],
    [2, () => invalidUtf8(rng)], [2, () => ({ text: loneSurrogates(rng), surrogates: true })],
  ];
  const total = kinds.reduce((a, [w]) => a + w, 0);
  const seen = new Set(out.map((c) => c.text));  // keyed by the well-formed text, as recorded
  while (out.length < count) {
    let r = rng.next() * total;
    let make = kinds[kinds.length - 1][1];
    for (const [w, f] of kinds) {
      if ((r -= w) < 0) { make = f; break; }
    }
    let c = make();
    if (typeof c === 'string') c = { text: c };
    if (rng.next() < 0.02) c = { ...c, text: c.text.repeat(rng.int(5, 30)), bytes: undefined };  // a few long ones
    const key = c.text.toWellFormed();
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(c);
  }
  return out;
}

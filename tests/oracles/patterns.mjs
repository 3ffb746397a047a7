// Writes OUT/patterns/cases.jsonl: JSON Schema `pattern`s and strings, each with whether JavaScript's
// RegExp (the `u` flag, as JSON Schema validators such as ajv use it) finds a match in the string: the
// truth tests/structured/test_json_pattern.cpp holds the compiled grammars to. Strings: a few chosen per
// pattern, a pool shared by all, and seeded one-character mutations of the chosen ones (so near misses
// abound); no npm package needed. Usage: node patterns.mjs OUT_DIR.
import fs from 'node:fs';
import path from 'node:path';

const r = String.raw;
// [pattern, strings chosen for it]
const PATTERNS = [
  [r`^[a-z]+$`, ['abc', 'a', '', 'aBc', 'abc1', 'zzzz']],
  [r`^\d{3}-\d{4}$`, ['555-1234', '55-1234', '555-12345', '5551234', '٣٣٣-1234', 'abc-defg']],
  [r`^(foo|bar)+baz?$`, ['foobar', 'foobarba', 'foobarbaz', 'barfoofoo', 'ba', 'foob', 'bazz', 'foobazbar']],
  [r`ab`, ['ab', 'xaby', 'a b', 'ba', '', 'aab', 'b"ab\\']],
  [r`^[^"\\]*$`, ['', 'plain text', 'a"b', 'back\\slash', 'new\nline', '日本語', '\u0000']],
  [r`^\w+@\w+\.com$`, ['a@b.com', 'user_1@host2.com', 'a@b.co', 'a@b.comx', '@b.com', 'a@@b.com', 'é@b.com']],
  [r`^.$`, ['a', '\n', '\r', '\u2028', '\u2029', '\u0085', '😀', '\t', '"', '\\', 'ab', '']],
  [r`^a.c$`, ['abc', 'a\nc', 'a😀c', 'ac', 'a\u2029c', 'a"c']],
  [r`^.*$`, ['', 'anything', 'two\nlines', 'tab\there', '\u2028']],
  [r`^a{2,5}$`, ['a', 'aa', 'aaa', 'aaaaa', 'aaaaaa', '']],
  [r`^(ab){2}$`, ['abab', 'ab', 'ababab', 'abba']],
  [r`^x{2,}y?$`, ['xx', 'xxxxxxxxxx', 'x', 'xxy', 'xyy']],
  [r`^x{0}y$`, ['y', 'xy', '']],
  [r`^[α-ω]+$`, ['αβγ', 'ω', 'Α', 'abc', 'αβγ1']],
  [r`^[\u4e00-\u9fff]{2}$`, ['日本', '日', '日本語', 'ab', '日a']],
  [r`^[^\x00-\x7F]+$`, ['é', '日本', '😀', 'éa', '']],
  [r`^[😀-😏]$`, ['😀', '😏', '😐', '😀😀', 'a']],
  [r`^\u{1F600}+$`, ['😀', '😀😀', '😁', '']],
  [r`^[\u{10000}-\u{10FFFF}]+$`, ['😀', '𝕏🀄', '\u{10FFFF}', 'a', '\uFFFF']],
  [r`^[\uD83D\uDE00-\uD83D\uDE4F]$`, ['😀', '🙏', '🙐', 'a']],
  [r`^[é-ü]$`, ['é', 'ü', 'ñ', 'e', 'ý']],
  [r`^\s+$`, [' ', '\t\n', '\u00a0', '\ufeff', '\u3000\u2028', '\u0085', 'a ', '\v\f\r']],
  [r`^\S+$`, ['abc', 'a b', '😀', '\u00a0']],
  [r`^[\s\d]+$`, ['1 2', ' ', '12a', '\n9']],
  [r`^\D\W$`, ['a!', '1!', 'a1', '!!', 'é😀']],
  [r`^[^\s]$`, ['a', ' ', '😀']],
  [r`^\t\n$`, ['\t\n', '\t', '\n\t']],
  [r`^\x41\u0042\u{43}$`, ['ABC', 'abc', 'AB']],
  [r`^\/\.\*\+\?\(\)\[\]\{\}\|\\\^\$$`, ['/.*+?()[]{}|\\^$', '/.*+?()[]{}|^$']],
  [r`^[\b]\0$`, ['\b\u0000', 'b\u0000', '\b0']],
  [r`^\v\f\r$`, ['\v\f\r', 'vfr']],
  [r`^a$|^b`, ['a', 'b', 'bcd', 'ab', 'ca']],
  [r`foo$|^bar`, ['xfoo', 'barx', 'foox', 'xbar', 'foo', 'bar']],
  [r`^(?:a|b|)c$`, ['c', 'ac', 'bc', 'abc']],
  [r`^a+?$`, ['a', 'aaa', '']],
  [r`^(a|b)*?c$`, ['c', 'abbac', 'abd']],
  [r`^a{2,3}?$`, ['aa', 'aaa', 'aaaa']],
  [r`^(a*)*$`, ['', 'aaa', 'ab']],
  [r`^(a|)+b$`, ['b', 'aab', 'aa']],
  [r`^(a?b?)*$`, ['', 'abba', 'abc']],
  [r`^(?:)*x$`, ['x', 'xx']],
  [r`^()+$`, ['', 'a']],
  [r`^(?:[]|x)$`, ['x', '']],
  [r`^(x*y?){2,3}$`, ['', 'xyxy', 'xyxyxy', 'yyyy', 'xxxxyx']],
  [r`^abc`, ['abc', 'abcdef', 'xabc']],
  [r`abc$`, ['abc', 'xxabc', 'abcx']],
  ['', ['', 'anything', '"\\']],
  ['^', ['', 'x']],
  ['$', ['', 'x']],
  [r`^$`, ['', ' ']],
  [r`^[-a]$`, ['-', 'a', 'b']],
  [r`^[a-]$`, ['-', 'a', 'b']],
  [r`^[\]\-\\]+$`, [']', '-', '\\', ']-\\', 'a']],
  [r`^[^]$`, ['\n', 'a', '😀', '']],
  [r`^"\\"$`, ['"\\"', '""', '\\']],
  [r`^[\x00-\x1f]+$`, ['\u0000\u0001\u001f', '\n', ' ', '\t\u0007']],
  [r`^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}$`, ['john.doe@example.com', 'x@y.z', 'a+b@c-d.org', 'no at.com']],
  [r`^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$`, ['2024-02-29', '2024-13-01', '2024-00-10', '2024-12-31', '2024-12-32']],
  [r`^((25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(25[0-5]|2[0-4]\d|1?\d?\d)$`, ['192.168.0.1', '256.1.1.1', '1.2.3', '0.0.0.0', '01.2.3.4']],
  [r`^.{2}$`, ['😀😀', 'ab', 'a', '😀']],
  [r`^[^a-z]$`, ['A', 'a', '😀', '\n']],
  [r`^[\u0041-\u005A]+$`, ['ABC', 'abc']],
  [r`^[A-Z][a-z]*(?: [A-Z][a-z]*)*$`, ['Hello World', 'Hello world', 'Hello  World', 'A']],
  [r`^(\+|-)?\d+(\.\d+)?([eE][+-]?\d+)?$`, ['-1.5e10', '+3', '1.', '.5', '1e', '42']],
  [r`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`, ['123e4567-e89b-12d3-a456-426614174000', '123e4567-e89b-12d3-a456-42661417400']],
  [r`colou?r`, ['color', 'colour', 'my colour!', 'colr']],
  [r`\d`, ['abc', 'a1c', '']],
  [r`^(?:(?:a|b)(?:c|d)){1,2}$`, ['ac', 'bdac', 'ab', 'acacac']],
  [r`^é+$`, ['é', 'éé', 'e\u0301']],
  [r`^[^"]{0,3}$`, ['', 'abc', 'abcd', 'a"', '😀😀😀']],
  // Unanchored sides absorb what the pattern may have there (json_pattern.cpp trims it): same strings.
  [r`[a-z]{2,4}\d?`, ['ab', 'a1b2', 'xyz9', 'A-b-C', 'q']],
  [r`x{2,}`, ['x', 'xx', 'axxb', 'xax']],
  [r`(ab)?c+`, ['c', 'abc', 'ab', 'xcx', 'ac']],
  [r`^a\d{1,3}`, ['a1', 'a1234', 'a', 'ba1', 'a12x']],
  [r`\d{1,3}b$`, ['1b', '1234b', 'b', '1bc', 'x12b']],
  [r`(?:a.{0,3}b)`, ['ab', 'a123b', 'a1234b', 'xxa\nbyy', 'ba']],
  [r`((x)y?)+z{0,2}`, ['x', 'y', 'xyzzz', 'zzz']],
];

// Shared by every pattern: quotes, backslashes, controls, line terminators, spaces, wide characters.
const POOL = ['', 'a', 'abc', 'ABC', '123', ' ', 'a b', '"', '\\', '"\\"', '\n', '\r\n', '\t', '\u0000', '\u001f',
  '\u007f', '\u0085', '\u00a0', '\u2028', '\ufeff', 'é', 'ñandú', 'Ωμέγα', '日本語', '😀', 'a😀b', '𝕏', '/', '-', '_',
  'foo', 'bar', 'baz', 'foobarbaz', 'xx', 'aaaa', '555-1234', 'x@y.com'];

// mulberry32: the same strings on every run.
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function mutations(strings, count, rand) {
  const alphabet = [...new Set([...strings.join(''), ...'az09-."\\\n😀é '])];
  const pick = (xs) => xs[Math.floor(rand() * xs.length)];
  const out = [];
  for (const s of strings) {
    for (let k = 0; k < count; ++k) {
      const cps = [...s];  // code points, so the result stays well-formed
      const at = Math.floor(rand() * (cps.length + 1));
      const op = Math.floor(rand() * 3);
      if (op === 0) cps.splice(at, 0, pick(alphabet));
      else if (op === 1 && cps.length) cps.splice(Math.min(at, cps.length - 1), 1);
      else if (cps.length) cps[Math.min(at, cps.length - 1)] = pick(alphabet);
      out.push(cps.join(''));
    }
  }
  return out;
}

const outDir = path.join(process.argv[2] ?? '.', 'patterns');
fs.mkdirSync(outDir, { recursive: true });
const rand = prng(20261125);
const rows = [];
let matching = 0;
for (const [pattern, chosen] of PATTERNS) {
  const re = new RegExp(pattern, 'u');
  const strings = [...new Set([...chosen, ...POOL, ...mutations(chosen, 4, rand)])];
  for (const s of strings) {
    if (!s.isWellFormed()) throw new Error(`patterns.mjs: ill-formed test string for ${pattern}`);
    const matches = re.test(s);
    matching += matches;
    rows.push({ pattern, string: s, matches });
  }
}
fs.writeFileSync(path.join(outDir, 'cases.jsonl'), rows.map((x) => JSON.stringify(x)).join('\n') + '\n');
console.log(`patterns.mjs: ${PATTERNS.length} patterns, ${rows.length} cases (${matching} matching)`);

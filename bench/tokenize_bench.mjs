// The Rust reference (`tokenizers` N-API binding) on the same chunks as tokenize_bench.cpp: encode
// loop, three passes, single thread (RAYON_NUM_THREADS=1). Includes the binding's own overhead.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
const require = createRequire(new URL("../tests/oracles/package.json", import.meta.url));
const { Tokenizer } = require("tokenizers");
const [tokenizerJson, textFile] = process.argv.slice(2);
const tokenizer = Tokenizer.fromFile(tokenizerJson);
const bytes = readFileSync(textFile);
const chunks = [];
for (let pos = 0; pos < bytes.length;) {
  let end = Math.min(bytes.length, pos + 4096);
  while (end < bytes.length && (bytes[end] & 0xc0) === 0x80) ++end;
  chunks.push(bytes.subarray(pos, end).toString("utf8"));
  pos = end;
}
for (let pass = 1; pass <= 3; ++pass) {
  let tokens = 0;
  const start = process.hrtime.bigint();
  for (const c of chunks) tokens += (await tokenizer.encode(c, null, { addSpecialTokens: false })).getIds().length;
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  console.log(`rust pass ${pass}: ${(bytes.length / 1e6).toFixed(2)} MB in ${seconds.toFixed(3)} s = ${(bytes.length / 1e6 / seconds).toFixed(2)} MB/s, ${tokens} tokens`);
}

// What the e2e scripts share: their two arguments (the adallm binary and the repository root) and the
// official `openai` client from tests/oracles (installed there by scripts/oracles.sh). Exits 2 on bad
// usage, 1 when the client is missing.
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

export async function e2eSetup(script) {
  const [binary, root] = process.argv.slice(2).map((p) => p && path.resolve(p));
  if (!binary || !root) {
    console.error(`usage: node ${script} ADALLM_BINARY REPO_ROOT`);
    process.exit(2);
  }
  const oracles = path.join(root, 'tests', 'oracles');
  try {
    const require = createRequire(path.join(oracles, 'package.json'));
    const OpenAI = (await import(pathToFileURL(require.resolve('openai')).href)).default;
    return { binary, root, OpenAI };
  } catch (e) {
    console.error(`cannot load the openai client from ${oracles}/node_modules (run scripts/oracles.sh): ${e.message}`);
    process.exit(1);
  }
}

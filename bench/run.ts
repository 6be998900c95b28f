/**
 * `npm run bench -- <suite> [...]`: runs the named benchmark suites (bench/<suite>.ts),
 * or lists them when no name is given. Each suite exports `run(args: string[]): Promise<void>`;
 * code the suites share lives in bench/lib/, and tests beside it.
 */
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const suites = readdirSync(here)
  .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && f !== 'run.ts' && !f.startsWith('_'))
  .map((f) => f.slice(0, -3))
  .sort();

const [name, ...rest] = process.argv.slice(2);
if (name === undefined || !suites.includes(name)) {
  if (name !== undefined) console.error(`unknown benchmark suite "${name}"`);
  console.error(`usage: npm run bench -- <suite> [args]\nsuites: ${suites.join(', ') || '(none yet)'}`);
  process.exit(name === undefined ? 0 : 2);
}
const suite = (await import(join(here, `${name}.ts`))) as { run(args: string[]): Promise<void> };
try {
  await suite.run(rest);
} catch (error) {
  // A bad option or a network that did not come up: the message says which, without a stack.
  console.error(`${name} benchmark: ${(error as Error).message}`);
  process.exit(1);
}

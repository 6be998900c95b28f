/**
 * The article's demo, run as a device would: download version 1 of "default" from the
 * device-facing config server A, hash it, POST the hash to a validator's /validateHash; the same
 * for version 2; version 2 again; then the invalid hash "2". Every request and answer is printed.
 *
 * What to expect is worked out from the ledger first, so a second `npm start` on the same network
 * expects what is true then (version 2 is already current; version 1 would be a rollback) instead
 * of the first run's answers.
 */
import { ApiClient, type ValidateAnswer } from '../../api/client.ts';
import { sha256Hex } from '../../crypto/hash.ts';

export type Expected = 'added' | 'current' | 'invalid';

export interface DemoStep {
  readonly label: string;
  readonly hash: string;
  readonly expected: Expected;
  readonly answer: ValidateAnswer | null;
  readonly ok: boolean;
}

export interface DemoOptions {
  readonly configServerA: string;
  readonly validatorUrl: string;
  readonly target?: string;
  readonly print: (line: string) => void;
}

/** What the ledger must answer for `version`, given the target's current version. */
function expectFor(version: number, current: number | null): Expected {
  if (current === version) return 'current';
  if (current !== null && current > version) return 'invalid';
  return 'added';
}

async function download(base: string, target: string, version: number): Promise<Buffer> {
  const url = `${base}/v1/targets/${encodeURIComponent(target)}/versions/${version}`;
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  if (!res.ok) {
    throw new Error(`GET ${url} answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
  }
  return Buffer.from(await res.arrayBuffer());
}

export async function runDemo(options: DemoOptions): Promise<{ ok: boolean; steps: DemoStep[] }> {
  const target = options.target ?? 'default';
  const { print } = options;
  const client = new ApiClient(options.validatorUrl, { timeoutMs: 15_000 });
  let current: number | null = null;
  try {
    current = (await client.target(target)).version;
  } catch {
    current = null;
  }
  print(
    current === null
      ? `Demo: target "${target}" has no configuration on the ledger yet.`
      : `Demo: target "${target}" is at version ${current} on the ledger (this network ran before).`,
  );

  const steps: DemoStep[] = [];
  const validate = async (label: string, hash: string, expected: Expected) => {
    print('');
    print(label);
    print(`  POST ${options.validatorUrl}/validateHash {"hash": "${hash}"}`);
    let answer: ValidateAnswer | null = null;
    try {
      answer = await client.validateHash(hash, target === 'default' ? undefined : target);
      print(`  -> ${answer.status} ${answer.text}`);
    } catch (err) {
      print(`  -> no answer: ${(err as Error).message}`);
    }
    const ok = answer !== null && answer.outcome === expected;
    print(`  expected: ${expected}${ok ? '' : `   UNEXPECTED (got ${answer?.outcome ?? 'no answer'})`}`);
    steps.push({ label, hash, expected, answer, ok });
    return answer;
  };

  const plan: { version: number; label: string }[] = [
    { version: 1, label: 'Trying to validate current config hash (version 1)' },
    { version: 2, label: 'Trying to validate new config hash (version 2)' },
    { version: 2, label: 'Trying to validate same config hash (version 2 again)' },
  ];
  for (const step of plan) {
    const url = `${options.configServerA}/v1/targets/${target}/versions/${step.version}`;
    let content: Buffer;
    try {
      content = await download(options.configServerA, target, step.version);
    } catch (err) {
      print('');
      print(step.label);
      print(`  download failed: ${(err as Error).message}`);
      steps.push({ label: step.label, hash: '', expected: 'added', answer: null, ok: false });
      continue;
    }
    const hash = sha256Hex(content);
    const expected = expectFor(step.version, current);
    const answer = await validate(
      `${step.label}\n  GET ${url} -> ${content.length} bytes, sha256 ${hash}`,
      hash,
      expected,
    );
    if (answer !== null && (answer.outcome === 'added' || answer.outcome === 'current')) {
      current = Math.max(current ?? 0, step.version);
    }
  }
  await validate("Trying to validate an invalid hash ('2')", '2', 'invalid');

  const ok = steps.every((s) => s.ok);
  print('');
  print(ok ? 'Demo: every answer was as expected.' : 'Demo: some answers were NOT as expected (see above).');
  return { ok, steps };
}

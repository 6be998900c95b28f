/**
 * Scenario tests as readable transcripts (etcd raft's testdata style). Each file in testdata/ is a
 * script of commands; after each command, below a "----" line, comes the expected output: one line
 * per message sent, block delivered, reply and view change. The test runs each script and compares
 * the whole file. Run with UPDATE_TRANSCRIPTS=1 to rewrite the expected output after a deliberate
 * change, then read the diff.
 *
 * Commands:
 *   cluster n=4 [checkpoint=K] [window=L] [txs=T]   start a cluster (must come first)
 *   request <client> <id> [payload=P] [to=1,2,3]    a client request to replicas (default all up)
 *   tick <ms> [step=S]                              advance time, ticking every S ms (default 50)
 *   crash <id> | restart <id>
 *   partition <id,...>                              cut these replicas off from the rest
 *   drop <kind> [from=i] [to=j]                     lose messages of this kind
 *   heal                                            remove every partition and drop rule
 *   propose-as <id> view=V seq=S to=<ids> payload=P a pre-prepare signed with replica id's key
 *   status                                          one line per replica
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Height, ValidatorId, View } from '../encoding/brand.ts';
import { Cluster, req, type TestBlock, testGenesisHash } from './testkit.ts';
import type { PrePrepare } from './types.ts';

const here = dirname(fileURLToPath(import.meta.url));
const dir = join(here, 'testdata');
const update = process.env.UPDATE_TRANSCRIPTS === '1';

interface Block {
  readonly comments: readonly string[];
  readonly command: string;
  readonly expected: readonly string[];
}

function parse(text: string): Block[] {
  const blocks: Block[] = [];
  const lines = text.split('\n');
  let i = 0;
  while (i < lines.length) {
    const comments: string[] = [];
    while (i < lines.length && (lines[i]!.startsWith('#') || lines[i]!.trim() === '')) {
      if (lines[i]!.startsWith('#')) comments.push(lines[i]!);
      i++;
    }
    if (i >= lines.length) break;
    const command = lines[i++]!;
    assert.equal(lines[i], '----', `a "----" line must follow command "${command}"`);
    i++;
    const expected: string[] = [];
    while (i < lines.length && lines[i]!.trim() !== '') expected.push(lines[i++]!);
    blocks.push({ comments, command, expected });
  }
  return blocks;
}

function format(blocks: readonly Block[]): string {
  return `${blocks
    .map((b) =>
      [...b.comments, b.command, '----', ...(b.expected.length > 0 ? b.expected : ['ok'])].join('\n'),
    )
    .join('\n\n')}\n`;
}

function ids(text: string | undefined): number[] {
  return text === undefined ? [] : text.split(',').map((s) => Number(s));
}

class Runner {
  cluster: Cluster | undefined;

  run(command: string): string[] {
    const [name, ...args] = command.trim().split(/\s+/);
    const positional = args.filter((a) => !a.includes('='));
    const named = Object.fromEntries(
      args.filter((a) => a.includes('=')).map((a) => a.split('=', 2) as [string, string]),
    );
    if (name === 'cluster') {
      this.cluster = new Cluster({
        n: Number(named.n ?? 4),
        transcript: true,
        limits: {
          checkpointInterval: Number(named.checkpoint ?? 2),
          watermarkWindow: Number(named.window ?? 4),
          blockTxsMax: Number(named.txs ?? 10),
        },
      });
      return [];
    }
    const c = this.cluster;
    assert.ok(c !== undefined, 'the script must start with a cluster command');
    const start = c.lines.length;
    switch (name) {
      case 'request': {
        const to = named.to !== undefined ? ids(named.to) : [...Array(c.n).keys()].filter((i) => c.isUp(i));
        c.request(req(positional[0]!, positional[1]!, named.payload ?? 'x'), to);
        c.run();
        break;
      }
      case 'tick':
        c.tick(Number(positional[0]), Number(named.step ?? 50));
        break;
      case 'run':
        c.run();
        break;
      case 'crash':
        c.crash(Number(positional[0]));
        break;
      case 'restart':
        c.restart(Number(positional[0]));
        c.run();
        break;
      case 'partition': {
        const cut = new Set(ids(positional[0]));
        c.drops.push((from, to) => cut.has(from) !== cut.has(to));
        break;
      }
      case 'drop': {
        const kind = positional[0];
        const from = named.from !== undefined ? new Set(ids(named.from)) : undefined;
        const to = named.to !== undefined ? new Set(ids(named.to)) : undefined;
        c.drops.push(
          (f, t, m) =>
            m?.kind === kind && (from === undefined || from.has(f)) && (to === undefined || to.has(t)),
        );
        break;
      }
      case 'heal':
        c.drops.length = 0;
        break;
      case 'propose-as':
        this.proposeAs(c, Number(positional[0]), named);
        c.run();
        break;
      case 'status':
        return c.members.map((m, id) => {
          const r = m.replica;
          if (r === undefined) return `r${id} down`;
          const ck = r.stableCheckpoint;
          return `r${id} view=${r.view} ${r.status} delivered=${r.lastDelivered} stable=${ck.seq} pending=${r.pendingRequests}`;
        });
      default:
        assert.fail(`unknown command ${name}`);
    }
    return c.lines.slice(start);
  }

  /** Builds a block on the longest honest chain and signs its pre-prepare with replica `as`'s key. */
  private proposeAs(c: Cluster, as: number, named: Record<string, string>): void {
    const seq = Number(named.seq);
    const view = Number(named.view ?? 0);
    const longest = c.members.reduce((a, b) => (b.chain.length > a.chain.length ? b : a)).chain;
    const parentHash = seq === 1 ? testGenesisHash : longest[seq - 2]!.certificate.blockHash;
    const block = c.app.build({
      parent: parentHash,
      height: seq as Height,
      view: view as View,
      proposer: as as ValidatorId,
      nowMs: c.nowMs,
      requests: [req(named.client ?? 'mallory', named.id ?? String(seq), named.payload ?? 'x')],
    });
    const pp = c.signAs<PrePrepare<TestBlock>>(as, {
      kind: 'pre-prepare',
      view: view as View,
      seq: seq as Height,
      digest: c.app.digest(block),
      block,
      replica: as as ValidatorId,
    });
    c.inject(as, ids(named.to), pp);
  }
}

const files = readdirSync(dir)
  .filter((f) => f.endsWith('.txt'))
  .sort();

describe('consensus transcripts (testdata/*.txt)', () => {
  it('has the six required scenarios', () => {
    for (const name of [
      'normal.txt',
      'primary-crash.txt',
      'equivocation.txt',
      'backup-restart.txt',
      'state-transfer.txt',
      'two-view-changes.txt',
    ]) {
      assert.ok(files.includes(name), `missing testdata/${name}`);
    }
  });

  for (const file of files) {
    it(file, () => {
      const path = join(dir, file);
      const text = readFileSync(path, 'utf8');
      const blocks = parse(text);
      const runner = new Runner();
      const actual = blocks.map((b) => ({ ...b, expected: runner.run(b.command) }));
      runner.cluster?.checkAgreement();
      const rendered = format(actual);
      if (update) {
        writeFileSync(path, rendered);
        return;
      }
      assert.equal(
        rendered,
        text,
        `transcript ${file} changed; rerun with UPDATE_TRANSCRIPTS=1 and review the diff`,
      );
    });
  }
});

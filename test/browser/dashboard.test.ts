/**
 * The dashboard in a real browser (Debian's chromium driven by playwright-core) against a real
 * 4-validator network on loopback: every page loads with real data, a block committed through the
 * API appears without a reload, the diff view shows a known difference, the verify page checks a
 * known hash's proof and reports an unknown one, and a killed validator shows as down.
 *
 * Screenshots of every page at 1280x800 and 390x844 go to test-output/screenshots/. Any console
 * error of a page fails the test, except the browser's own network lines that the scenario
 * causes on purpose (see allowedNetworkError).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Browser, type BrowserContext, chromium, type Locator, type Page } from 'playwright-core';
import { generateKeyPair, type KeyPair } from '../../src/crypto/ed25519.ts';
import { sha256Hex } from '../../src/crypto/hash.ts';
import { loadPrivateKey } from '../../src/crypto/keyfile.ts';
import type { DeviceId, Hash32Hex, PublicKeyHex, TargetName } from '../../src/encoding/brand.ts';
import { signAsAdmin, signAsDevice, signRelease, txId, waveOf } from '../../src/ledger/index.ts';
import type { RolloutEntry, Transaction } from '../../src/ledger/types.ts';
import { paths } from '../../src/node/layout.ts';
import { answers, repoRoot, sha256OfText, startNetwork, type TestNetwork } from '../system/harness.ts';

const chromiumPath = '/usr/bin/chromium';
const screenshotDir = join(repoRoot, 'test-output', 'screenshots');
const target = 'web-config';
const v1Text = 'mode=eco\ninterval=60\nserver=a.example\n';
const v2Text = 'mode=eco\ninterval=30\nserver=a.example\nlog=debug\n';
const v1Hash = sha256Hex(Buffer.from(v1Text));
const v2Hash = sha256Hex(Buffer.from(v2Text));
const unknownHash = sha256OfText('a configuration nobody released');
const groupTarget = 'group:cameras';
const rolloutId = 'cameras-v2';
const rolloutWaves = [50, 100] as const;
const desktop = { width: 1280, height: 800 };
const phone = { width: 390, height: 844 };

/** Console errors that the scenario causes on purpose and that are not the page's fault. */
function allowedNetworkError(text: string, url: string, killedOrigins: ReadonlySet<string>): boolean {
  if (!text.startsWith('Failed to load resource')) return false;
  const origin = url === '' ? '' : new URL(url).origin;
  // The network page keeps asking the killed validator for its status.
  if (killedOrigins.has(origin) && text.includes('ERR_CONNECTION_REFUSED')) return true;
  // Lookups whose "not found" is an answer: the search tries a hash as block hash and tx id, and
  // HEAD /v1/content asks validators for copies they may not hold (attested versions have none).
  if (text.includes('status of 404')) {
    return /\/v1\/(blocks\/hash|tx|content)\/[0-9a-f]{64}$/.test(url);
  }
  return false;
}

/** Waits for a locator; on timeout the error carries what the page showed instead. */
async function waitShown(page: Page, locator: Locator, timeout = 15_000): Promise<void> {
  try {
    await locator.waitFor({ timeout });
  } catch (err) {
    const text = await page
      .locator('main')
      // biome-ignore lint/performance/useDomNodeTextContent: Playwright's innerText keeps the page's line breaks, so the failure message reads like the page
      .innerText()
      .catch(() => '(no main element)');
    throw new Error(
      `${(err as Error).message}\n--- the page (${page.url()}) showed:\n${text.slice(0, 3000)}`,
    );
  }
}

async function submit(net: TestNetwork, tx: Transaction): Promise<{ height: number }> {
  const response = await fetch(`${net.apiUrl(0)}/v1/tx`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ tx, waitMs: 20_000 }),
    signal: AbortSignal.timeout(25_000),
  });
  const body = (await response.json()) as { status: string; height?: number; reason?: string };
  assert.equal(
    body.status,
    'committed',
    `transaction ${tx.body.type} not committed: ${JSON.stringify(body)}`,
  );
  return { height: body.height ?? -1 };
}

describe('dashboard in chromium against a 4-validator network', { timeout: 180_000 }, () => {
  let net: TestNetwork;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const consoleErrors: string[] = [];
  const killedOrigins = new Set<string>();

  const watch = (p: Page, name: string) => {
    p.on('console', (msg) => {
      if (msg.type() !== 'error') return;
      const url = msg.location().url;
      if (allowedNetworkError(msg.text(), url, killedOrigins)) return;
      consoleErrors.push(`${name}: ${msg.text()} (${url})`);
    });
    p.on('pageerror', (err) => consoleErrors.push(`${name}: uncaught ${err.message}`));
  };

  const shot = async (p: Page, name: string) => {
    await p.screenshot({ path: join(screenshotDir, `${name}.png`), fullPage: true });
  };

  before(async () => {
    if (!existsSync(join(repoRoot, 'web', 'dist', 'index.html'))) {
      execFileSync('npx', ['vite', 'build', '--config', 'web/vite.config.ts'], {
        cwd: repoRoot,
        stdio: 'pipe',
      });
    }
    const setupStart = Date.now();
    mkdirSync(screenshotDir, { recursive: true });
    assert.ok(
      existsSync(chromiumPath),
      `${chromiumPath} is missing: run bash scripts/ensure-system-deps.sh as root`,
    );
    [net, browser] = await Promise.all([
      startNetwork({ validators: 4 }),
      chromium.launch({
        executablePath: chromiumPath,
        args: [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-quic',
          '--no-first-run',
          '--disable-sync',
        ],
      }),
    ]);
    const seedStart = Date.now();
    await seed(net);
    console.log(
      `# network up and seeded in ${Date.now() - setupStart} ms (seed ${Date.now() - seedStart} ms)`,
    );
    context = await browser.newContext({ viewport: desktop });
    context.setDefaultTimeout(15_000);
    page = await context.newPage();
    watch(page, 'desktop');
  });

  after(async () => {
    await context?.close().catch(() => undefined);
    await browser?.close().catch(() => undefined);
    await net?.stop();
  });

  it('shows the network with every validator up and the primary', async () => {
    await page.goto(`${net.apiUrl(0)}/ui/`);
    await page.getByTestId('validators').waitFor();
    for (let id = 0; id < 4; id++) {
      await page.locator(`[data-testid="validator-${id}"][data-state="up"]`).waitFor({ timeout: 10_000 });
    }
    const status = await net.status(0);
    assert.equal(await page.getByTestId('net-primary').textContent(), `validator ${status.primary}`);
    assert.ok(Number(await page.getByTestId('net-height').textContent()) >= status.height);
    await page.getByTestId('chart').waitFor();
    await page.locator('[data-testid="connection"][data-state="live"]').waitFor({ timeout: 5000 });
    await shot(page, 'network-1280x800');
  });

  it('lists blocks and shows a new block without a reload', async () => {
    await page.getByTestId('nav-ledger').click();
    await page.getByTestId('blocks').waitFor();
    // A marker on the page's global object survives only as long as the page is not reloaded.
    await page.evaluate('globalThis.notReloaded = true');
    const before = await net.status(0);
    const answer = await net.validateHash(0, sha256OfText('2'));
    assert.equal(answer.body, answers.added);
    const after = await net.status(0);
    assert.ok(after.height > before.height);
    await page
      .locator(`[data-testid="blocks"] tr[data-height="${after.height}"]`)
      .waitFor({ timeout: 10_000 });
    assert.equal(await page.evaluate('globalThis.notReloaded'), true);
    await shot(page, 'ledger-1280x800');

    // The block's transactions and its certificate, with signatures checked in the browser.
    await page.locator(`[data-testid="blocks"] tr[data-height="${after.height}"] a`).first().click();
    await page.getByTestId('certificate').waitFor();
    await page.getByTestId('txs').getByText('attest').waitFor();
    await page.getByTestId('certificate').getByText('signature valid').first().waitFor({ timeout: 10_000 });
    assert.equal(await page.getByTestId('certificate').getByText('INVALID').count(), 0);
    assert.equal(await page.getByTestId('certificate-block').getAttribute('data-state'), 'pass');
    await shot(page, 'block-1280x800');

    // Search by height and by transaction id lead to the block.
    await page.getByTestId('ledger-search').fill(String(after.height));
    await page.getByTestId('ledger-search').press('Enter');
    await waitShown(
      page,
      page.locator('[data-testid="search-result"] li', { hasText: `Block #${after.height}` }),
    );
    const block = (await (await fetch(`${net.apiUrl(0)}/v1/blocks/${after.height}`)).json()) as {
      block: { txs: Transaction[] };
    };
    const attest = block.block.txs[0];
    assert.ok(attest !== undefined);
    await page.getByTestId('ledger-search').fill(txId(attest));
    await page.getByTestId('ledger-search').press('Enter');
    await waitShown(
      page,
      page.locator('[data-testid="search-result"] li', {
        hasText: `Transaction 0 of block #${after.height}`,
      }),
    );

    // Search by a configuration hash finds the release.
    await page.getByTestId('ledger-search').fill(v2Hash);
    await page.getByTestId('ledger-search').press('Enter');
    await waitShown(
      page,
      page.locator('[data-testid="search-result"] li', { hasText: 'release of web-config version 2' }),
    );
  });

  it('shows a target, its history, who holds each version, and the diff of two versions', async () => {
    await page.getByTestId('nav-configurations').click();
    await page.locator(`[data-testid="targets"] tr[data-target="${target}"]`).waitFor();
    await page.locator(`[data-testid="targets"] tr[data-target="default"]`).waitFor();
    await shot(page, 'configs-1280x800');
    await page.locator(`[data-testid="targets"] tr[data-target="${target}"] a`).first().click();
    assert.equal(await page.getByTestId('current-version').textContent(), 'v2');
    await waitShown(page, page.getByTestId('diff'));
    const changed = page.locator('[data-testid="diff"] tr.diff-changed');
    assert.equal(await changed.count(), 1);
    assert.equal((await changed.locator('td.left').textContent())?.trim(), 'interval=60');
    assert.equal((await changed.locator('td.right').textContent())?.trim(), 'interval=30');
    const added = page.locator('[data-testid="diff"] tr.diff-added td.right');
    assert.equal((await added.textContent())?.trim(), 'log=debug');
    // The copies column says what each validator answers to HEAD /v1/content/:sha256.
    const holders: number[] = [];
    for (let id = 0; id < 4; id++) {
      const head = await fetch(`${net.apiUrl(id)}/v1/content/${v2Hash}`, { method: 'HEAD' });
      assert.ok(
        head.status === 200 || head.status === 404,
        `HEAD on validator ${id} answered ${head.status}`,
      );
      if (head.status === 200) holders.push(id);
    }
    const expected = holders.length === 0 ? 'none' : `validators ${holders.join(', ')}`;
    await waitShown(page, page.getByTestId('holders-2').getByText(expected));
    await page.getByTestId('reports').waitFor();
    await shot(page, 'config-detail-1280x800');
  });

  it('shows the fleet with compliance against the current version, filtered by group', async () => {
    await page.getByTestId('nav-fleet').click();
    await page.getByTestId('devices').waitFor();
    const compliance = async (id: string) =>
      page.locator(`[data-testid="devices"] tr[data-device="${id}"]`).getAttribute('data-compliance');
    assert.equal(await compliance('cam-1'), 'compliant');
    assert.equal(await compliance('cam-2'), 'behind');
    assert.equal(await compliance('gw-1'), 'failed');
    assert.equal(await compliance('cam-4'), 'failed');
    assert.equal(await compliance('cam-3'), 'revoked');
    await page.getByTestId('filter-group').selectOption('gateways');
    assert.equal(await page.locator('[data-testid="devices"] tbody tr').count(), 1);
    await page.getByTestId('filter-group').selectOption('');

    // cam-5 applied v2's version number with v1's bytes: failed, as the ledger counts it.
    assert.equal(await compliance('cam-5'), 'failed');
    const cam5 = await page.locator('[data-testid="devices"] tr[data-device="cam-5"] td').allTextContents();
    assert.match(cam5[4] ?? '', /^v2 applied \(other bytes\) in #\d+$/);

    // The rollout shows the ledger's own state. Worked out here from the seed: cam-3 is revoked and
    // gw-1 follows another target, so neither is in the rollout; cam-2 reported only v1, which
    // does not count; cam-5's "applied" of other bytes is a failure (a browser that counted every
    // "applied" report as a success showed it as one). cam-4 is wave 1's only device and failed,
    // more than 50%, so the rollout halted there.
    const rollout = page.locator(`[data-testid="rollout"][data-rollout="${rolloutId}"]`);
    await waitShown(page, rollout);
    const expected = rolloutWaves.map(() => ({ devices: 0, successes: 0, failures: 0 }));
    for (const [id, outcome] of [
      ['cam-1', 'success'],
      ['cam-2', 'none'],
      ['cam-4', 'failure'],
      ['cam-5', 'failure'],
    ] as const) {
      const wave = expected[waveOf(id, rolloutId, rolloutWaves)];
      assert.ok(wave !== undefined);
      wave.devices++;
      if (outcome === 'success') wave.successes++;
      if (outcome === 'failure') wave.failures++;
    }
    const ledger = (await (await fetch(`${net.apiUrl(0)}/v1/rollouts/${rolloutId}`)).json()) as RolloutEntry;
    assert.deepEqual(
      ledger.progress.map((p) => ({ devices: p.devices, successes: p.successes, failures: p.failures })),
      expected,
      'the ledger counts the seed as worked out above',
    );
    const failedWave = expected.findIndex((w) => w.failures * 100 > 50 * w.devices);
    assert.ok(failedWave >= 0, 'the seed makes one wave fail');
    assert.equal(ledger.status, 'halted');
    assert.equal(await rollout.getAttribute('data-status'), 'halted');
    assert.equal(await rollout.getAttribute('data-current-wave'), String(ledger.currentWave));
    assert.equal(await rollout.getByTestId('rollout-status').textContent(), 'halted');
    assert.equal(await rollout.getByTestId('rollout-reason').textContent(), ledger.reason);
    assert.match(ledger.reason, new RegExp(`^wave ${failedWave + 1} of ${rolloutWaves.length}: `));
    for (const [i, want] of expected.entries()) {
      const cells = await rollout.locator(`tr[data-wave="${i}"] td`).allTextContents();
      assert.deepEqual(
        cells.slice(2, 6).map(Number),
        [want.devices, want.successes, want.failures, want.devices - want.successes - want.failures],
        `wave ${i + 1}`,
      );
      assert.equal(cells[6], i <= ledger.currentWave ? 'yes' : 'no', `wave ${i + 1} open`);
    }
    await shot(page, 'fleet-1280x800');
  });

  it('verifies a known hash in the browser and reports an unknown one', async () => {
    await page.getByTestId('nav-verify').click();
    await page.getByTestId('verify-hash').fill(v2Hash);
    await page.getByTestId('verify-hash').press('Enter');
    await page.getByTestId('verify-found').waitFor();
    const verdict = page.getByTestId('proof-verdict').first();
    await verdict.waitFor({ timeout: 10_000 });
    assert.equal(await verdict.getAttribute('data-verdict'), 'valid');
    for (const check of [
      'transaction id',
      'RFC 9162 inclusion',
      'certificate is for this header',
      'commit signatures',
    ]) {
      assert.equal(
        await page.locator(`[data-check="${check}"]`).first().getAttribute('data-state'),
        'pass',
        `check ${check}`,
      );
    }
    // Both targets whose current version has this content are proven against their state roots.
    const current = page.getByTestId('current-proof');
    await waitShown(page, current.nth(1).locator('[data-check="state proof"]'));
    assert.equal(await current.count(), 2);
    for (let i = 0; i < 2; i++) {
      const states = await current
        .nth(i)
        .locator('[data-check]')
        .evaluateAll((els) =>
          els.map((e) => `${e.getAttribute('data-check')}=${e.getAttribute('data-state')}`),
        );
      assert.deepEqual(states, [
        'certificate is for this header=pass',
        'commit signatures=pass',
        'state proof=pass',
        'entry names this hash=pass',
      ]);
    }
    await shot(page, 'verify-1280x800');

    // A file dropped in is hashed in the browser: v1's content is found too.
    await page.getByTestId('verify-file').setInputFiles({
      name: 'v1.conf',
      mimeType: 'text/plain',
      buffer: Buffer.from(v1Text),
    });
    await page.waitForURL(new RegExp(`hash=${v1Hash}`));
    await page.getByTestId('verify-found').waitFor();

    await page.getByTestId('verify-hash').fill(unknownHash);
    await page.getByTestId('verify-hash').press('Enter');
    await page.getByTestId('verify-unknown').waitFor();
    await shot(page, 'verify-unknown-1280x800');
  });

  it('fits every page on a phone', async () => {
    const phoneContext = await browser.newContext({ viewport: phone, isMobile: true, hasTouch: true });
    try {
      const p = await phoneContext.newPage();
      watch(p, 'phone');
      const pages: [string, string, string][] = [
        ['network', '/ui/', 'validators'],
        ['ledger', '/ui/ledger', 'blocks'],
        ['configs', `/ui/configs/${target}`, 'diff'],
        ['fleet', '/ui/fleet', 'devices'],
        ['verify', `/ui/verify?hash=${v2Hash}`, 'proof-verdict'],
      ];
      for (const [name, path, testId] of pages) {
        await p.goto(`${net.apiUrl(0)}${path}`);
        await waitShown(p, p.getByTestId(testId).first());
        const overflow = Number(await p.evaluate('document.documentElement.scrollWidth - window.innerWidth'));
        assert.ok(overflow <= 0, `${name} is ${overflow} px wider than the phone's screen`);
        await shot(p, `${name}-390x844`);
      }
    } finally {
      await phoneContext.close();
    }
  });

  it('shows a killed validator as down within seconds', async () => {
    await page.getByTestId('nav-network').click();
    await page.locator('[data-testid="validator-3"][data-state="up"]').waitFor();
    killedOrigins.add(new URL(net.apiUrl(3)).origin);
    const killedAt = Date.now();
    await net.kill9(3);
    await page.locator('[data-testid="validator-3"][data-state="down"]').waitFor({ timeout: 10_000 });
    const seconds = (Date.now() - killedAt) / 1000;
    assert.ok(seconds < 10, `down after ${seconds} s`);
    await page.locator('[data-testid="validator-0"][data-state="up"]').waitFor();
    await shot(page, 'network-killed-1280x800');
  });

  it('logged no console errors on any page', () => {
    assert.deepEqual(consoleErrors, []);
  });
});

/**
 * Ledger data for every page: an attested demo version; two released versions (inline content) of
 * web-config and of group:cameras; devices that are compliant, behind, failed and revoked; and
 * a rollout of group:cameras v2 in two waves, recorded before the devices report, which halts.
 */
async function seed(net: TestNetwork): Promise<void> {
  const chainId = net.init.genesis.chainId;
  const admins = ['admin-1', 'admin-2'].map((id) => ({
    id,
    privateKey: loadPrivateKey(paths.adminKey(net.dir, id)).privateKey,
  }));
  const admin = admins[0];
  assert.ok(admin !== undefined);
  const release = (releaseTarget: string, version: number, text: string) => {
    const bytes = Buffer.from(text);
    return signRelease(
      {
        type: 'release',
        chainId,
        target: releaseTarget as TargetName,
        version,
        sha256: sha256Hex(bytes) as Hash32Hex,
        size: bytes.length,
        mediaType: 'text/plain',
        content: bytes.toString('base64'),
      },
      admins,
    );
  };
  // [id, group, target, key]: the cameras follow their group's target, the gateway web-config.
  const devices: [string, string, string, KeyPair][] = [
    ['cam-1', 'cameras', groupTarget, generateKeyPair()],
    ['cam-2', 'cameras', groupTarget, generateKeyPair()],
    ['cam-3', 'cameras', groupTarget, generateKeyPair()],
    ['cam-4', 'cameras', groupTarget, generateKeyPair()],
    ['gw-1', 'gateways', target, generateKeyPair()],
    ['cam-5', 'cameras', groupTarget, generateKeyPair()],
  ];
  const enroll = ([id, group, deviceTarget, key]: [string, string, string, KeyPair]) =>
    signAsAdmin(
      {
        type: 'device-enroll',
        chainId,
        deviceId: id as DeviceId,
        publicKey: key.publicKeyHex as PublicKeyHex,
        group,
        target: deviceTarget as TargetName,
      },
      admin.id,
      admin.privateKey,
    );
  // Independent transactions go together, so the seed takes few consensus rounds; v2 is released
  // only after v1 committed, because a version must be newer than the current one.
  await Promise.all([
    net.validateHash(0, sha256OfText('1')).then((a) => assert.equal(a.body, answers.added)),
    ...[target, groupTarget].map((t) =>
      submit(net, release(t, 1, v1Text)).then(() => submit(net, release(t, 2, v2Text))),
    ),
    ...devices.map((d) => submit(net, enroll(d))),
  ]);
  // The rollout commits before any report, so the ledger counts every report on v2 in it (cam-3's
  // revocation, before or after the rollout, leaves it out either way).
  await Promise.all([
    submit(
      net,
      signRelease(
        {
          type: 'rollout',
          chainId,
          rolloutId: rolloutId,
          target: groupTarget as TargetName,
          version: 2,
          waves: [...rolloutWaves],
          maxFailuresPercent: 50,
        },
        admins,
      ),
    ),
    submit(
      net,
      signAsAdmin(
        { type: 'device-revoke', chainId, deviceId: 'cam-3' as DeviceId, reason: 'stolen' },
        admin.id,
        admin.privateKey,
      ),
    ),
  ]);
  // [device index, version, status, sha256]: cam-5 says it applied v2 but names v1's bytes, which
  // the ledger counts as a failure of the rollout.
  const reports: [number, number, 'applied' | 'failed', string][] = [
    [0, 2, 'applied', v2Hash],
    [1, 1, 'applied', v1Hash],
    [3, 2, 'failed', v2Hash],
    [4, 2, 'failed', v2Hash],
    [5, 2, 'applied', v1Hash],
  ];
  await Promise.all(
    reports.map(([index, version, status, reported]) => {
      const device = devices[index];
      assert.ok(device !== undefined);
      return submit(
        net,
        signAsDevice(
          {
            type: 'device-report',
            chainId,
            deviceId: device[0] as DeviceId,
            seq: 1,
            target: device[2] as TargetName,
            version,
            sha256: reported as Hash32Hex,
            status,
            detail: status === 'failed' ? 'flash write error' : '',
          },
          device[3].privateKey,
        ),
      );
    }),
  );
}

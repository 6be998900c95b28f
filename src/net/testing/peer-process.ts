/**
 * A validator's peer transport alone in its own process, for tests that need a real OS process
 * to stop and continue (SIGSTOP/SIGCONT) or kill. It echoes every message back to its sender
 * as { echo: message } and prints one JSON line per peer status change on stdout.
 *
 * Usage: node --import tsx src/net/testing/peer-process.ts <options.json>
 * where options.json is { self, validators, tls: { caPem, certPem, keyPem } }.
 */
import { readFileSync } from 'node:fs';
import pino from 'pino';
import type { ValidatorId } from '../../encoding/brand.ts';
import { type PeerAddress, type TlsCredentials, TlsTransport } from '../tls-transport.ts';

interface Options {
  readonly self: number;
  readonly validators: PeerAddress[];
  readonly tls: TlsCredentials;
}

const path = process.argv[2];
if (path === undefined) throw new Error('usage: peer-process.ts <options.json>');
const options = JSON.parse(readFileSync(path, 'utf8')) as Options;
const transport = new TlsTransport({
  self: options.self as ValidatorId,
  validators: options.validators,
  tls: options.tls,
  logger: pino({ level: 'silent' }),
});
transport.onMessage((from, message) => transport.send(from, { echo: message }));
transport.onPeerStatus((status) => process.stdout.write(`${JSON.stringify(status)}\n`));
await transport.start();
process.stdout.write(`${JSON.stringify({ started: options.self })}\n`);
const shutdown = () => {
  void transport.stop().then(() => process.exit(0));
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

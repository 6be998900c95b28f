/**
 * The load generator's HTTP/1.1 client: one keep-alive connection per simulated client, one
 * request in flight on it, each request written as one prepared string and each answer parsed only
 * as far as a benchmark needs (status, Content-Length, body).
 *
 * Why not node:http: its client costs about 100 us of CPU per request on this machine (measured
 * with `npm run bench -- system`, which prints the load generator's CPU per committed attest). On
 * two cores shared with the four validators and both config servers, that is CPU taken from the
 * system being measured; wrk and similar generators are lean for the same reason.
 *
 * Answers without a Content-Length (chunked, or delimited by closing) are reported as an error
 * answer naming the cause, so a benchmark never counts a reply it did not read whole.
 */
import { connect, type Socket } from 'node:net';

const headerEnd = Buffer.from('\r\n\r\n');

/** What one request came to: the status code and body, or why there was none. */
export type Answer =
  | { readonly ok: true; readonly status: number; readonly body: string }
  | { readonly ok: false; readonly error: string };

/** An answer as the benchmark tallies it: status and the start of the body, or the error. */
export function describeAnswer(answer: Answer): string {
  return answer.ok ? `${answer.status} ${answer.body.slice(0, 60)}` : `error ${answer.error}`;
}

interface Pending {
  readonly resolve: (answer: Answer) => void;
  readonly timer: NodeJS.Timeout;
}

export class LoadConnection {
  readonly #host: string;
  readonly #port: number;
  readonly #hostHeader: string;
  readonly #timeoutMs: number;
  #socket: Socket | undefined;
  #buffered: Buffer = Buffer.alloc(0);
  #pending: Pending | undefined;

  constructor(url: URL, timeoutMs = 15_000) {
    if (url.protocol !== 'http:')
      throw new Error(`the load generator speaks plain http, not ${url.protocol}`);
    this.#host = url.hostname;
    this.#port = Number(url.port || 80);
    this.#hostHeader = url.host;
    this.#timeoutMs = timeoutMs;
  }

  /** POSTs a JSON body; never rejects (a failure is an answer with ok false). */
  post(path: string, body: string): Promise<Answer> {
    if (this.#pending !== undefined) throw new Error('one request at a time on a load connection');
    const head =
      `POST ${path} HTTP/1.1\r\nHost: ${this.#hostHeader}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n`;
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.#fail(`no answer within ${this.#timeoutMs} ms`), this.#timeoutMs);
      this.#pending = { resolve, timer };
      this.#open().write(head + body);
    });
  }

  close(): void {
    this.#socket?.destroy();
    this.#socket = undefined;
  }

  #open(): Socket {
    if (this.#socket !== undefined) return this.#socket;
    const socket = connect({ host: this.#host, port: this.#port, noDelay: true });
    this.#socket = socket;
    this.#buffered = Buffer.alloc(0);
    // A socket given up on (closed after an answer, an error or a timeout) may still report
    // events; only the current one may settle the request in flight.
    socket.on('data', (chunk: Buffer) => {
      if (this.#socket !== socket) return;
      this.#buffered = this.#buffered.length === 0 ? chunk : Buffer.concat([this.#buffered, chunk]);
      this.#parse();
    });
    socket.on('error', (error) => {
      if (this.#socket === socket) this.#fail(error.message);
    });
    socket.on('close', () => {
      if (this.#socket === socket) this.#fail('the server closed the connection before answering');
    });
    return socket;
  }

  #parse(): void {
    const end = this.#buffered.indexOf(headerEnd);
    if (end < 0) return;
    const head = this.#buffered.subarray(0, end).toString('latin1');
    const status = Number(head.slice(9, 12));
    const lines = head.split('\r\n');
    let length = -1;
    let closing = false;
    for (const line of lines) {
      const colon = line.indexOf(':');
      if (colon < 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === 'content-length') length = Number(value);
      else if (name === 'connection' && value.toLowerCase() === 'close') closing = true;
    }
    if (!Number.isSafeInteger(length) || length < 0 || !Number.isInteger(status)) {
      this.#fail(`an answer without a Content-Length the load generator can read: ${lines[0] ?? ''}`);
      this.close();
      return;
    }
    const bodyStart = end + headerEnd.length;
    if (this.#buffered.length < bodyStart + length) return;
    const body = this.#buffered.subarray(bodyStart, bodyStart + length).toString('utf8');
    this.#buffered = this.#buffered.subarray(bodyStart + length);
    if (closing) this.close();
    this.#settle({ ok: true, status, body });
  }

  #fail(error: string): void {
    this.close();
    this.#settle({ ok: false, error });
  }

  #settle(answer: Answer): void {
    const pending = this.#pending;
    if (pending === undefined) return;
    this.#pending = undefined;
    clearTimeout(pending.timer);
    pending.resolve(answer);
  }
}

/**
 * GET /v1/events: live updates for the dashboard as server-sent events (text/event-stream).
 *
 *   event: block    data: {height, hash, timestampMs, txCount, txIds}   for every committed block
 *   event: status   data: the NodeStatus of GET /v1/status               once a second
 *   : keepalive                                                          every 15 s
 *
 * One hub serves every stream of a server: one facade block listener and one status timer, both
 * only while someone listens, and each event serialized once for all streams. Bounded: at most
 * eventSubscribersMax streams (more get 503), and a stream whose client cannot keep up (more than
 * eventStreamBufferBytesMax unsent) is closed rather than buffered without limit; an EventSource
 * reconnects by itself.
 */
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import {
  eventKeepaliveMs,
  eventStatusIntervalMs,
  eventStreamBufferBytesMax,
  eventSubscribersMax,
} from '../constants.ts';
import { ApiError, ApiErrorCode } from './errors.ts';
import type { BlockEvent, NodeFacade } from './facade.ts';

export interface EventHubOptions {
  readonly statusIntervalMs?: number;
  readonly keepaliveMs?: number;
}

export class EventHub {
  readonly #facade: NodeFacade;
  readonly #statusIntervalMs: number;
  readonly #keepaliveMs: number;
  readonly #streams = new Set<ServerResponse>();
  #stopBlocks: (() => void) | null = null;
  #statusTimer: NodeJS.Timeout | null = null;
  #keepaliveTimer: NodeJS.Timeout | null = null;
  /** Streams closed because their client fell behind (for tests and logs). */
  dropped = 0;

  constructor(facade: NodeFacade, options: EventHubOptions = {}) {
    this.#facade = facade;
    this.#statusIntervalMs = options.statusIntervalMs ?? eventStatusIntervalMs;
    this.#keepaliveMs = options.keepaliveMs ?? eventKeepaliveMs;
  }

  get subscribers(): number {
    return this.#streams.size;
  }

  /** Takes over the reply and keeps it open as an event stream until the client goes. */
  subscribe(req: FastifyRequest, reply: FastifyReply): void {
    if (this.#streams.size >= eventSubscribersMax) {
      throw new ApiError(
        ApiErrorCode.unavailable,
        `this validator already serves ${eventSubscribersMax} event streams; close one or use another validator`,
      );
    }
    // Headers other hooks set on the reply (the dashboard's CORS header) go out with the stream.
    const hooked = reply.getHeaders() as OutgoingHttpHeaders;
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      ...hooked,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    this.#streams.add(res);
    const forget = () => this.remove(res);
    req.raw.once('close', forget);
    res.once('close', forget);
    this.start();
    // A new client sees the node's state at once instead of after the first interval.
    this.send(res, `retry: 2000\n\n${statusFrame(this.#facade)}`);
  }

  /** Ends every stream (the server is closing). */
  closeAll(): void {
    for (const res of [...this.#streams]) {
      this.remove(res);
      res.end();
    }
  }

  private start(): void {
    if (this.#stopBlocks !== null) return;
    this.#stopBlocks = this.#facade.onBlock((event) => this.broadcast(blockFrame(event)));
    this.#statusTimer = setInterval(() => this.broadcast(statusFrame(this.#facade)), this.#statusIntervalMs);
    this.#keepaliveTimer = setInterval(() => this.broadcast(': keepalive\n\n'), this.#keepaliveMs);
  }

  private stop(): void {
    this.#stopBlocks?.();
    this.#stopBlocks = null;
    if (this.#statusTimer !== null) clearInterval(this.#statusTimer);
    if (this.#keepaliveTimer !== null) clearInterval(this.#keepaliveTimer);
    this.#statusTimer = null;
    this.#keepaliveTimer = null;
  }

  private remove(res: ServerResponse): void {
    if (!this.#streams.delete(res)) return;
    if (this.#streams.size === 0) this.stop();
  }

  private broadcast(frame: string): void {
    for (const res of [...this.#streams]) this.send(res, frame);
  }

  private send(res: ServerResponse, frame: string): void {
    if (res.destroyed || res.writableEnded) {
      this.remove(res);
      return;
    }
    res.write(frame);
    if (res.writableLength > eventStreamBufferBytesMax) {
      // The client reads slower than events come: drop it rather than buffer without bound.
      this.dropped++;
      this.remove(res);
      res.destroy();
    }
  }
}

function blockFrame(event: BlockEvent): string {
  return `event: block\ndata: ${JSON.stringify(event)}\n\n`;
}

function statusFrame(facade: NodeFacade): string {
  return `event: status\ndata: ${JSON.stringify(facade.status())}\n\n`;
}

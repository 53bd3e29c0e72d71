/**
 * One pipeline shared by every front adapter: the stage list plus the few
 * things adapters need to start a request (a context with a correlation id
 * and a body sized to the gateway's largest limit).
 */
import { randomBytes } from 'node:crypto';
import { KcmError } from '../../../common/src/errors.ts';
import { type AdapterName, correlationIdOf, type PeerInfo, type RequestContext, type Responder } from './context.ts';
import { RequestBody } from './request-body.ts';
import { errorResponse } from './responses.ts';
import { type PipelineLog, runPipeline } from './run.ts';
import type { Stage } from './stages.ts';

/** What an adapter copies out of its transport, synchronously, to start a request. */
export interface AdapterRequest {
  adapter: AdapterName;
  method: string;
  path: string;
  query: string;
  headers: Record<string, string>;
  peer: PeerInfo;
  responder: Responder;
  startedAt: bigint;
}

const noop = (): void => {};

/**
 * One request's context (see RequestContext): the adapter's fields set once,
 * the abort accessors on the prototype, so a request defines no accessor of
 * its own (an object literal with get/set defines them at run time, per request).
 */
class PipelineContext implements RequestContext {
  readonly adapter: AdapterName;
  readonly method: string;
  readonly path: string;
  readonly query: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly peer: PeerInfo;
  readonly responder: Responder;
  readonly startedAt: bigint;
  routeName = 'unmatched';
  params: Record<string, string> = {};
  responded = false;
  #aborted = false;
  #hooks: (() => void)[] | undefined;

  constructor(
    r: AdapterRequest,
    readonly correlationId: string,
    readonly body: RequestBody,
  ) {
    this.adapter = r.adapter;
    this.method = r.method;
    this.path = r.path;
    this.query = r.query;
    this.headers = r.headers;
    this.peer = r.peer;
    this.responder = r.responder;
    this.startedAt = r.startedAt;
  }

  get aborted(): boolean {
    return this.#aborted;
  }

  set aborted(v: boolean) {
    if (this.#aborted || !v) return;
    this.#aborted = true;
    const hooks = this.#hooks;
    if (hooks) for (const fn of hooks.splice(0)) fn();
  }

  onAbort(fn: () => void): () => void {
    if (this.#aborted) {
      fn();
      return noop;
    }
    if (this.#hooks) this.#hooks.push(fn);
    else this.#hooks = [fn];
    return () => {
      const hooks = this.#hooks;
      const i = hooks ? hooks.indexOf(fn) : -1;
      if (i >= 0) hooks?.splice(i, 1);
    };
  }
}

export class Pipeline {
  readonly #prefix = randomBytes(6).toString('hex');
  #seq = 0;

  /**
   * @param stages the named stages in order (stages.ts buildStages)
   * @param hardCap the largest body any route accepts: adapters never buffer
   *   more. Read once per request; a policy reload sets it again.
   */
  constructor(
    readonly stages: readonly Stage[],
    public hardCap: number,
    readonly log: PipelineLog,
  ) {}

  /** Parses Content-Length: undefined when absent, NaN when malformed (the adapter answers 400). */
  static declaredLength(headers: Readonly<Record<string, string>>): number | undefined {
    const v = headers['content-length'];
    if (v === undefined) return undefined;
    return /^[0-9]{1,15}$/.test(v) ? Number(v) : Number.NaN;
  }

  /** Requests whose stages have not finished (started by run(), not yet recorded). */
  get inFlight(): number {
    return this.#inFlight;
  }

  #inFlight = 0;
  #idle: (() => void)[] = [];

  /**
   * A fresh context; `onOverflow` lets the adapter stop reading a body past
   * the hard cap. `ctx.onAbort` hooks run when the adapter sets
   * `ctx.aborted = true`.
   */
  newContext(r: AdapterRequest, declaredLength: number | undefined, onOverflow?: () => void): RequestContext {
    return new PipelineContext(
      r,
      correlationIdOf(r.headers, () => `${this.#prefix}${(this.#seq++).toString(16)}`),
      new RequestBody(declaredLength, this.hardCap, onOverflow),
    );
  }

  #draining = false;

  /** From now on, new requests are answered 503 `not_ready` (connection closed) without running their stages. */
  drain(): void {
    this.#draining = true;
  }

  /** Runs the stages; never rejects. */
  run(ctx: RequestContext): void {
    this.#inFlight++;
    if (this.#draining) {
      ctx.error = new KcmError('not_ready', 'the gateway is shutting down');
      ctx.response = { ...errorResponse(ctx.error), close: true };
    }
    const p = runPipeline(this.stages, ctx, this.log);
    if (!p) {
      this.#done();
      return;
    }
    p.then(
      () => this.#done(),
      (err: unknown) => {
        this.log(`pipeline runner failed: ${err instanceof Error ? err.name : 'error'}`);
        this.#done();
      },
    );
  }

  #done(): void {
    if (--this.#inFlight > 0) return;
    for (const f of this.#idle.splice(0)) f();
  }

  /**
   * Resolves when no request is in flight, or after `timeoutMs` (true when
   * idle, false on the timeout). Used to drain before closing.
   */
  whenIdle(timeoutMs: number): Promise<boolean> {
    if (this.#inFlight === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#idle = this.#idle.filter((f) => f !== done);
        resolve(false);
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.#idle.push(done);
    });
  }
}

/**
 * One pipeline shared by every front adapter: the stage list plus the few
 * things adapters need to start a request (a context with a correlation id
 * and a body sized to the gateway's largest limit).
 */
import { randomBytes } from 'node:crypto';
import { type AdapterName, correlationIdOf, type PeerInfo, type RequestContext, type Responder } from './context.ts';
import { RequestBody } from './request-body.ts';
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

export class Pipeline {
  readonly #prefix = randomBytes(6).toString('hex');
  #seq = 0;

  /**
   * @param stages the named stages in order (stages.ts buildStages)
   * @param hardCap the largest body any route accepts: adapters never buffer more
   */
  constructor(
    readonly stages: readonly Stage[],
    readonly hardCap: number,
    readonly log: PipelineLog,
  ) {}

  /** Parses Content-Length: undefined when absent, NaN when malformed (the adapter answers 400). */
  static declaredLength(headers: Readonly<Record<string, string>>): number | undefined {
    const v = headers['content-length'];
    if (v === undefined) return undefined;
    return /^[0-9]{1,15}$/.test(v) ? Number(v) : Number.NaN;
  }

  /** A fresh context; `onOverflow` lets the adapter stop reading a body past the hard cap. */
  newContext(r: AdapterRequest, declaredLength: number | undefined, onOverflow?: () => void): RequestContext {
    return {
      adapter: r.adapter,
      method: r.method,
      path: r.path,
      query: r.query,
      headers: r.headers,
      peer: r.peer,
      responder: r.responder,
      startedAt: r.startedAt,
      correlationId: correlationIdOf(r.headers, () => `${this.#prefix}${(this.#seq++).toString(16)}`),
      body: new RequestBody(declaredLength, this.hardCap, onOverflow),
      aborted: false,
      routeName: 'unmatched',
      params: {},
      responded: false,
    };
  }

  /** Runs the stages; never rejects. */
  run(ctx: RequestContext): void {
    const p = runPipeline(this.stages, ctx, this.log);
    if (p) p.catch((err: unknown) => this.log(`pipeline runner failed: ${err instanceof Error ? err.name : 'error'}`));
  }
}

/**
 * Runs the stages of one request. Never rejects: a stage's error becomes the
 * response (KcmError → its table status; anything else → 500
 * `internal_error`, detail to the log), a client abort stops the stages and
 * writes nothing, and `respond` and `record` always run.
 */
import { KcmError } from '../../../common/src/errors.ts';
import type { RequestContext } from './context.ts';
import { ClientAbortedError } from './request-body.ts';
import { errorResponse, toKcmError } from './responses.ts';
import type { Stage } from './stages.ts';

/** Where the runner reports internal errors (never with request data). */
export type PipelineLog = (message: string) => void;

function fail(ctx: RequestContext, err: unknown, log: PipelineLog): void {
  if (err instanceof ClientAbortedError || ctx.aborted) {
    ctx.aborted = true;
    return;
  }
  const k = toKcmError(err);
  if (k.source === 'internal') {
    const what =
      err instanceof KcmError ? err.message : err instanceof Error ? `${err.name}: ${err.message}` : 'thrown value';
    log(`[${ctx.correlationId}] ${ctx.routeName}: ${what}`);
  }
  ctx.error = k;
  ctx.response = errorResponse(k);
}

function isFinal(stage: Stage): boolean {
  return stage.name === 'respond' || stage.name === 'record';
}

/** Stages that run whatever happened before them: the audit record (it never throws), respond, record. */
function alwaysRuns(stage: Stage): boolean {
  return stage.name === 'audit' || isFinal(stage);
}

/**
 * Once a response exists, the stages up to `respond` are skipped, except
 * `audit` (every answer of an audited route is recorded, refusals too) and
 * `response-transform`, which sees every response that is not an error (the
 * upstream's answer, or a stage's early answer): decrypting fields on the way
 * out must not depend on who produced the body. After an abort only `audit`,
 * `respond` (which then writes nothing) and `record` run.
 */
function skips(stage: Stage, ctx: RequestContext): boolean {
  if (alwaysRuns(stage)) return false;
  if (ctx.aborted) return true;
  if (stage.name === 'response-transform') return !ctx.response || ctx.error !== undefined;
  return ctx.response !== undefined;
}

/**
 * Runs `stages` from index `from` on `ctx`. Synchronous stages run without a
 * turn of the event loop, so an early answer (404, 413 by Content-Length) is
 * written before the adapter's handler returns.
 */
export function runPipeline(
  stages: readonly Stage[],
  ctx: RequestContext,
  log: PipelineLog,
  from = 0,
): Promise<void> | undefined {
  for (let i = from; i < stages.length; i++) {
    const stage = stages[i] as Stage;
    if (skips(stage, ctx)) continue;
    let result: void | Promise<void>;
    try {
      result = stage.run(ctx);
    } catch (err) {
      if (isFinal(stage)) log(`[${ctx.correlationId}] stage ${stage.name} failed`);
      else fail(ctx, err, log);
      continue;
    }
    if (result) {
      return result.then(
        () => runPipeline(stages, ctx, log, i + 1),
        (err: unknown) => {
          if (isFinal(stage)) log(`[${ctx.correlationId}] stage ${stage.name} failed`);
          else fail(ctx, err, log);
          return runPipeline(stages, ctx, log, i + 1);
        },
      );
    }
  }
  return undefined;
}

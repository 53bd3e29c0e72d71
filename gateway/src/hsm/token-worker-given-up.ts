/**
 * The error a token job fails with when its worker was given up (a deadline
 * passed, or the pool closed while it was inside a call): `exited` settles
 * when that worker's thread has ended (its token call returned), after
 * which what the call used (a session) may be closed. Apart from the
 * workers (token-workers.ts), so the transport key set-up can tell it
 * without importing the pool.
 */
import { KcmError } from '../../../common/src/errors.ts';

export class TokenWorkerGivenUp extends KcmError {
  constructor(
    message: string,
    readonly exited: Promise<void>,
  ) {
    super('hsm_unavailable', message);
  }
}

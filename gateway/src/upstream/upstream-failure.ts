/**
 * The one error type of the gateway's upstream client (h1-client.ts,
 * h1-parser.ts). `kind` says what happened; forward.ts maps it to the
 * table error the caller sees. Messages never carry upstream bytes.
 */
export type UpstreamFailureKind =
  /** Refused, reset, closed early, or the pool is closed. */
  | 'unavailable'
  /** Connect, response-headers, body or queue-wait deadline passed. */
  | 'timeout'
  /** Every connection of the origin is busy and its wait queue is full: nothing was sent. */
  | 'busy'
  /** The bytes are not an HTTP/1.1 response. */
  | 'bad_response'
  /** The response body is over the size cap. */
  | 'too_large'
  /** The request cannot be sent as is (a header or path with control characters). */
  | 'bad_request'
  /** The caller gave up (client went away). */
  | 'aborted';

export class UpstreamFailure extends Error {
  override readonly name = 'UpstreamFailure';
  constructor(
    readonly kind: UpstreamFailureKind,
    message: string,
  ) {
    super(message);
  }
}

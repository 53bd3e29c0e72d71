/**
 * Checks audit log lines one at a time against the rules of docs/audit.md
 * "Verifier rules" 1–6: canonical form, consecutive sequence numbers, the
 * hash chain, one genesis line first, checkpoints with the log id, the event
 * count and a valid Ed25519 signature. Used by the verifier (whole log) and
 * by the writer when it resumes a log (the lines after the last checkpoint).
 */
import { KcmError } from '../errors.ts';
import { verifySignature } from './checkpoint-signer.ts';
import {
  type AuditLine,
  type CheckpointLine,
  chainHash,
  checkpointBody,
  checkpointSigningInput,
  GENESIS_PREV,
  parseLine,
} from './record-format.ts';

/** The first thing wrong with a log: the sequence number expected at that place, its 1-based line, and why. */
export interface AuditProblem {
  seq: number;
  line: number;
  problem: string;
}

/** Where checking starts: from the beginning of a log, or after a known-good line (a checkpoint). */
export interface ChainPosition {
  nextSeq: number;
  prev: string;
  logId: string | null;
  events: number;
}

export const START: ChainPosition = { nextSeq: 0, prev: GENESIS_PREV, logId: null, events: 0 };

/** Checks a checkpoint's signature under `publicKey`; the line carries everything the signature covers. */
export function checkpointSignatureValid(c: CheckpointLine, publicKey: string): boolean {
  const unsigned = checkpointBody(c.seq, c.time, c.logId, c.reason, c.events);
  return verifySignature(checkpointSigningInput(c.prev, unsigned), c.sig, publicKey);
}

export class ChainChecker {
  #pos: ChainPosition;
  /** The last line accepted, if any. */
  last: AuditLine | null = null;
  lastCheckpoint: CheckpointLine | null = null;
  checkpoints = 0;

  constructor(
    readonly publicKey: string,
    from: ChainPosition = START,
  ) {
    this.#pos = { ...from };
  }

  get position(): Readonly<ChainPosition> {
    return this.#pos;
  }

  /** Checks the next line; returns what is wrong with it (naming the expected seq and 1-based line number) or null. */
  next(raw: Buffer, complete = true): AuditProblem | null {
    const seq = this.#pos.nextSeq;
    const at = (problem: string): AuditProblem => ({ seq, line: seq + 1, problem });
    if (!complete) return at('incomplete last line (no newline): cut off or appended to');
    let l: AuditLine;
    let body: string;
    try {
      ({ parsed: l, body } = parseLine(raw));
    } catch (err) {
      if (err instanceof KcmError) return at(`malformed record (${err.detail ?? err.message}): edited?`);
      throw err;
    }
    if (l.seq !== seq)
      return at(`has seq ${l.seq}, expected ${seq}: a record was deleted, inserted or moved before this line`);
    if (l.prev !== this.#pos.prev)
      return at(`prev does not match the hash of seq ${seq - 1}: a record was deleted, inserted or moved`);
    if (chainHash(l.prev, body) !== l.hash) return at('hash does not match the record: the record was edited');
    if (seq === 0 && l.type !== 'genesis') return at('the first line is not a genesis line');
    if (l.type === 'genesis') {
      if (l.publicKey !== this.publicKey) return at('the log was started with another signing key than the one given');
      this.#pos.logId = l.logId;
    } else if (l.type === 'checkpoint') {
      if (l.logId !== this.#pos.logId) return at('checkpoint names another log id: spliced from another log');
      if (l.events !== this.#pos.events)
        return at(`checkpoint counts ${l.events} events, the chain holds ${this.#pos.events}`);
      if (!checkpointSignatureValid(l, this.publicKey))
        return at(
          `checkpoint signature is invalid (forged, or signed by another key): records after seq ${this.lastCheckpoint?.seq ?? 0} cannot be trusted`,
        );
      this.lastCheckpoint = l;
      this.checkpoints++;
    } else {
      this.#pos.events++;
    }
    this.#pos.nextSeq = seq + 1;
    this.#pos.prev = l.hash;
    this.last = l;
    return null;
  }
}

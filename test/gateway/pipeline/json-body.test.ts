/** Body checks: media type, size, UTF-8, depth and syntax are typed 4xx errors that never quote the body. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { KcmError } from '../../../common/src/errors.ts';
import { nodeValue } from '../../../gateway/src/pipeline/field-targets.ts';
import { isJsonMediaType, scanJsonBody } from '../../../gateway/src/pipeline/json-body.ts';
import { compilePlan } from '../../../gateway/src/pipeline/json-scan.ts';
import type { BodyLimits } from '../../../gateway/src/policy/policy-types.ts';
import { DEFAULT_LIMITS } from '../../../gateway/src/policy/policy-types.ts';
import { MARKER } from './helpers.ts';

const JSON_TYPE = 'application/json';
const body = (s: string) => Buffer.from(s, 'utf8');
const NO_PLAN = compilePlan([]);

/** The whole body's value, through the checks and the scan. */
function parseJsonBody(bytes: Uint8Array, type: string | undefined, limits: BodyLimits): unknown {
  const scanned = scanJsonBody(bytes, type, limits, NO_PLAN);
  return nodeValue(scanned.bytes, scanned.root);
}

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof KcmError, String(err));
    assert.ok(!err.message.includes(MARKER), 'the body leaked into the error');
    return err.code;
  }
  return 'ok';
}

describe('JSON body', () => {
  it('accepts application/json and +json with at most a UTF-8 charset', () => {
    for (const t of [
      'application/json',
      'Application/JSON; charset=UTF-8',
      'application/problem+json',
      'application/json;charset="utf-8"',
    ]) {
      assert.ok(isJsonMediaType(t), t);
    }
    for (const t of [
      undefined,
      '',
      'text/json',
      'application/jsonx',
      'application/json; charset=latin1',
      'application/json; x=1',
      'text/plain',
    ]) {
      assert.ok(!isJsonMediaType(t), String(t));
    }
    assert.equal(
      code(() => parseJsonBody(body('{}'), 'text/plain', DEFAULT_LIMITS)),
      'unsupported_media_type',
    );
  });

  it('refuses bodies over the limit before reading them', () => {
    const limits = { ...DEFAULT_LIMITS, bodyBytes: 10 };
    assert.equal(
      code(() => parseJsonBody(body(`"${MARKER}"`), JSON_TYPE, limits)),
      'body_too_large',
    );
    assert.equal(
      code(() => parseJsonBody(body('"12345678"'), JSON_TYPE, limits)),
      'ok',
    );
  });

  it('refuses malformed JSON and invalid UTF-8 without quoting the body', () => {
    for (const bad of [`{"a": "${MARKER}"`, `{"a": ${MARKER}}`, '', `["${MARKER}",]`, `{"a":1} ${MARKER}`]) {
      assert.equal(
        code(() => parseJsonBody(body(bad), JSON_TYPE, DEFAULT_LIMITS)),
        'json_malformed',
        bad,
      );
    }
    const latin1 = Buffer.concat([body(`"${MARKER}`), Buffer.from([0xe9, 0x22])]);
    assert.equal(
      code(() => parseJsonBody(latin1, JSON_TYPE, DEFAULT_LIMITS)),
      'json_malformed',
    );
  });

  it('refuses nesting past maxDepth, counting only structure outside strings', () => {
    const limits = { ...DEFAULT_LIMITS, maxDepth: 3 };
    assert.equal(
      code(() => parseJsonBody(body('[[[1]]]'), JSON_TYPE, limits)),
      'ok',
    );
    assert.equal(
      code(() => parseJsonBody(body('[[[[1]]]]'), JSON_TYPE, limits)),
      'json_too_deep',
    );
    assert.equal(
      code(() => parseJsonBody(body('{"a":{"b":{"c":{}}}}'), JSON_TYPE, limits)),
      'json_too_deep',
    );
    assert.equal(
      code(() => parseJsonBody(body('[["[[[[\\"[[[["]]'), JSON_TYPE, limits)),
      'ok',
    );
    const hostile = `${'['.repeat(200_000)}${']'.repeat(200_000)}`;
    assert.equal(
      code(() => parseJsonBody(body(hostile), JSON_TYPE, { ...DEFAULT_LIMITS, bodyBytes: 1 << 20 })),
      'json_too_deep',
    );
  });

  it('parses exactly what JSON.parse parses, for any JSON value within the depth limit', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), (v) => {
        const text = JSON.stringify(v);
        assert.deepEqual(parseJsonBody(body(text), JSON_TYPE, DEFAULT_LIMITS), JSON.parse(text));
      }),
      { numRuns: 200 },
    );
  });

  it('never throws anything but a typed error for random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const c = code(() => parseJsonBody(bytes, JSON_TYPE, DEFAULT_LIMITS));
        assert.ok(['ok', 'json_malformed', 'json_too_deep'].includes(c), c);
      }),
      { numRuns: 500 },
    );
  });
});

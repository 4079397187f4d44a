import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  REDACTED,
  isCredentialHeader,
  redactMessage,
  redactText,
  secretsOf,
  withoutCredentialHeaders,
} from '../../../src/chain/engine/redact.js';

describe('redaction of secrets', () => {
  it('recognises credential headers in any case', () => {
    for (const name of [
      'Authorization',
      'proxy-authorization',
      'Cookie',
      'X-Api-Key',
      'x-goog-api-key',
      'X-Auth-Token',
      'x-csrf-token',
    ])
      expect(isCredentialHeader(name), name).toBe(true);
    for (const name of ['accept', 'Content-Type', 'user-agent', 'x-request-id'])
      expect(isCredentialHeader(name), name).toBe(false);
    expect(
      withoutCredentialHeaders({ Authorization: 'Bearer x', Accept: 'application/json' }),
    ).toEqual({ Accept: 'application/json' });
    expect(withoutCredentialHeaders(undefined)).toBeUndefined();
  });

  it('takes loginInfo out of a message, at any depth, JSON or not', () => {
    const raw = JSON.stringify({
      kind: 'task',
      body: { taskId: '', loginInfo: { pw: 'hunter2' } },
    });
    expect(redactMessage(raw)).not.toContain('hunter2');
    expect(JSON.parse(redactMessage(raw)).body.loginInfo).toBe(REDACTED);
    expect(redactMessage('{"body": {"loginInfo": {"pw": "hunter2"')).not.toContain('hunter2');
    expect(redactMessage('{"kind":"task"}')).toBe('{"kind":"task"}');
  });

  it('redacts every value of the login info and credential-looking text', () => {
    const secrets = secretsOf({ user: 'alice-user', nested: { pw: 'hunter2-pw' }, pin: 1234 });
    expect(secrets).toEqual(['alice-user', 'hunter2-pw', '1234']);
    const text = redactText(
      'alice-user failed with hunter2-pw (pin 1234); Authorization: Bearer abc.def; token=xyz123',
      secrets,
    );
    for (const secret of ['alice-user', 'hunter2-pw', '1234', 'abc.def', 'xyz123'])
      expect(text).not.toContain(secret);
  });

  it('never lets a login info value through (property)', () => {
    // digits-only secrets inside text without digits: nothing but the secret can rebuild one
    const secret = fc.stringMatching(/^[0-9]{4,12}$/);
    const text = fc.stringMatching(/^[a-z :=]{0,20}$/);
    fc.assert(
      fc.property(secret, text, text, (s, a, b) => {
        expect(redactText(`${a}${s}${b}${s}`, secretsOf({ s }))).not.toContain(s);
      }),
    );
  });
});

/**
 * Redaction of secrets from what the engine keeps or reports: login info never lands in a dead
 * letter, an event or an error message, and credential headers are never persisted.
 */
import type { JsonObject, JsonValue } from '../messages.js';

/** What replaces a secret. */
export const REDACTED = '[redacted]';

/** Header names that carry credentials (compared lower-case). */
const CREDENTIAL_HEADERS = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
  'api-key',
  'apikey',
]);

/**
 * Whether a request header carries credentials: Authorization, Proxy-Authorization, Cookie,
 * an API key (`X-Api-Key`, `*-api-key`) or a token (`*token*`, e.g. `X-Auth-Token`,
 * `X-CSRF-Token`). @internal
 */
export function isCredentialHeader(name: string): boolean {
  const n = name.toLowerCase();
  return (
    CREDENTIAL_HEADERS.has(n) ||
    n.endsWith('-api-key') ||
    n.endsWith('_api_key') ||
    n.includes('token') ||
    n.includes('secret') ||
    n.includes('password')
  );
}

/** The headers without those that carry credentials (undefined stays undefined). @internal */
export function withoutCredentialHeaders(
  headers: Readonly<Record<string, string>> | undefined,
): Record<string, string> | undefined {
  if (headers === undefined) return undefined;
  const kept: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers))
    if (!isCredentialHeader(name)) kept[name] = value;
  return kept;
}

/**
 * A raw message with its login info taken out: the `loginInfo` of a (possibly malformed) task
 * message is replaced by {@link REDACTED}. Text that is not JSON but names `loginInfo` is cut
 * there. @internal
 */
export function redactMessage(message: string): string {
  if (!message.includes('loginInfo')) return message;
  try {
    const value = JSON.parse(message) as unknown;
    if (redactValue(value)) return JSON.stringify(value);
    return message;
  } catch {
    return `${message.slice(0, message.indexOf('loginInfo'))}loginInfo ${REDACTED}`;
  }
}

/** Replaces every `loginInfo` property (at any depth) by the marker; true when one was found. */
function redactValue(value: unknown, depth = 0): boolean {
  if (typeof value !== 'object' || value === null || depth > 64) return false;
  let found = false;
  if (Array.isArray(value)) {
    for (const item of value) found = redactValue(item, depth + 1) || found;
    return found;
  }
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (key === 'loginInfo') {
      record[key] = REDACTED;
      found = true;
    } else {
      found = redactValue(record[key], depth + 1) || found;
    }
  }
  return found;
}

/** The string values (at least 4 characters) of some login info: what must never be echoed. */
export function secretsOf(loginInfo: JsonObject | undefined): string[] {
  const out: string[] = [];
  const walk = (v: JsonValue, depth: number): void => {
    if (depth > 64) return;
    if (typeof v === 'string') {
      if (v.length >= 4) out.push(v);
    } else if (typeof v === 'number') {
      if (String(v).length >= 4) out.push(String(v));
    } else if (Array.isArray(v)) {
      for (const item of v) walk(item, depth + 1);
    } else if (v !== null && typeof v === 'object') {
      for (const item of Object.values(v)) walk(item, depth + 1);
    }
  };
  if (loginInfo !== undefined) walk(loginInfo, 0);
  return out;
}

/**
 * Text with every occurrence of a secret, and anything that looks like a credential
 * (`Bearer …`, `Basic …`, `password=…`, `token: …`), replaced by {@link REDACTED}. @internal
 */
export function redactText(text: string, secrets: readonly string[] = []): string {
  let out = text;
  for (const secret of secrets) if (out.includes(secret)) out = out.split(secret).join(REDACTED);
  return out
    .replace(/\b(Bearer|Basic|Digest)\s+[A-Za-z0-9._~+/=-]{4,}/g, `$1 ${REDACTED}`)
    .replace(
      /\b(password|passwd|secret|token|api[_-]?key|authorization|cookie)(["']?\s*[:=]\s*["']?)[^\s"',;&}]+/gi,
      `$1$2${REDACTED}`,
    );
}

/**
 * Redis Cluster key slots: CRC16 (XMODEM) of the key, or of its hash tag — the part between
 * the first '{' and the next '}' when that part is not empty — modulo 16384.
 */
import { invalid } from '../internal/validate.js';

const TABLE = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 8;
    for (let j = 0; j < 8; j++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
    t[i] = c;
  }
  return t;
})();

function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const b of bytes) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ b) & 0xff]!;
  return crc;
}

/**
 * The Redis Cluster slot (0..16383) of `key`.
 *
 * @throws {@link ConfigError} when `key` is not a string.
 * @example
 * ```ts
 * keySlot('{run-1}:ptm:a') === keySlot('{run-1}:gate:b'); // true: same hash tag
 * ```
 */
export function keySlot(key: string): number {
  if (typeof key !== 'string') invalid('keySlot', 'key', 'a string', key);
  const bytes = Buffer.from(key, 'utf8');
  const open = bytes.indexOf(0x7b); // '{'
  if (open >= 0) {
    const close = bytes.indexOf(0x7d, open + 1); // '}'
    if (close > open + 1) return crc16(bytes.subarray(open + 1, close)) % 16384;
  }
  return crc16(bytes) % 16384;
}

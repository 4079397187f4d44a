/**
 * Binary key layouts of the durable store. LMDB orders keys by bytes, so every layout here is
 * chosen so that byte order is the order the store needs:
 *
 * - scores and expiry times are IEEE-754 doubles with the sign bit flipped (and every bit of a
 *   negative number flipped), which sorts them numerically, -Infinity first;
 * - members are UTF-8, whose byte order is Redis' member order. A member longer than
 *   {@link MEMBER_PREFIX_BYTES} is cut there and followed by 0xFF and a SHA-256 of the whole
 *   member (0xFF never occurs in UTF-8, so the two forms cannot collide); the full member is
 *   kept in the entry's value.
 * @internal
 */
import { createHash } from 'node:crypto';

/** Longest key (UTF-8 bytes) the durable store accepts: LMDB keys stop at 1978 bytes. */
export const MAX_KEY_BYTES = 1900;
/** Bytes of a member kept in a sorted-set index key before the digest takes over. */
export const MEMBER_PREFIX_BYTES = 1024;

const LONG = 0xff;

/** 8 bytes that sort like the number (-0 sorts as 0). */
export function encodeScore(score: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeDoubleBE(score === 0 ? 0 : score, 0);
  if ((b[0]! & 0x80) !== 0) for (let i = 0; i < 8; i++) b[i] = ~b[i]! & 0xff;
  else b[0] = b[0]! | 0x80;
  return b;
}

/** The number {@link encodeScore} wrote at `offset`. */
export function decodeScore(key: Buffer, offset: number): number {
  const b = Buffer.from(key.subarray(offset, offset + 8));
  if ((b[0]! & 0x80) !== 0) b[0] = b[0]! & 0x7f;
  else for (let i = 0; i < 8; i++) b[i] = ~b[i]! & 0xff;
  return b.readDoubleBE(0);
}

/** 8 bytes of a sorted set's id (a positive safe integer), big-endian. */
export function encodeId(id: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUIntBE(id, 2, 6);
  return b;
}

/** The member's form inside a key: its UTF-8 bytes, or a prefix + 0xFF + digest when long. */
export function memberKey(member: string): { bytes: Buffer; long: boolean } {
  const utf8 = Buffer.from(member, 'utf8');
  if (utf8.length <= MEMBER_PREFIX_BYTES) return { bytes: utf8, long: false };
  const digest = createHash('sha256').update(utf8).digest();
  return {
    bytes: Buffer.concat([utf8.subarray(0, MEMBER_PREFIX_BYTES), Buffer.of(LONG), digest]),
    long: true,
  };
}

/** Whether a member key (as {@link memberKey} wrote it) is the long form. */
export function isLongMemberKey(bytes: Buffer): boolean {
  return bytes.length > MEMBER_PREFIX_BYTES && bytes[MEMBER_PREFIX_BYTES] === LONG;
}

/** The first key after every key starting with `prefix` (exclusive range end). */
export function prefixEnd(prefix: Buffer): Buffer | undefined {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i] = end[i]! + 1;
      return end.subarray(0, i + 1);
    }
  }
  return undefined;
}

/**
 * A sorted set with Redis ordering: by score, ties by member in byte order of its UTF-8
 * encoding (what Redis' memcmp gives). A skip list keeps insert, delete and the start of a
 * range O(log n); a Map from member to score answers "is it there, with what score" in O(1).
 * @internal
 */

const MAX_LEVEL = 24;

interface SkipNode {
  member: string;
  /**
   * Whether the member has no surrogate code unit (UTF-16 order is then its code point order):
   * {@link PLAIN}, {@link MIXED}, or {@link UNKNOWN} until a tie of scores needs it.
   */
  plain: number;
  score: number;
  next: (SkipNode | null)[];
}

/** {@link SkipNode.plain} not yet known. */
const UNKNOWN = 0;
const PLAIN = 1;
const MIXED = 2;

const SURROGATE = /[\uD800-\uDFFF]/;

/** Whether `s` has no surrogate: two such strings compare by code point with `<`. */
function isPlain(s: string): boolean {
  return !SURROGATE.test(s);
}

/**
 * Compares two strings by code point, which equals the byte order of their UTF-8 encodings.
 * Plain `<` compares UTF-16 code units and puts U+E000..U+FFFF after astral characters.
 */
export function compareMembers(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs === ys) return x < y ? -1 : 1;
    // a surrogate (astral code point) sorts after every BMP code unit
    return xs ? 1 : -1;
  }
  return a.length < b.length ? -1 : 1;
}

/** The plainness of a node's member (see {@link SkipNode.plain}), worked out once. */
function plainOf(node: SkipNode): boolean {
  if (node.plain === UNKNOWN) node.plain = isPlain(node.member) ? PLAIN : MIXED;
  return node.plain === PLAIN;
}

/**
 * Whether `node` sorts before (score, member); `key` is a node that carries `member` and its
 * plainness (worked out on the first tie of scores: a set whose scores differ never needs it).
 */
function before(key: SkipNode, node: SkipNode): boolean {
  if (node.score !== key.score) return node.score < key.score;
  // two strings without surrogates: the engine's compare is the code point order
  return plainOf(key) && plainOf(node)
    ? node.member < key.member
    : compareMembers(node.member, key.member) < 0;
}

export class SortedSet {
  readonly #scores = new Map<string, number>();
  readonly #head: SkipNode = {
    member: '',
    plain: PLAIN,
    score: -Infinity,
    next: new Array<SkipNode | null>(MAX_LEVEL).fill(null),
  };
  #level = 1;
  /** The key of an unlink's search (reused: every call is synchronous). */
  readonly #probe: SkipNode = { member: '', plain: UNKNOWN, score: 0, next: [] };
  /** The last node of each level (the head on an empty level): an append needs no search. */
  readonly #tails = new Array<SkipNode>(MAX_LEVEL).fill(this.#head);
  /** The predecessors of the last search (reused: every call is synchronous). */
  readonly #update = new Array<SkipNode>(MAX_LEVEL);

  get size(): number {
    return this.#scores.size;
  }

  score(member: string): number | undefined {
    return this.#scores.get(member);
  }

  /** Adds or moves `member`; true when it was new. */
  add(score: number, member: string): boolean {
    const old = this.#scores.get(member);
    if (old !== undefined) {
      if (old === score) return false;
      this.#unlink(old, member);
    }
    this.#link(score, member);
    this.#scores.set(member, score);
    return old === undefined;
  }

  /** Removes `member`; true when it was there. */
  delete(member: string): boolean {
    const old = this.#scores.get(member);
    if (old === undefined) return false;
    this.#unlink(old, member);
    this.#scores.delete(member);
    return true;
  }

  /** Members with min <= score <= max in order, skipping `offset`, at most `count` (< 0: all). */
  rangeByScore(min: number, max: number, offset = 0, count = -1): string[] {
    const out: string[] = [];
    if (count === 0 || min > max) return out;
    let node = this.#firstAtLeast(min);
    let skipped = 0;
    while (node && node.score <= max) {
      if (skipped < offset) skipped++;
      else {
        out.push(node.member);
        if (count > 0 && out.length >= count) break;
      }
      node = node.next[0]!;
    }
    return out;
  }

  /** Removes members with min <= score <= max; returns how many. */
  removeRangeByScore(min: number, max: number): number {
    if (min > max) return 0;
    const doomed: SkipNode[] = [];
    let node = this.#firstAtLeast(min);
    while (node && node.score <= max) {
      doomed.push(node);
      node = node.next[0]!;
    }
    for (const d of doomed) this.delete(d.member);
    return doomed.length;
  }

  /** Every member in order (for tests and debugging). */
  members(): string[] {
    return this.rangeByScore(-Infinity, Infinity);
  }

  #firstAtLeast(min: number): SkipNode | null {
    let x = this.#head;
    for (let i = this.#level - 1; i >= 0; i--) {
      let n = x.next[i];
      while (n && n.score < min) {
        x = n;
        n = x.next[i];
      }
    }
    return x.next[0] ?? null;
  }

  /**
   * The last node before (score, member) on each level in use (index 0: the lowest), in an
   * array reused by the next search.
   */
  #predecessors(key: SkipNode): SkipNode[] {
    const update = this.#update;
    const head = this.#head;
    const level = this.#level;
    // the two common cases need no search: a member after the last (the outbox, a batch of
    // leases) and the first member (taken or acknowledged in order)
    const tails = this.#tails;
    if (tails[0] !== head && before(key, tails[0]!)) {
      for (let i = 0; i < level; i++) update[i] = tails[i]!;
      return update;
    }
    const first = head.next[0] ?? null;
    if (first === null || !before(key, first)) {
      for (let i = 0; i < level; i++) update[i] = head;
      return update;
    }
    let x = head;
    for (let i = this.#level - 1; i >= 0; i--) {
      let n = x.next[i];
      while (n && before(key, n)) {
        x = n;
        n = x.next[i];
      }
      update[i] = x;
    }
    return update;
  }

  #link(score: number, member: string): void {
    let level = 1;
    while (level < MAX_LEVEL && Math.random() < 0.25) level++;
    const node: SkipNode = {
      member,
      plain: UNKNOWN,
      score,
      next: new Array<SkipNode | null>(level).fill(null),
    };
    const update = this.#predecessors(node);
    if (level > this.#level) {
      for (let i = this.#level; i < level; i++) update[i] = this.#head;
      this.#level = level;
    }
    const tails = this.#tails;
    for (let i = 0; i < level; i++) {
      const next = update[i]!.next[i] ?? null;
      node.next[i] = next;
      update[i]!.next[i] = node;
      if (next === null) tails[i] = node;
    }
  }

  #unlink(score: number, member: string): void {
    const probe = this.#probe;
    probe.score = score;
    probe.member = member;
    probe.plain = UNKNOWN;
    const update = this.#predecessors(probe);
    probe.member = '';
    const target = update[0]!.next[0];
    if (!target || target.member !== member) return;
    const tails = this.#tails;
    for (let i = 0; i < this.#level; i++) {
      if (update[i]!.next[i] !== target) break;
      update[i]!.next[i] = target.next[i] ?? null;
      if (tails[i] === target) tails[i] = update[i]!;
    }
    while (this.#level > 1 && this.#head.next[this.#level - 1] === null) this.#level--;
  }
}

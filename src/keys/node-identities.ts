/**
 * The identities of the chain's nodes and their hashes, for `ChainKeyBuilder`: a node's
 * identity is hashed once, found again by the object naming it or by its fields, and its state
 * key is one string shared by every object naming it.
 * @internal
 */
import { hash } from 'node:crypto';
import { ConfigError } from '../errors.js';
import { invalid, requireString } from '../internal/validate.js';
import type { PtmIdentity } from './chain-key-builder.js';

const PTM_KEY = 'ChainKeyBuilder.ptmKey';

/** Identities whose hash is kept by object (see `#ptmKey`). */
const BY_OBJECT_MAX = 256;

/** The identities hashed lately (see `ChainKeyBuilder.ptmKey`). @internal */
export class NodeIdentities {
  /** The identities hashed lately, by scope (run, account, platform, module): at most 4096. */
  readonly #scopes = new Map<string, PtmScope>();
  #hashedCount = 0;
  /** The scope of the last identity (its nodes come one after another). */
  #lastScope: PtmScope | undefined = undefined;
  readonly #byObject = new Map<PtmIdentity, Hashed>();

  /** The identity's hash, with the node's state key once built (see `ChainKeyBuilder.ptm`). */
  hashed(id: PtmIdentity): Hashed {
    if (id === null || typeof id !== 'object') invalid(PTM_KEY, 'id', 'an object', id);
    try {
      return this.#ptmKey(id);
    } catch (error) {
      if (error instanceof ConfigError) throw error;
      // a getter or a Proxy trap of the identity threw
      throw new ConfigError(
        `${PTM_KEY}: \`id\` cannot be read: ${String((error as Error)?.message)}`,
        {
          cause: error,
          context: { field: 'id' },
        },
      );
    }
  }

  #ptmKey(id: PtmIdentity): Hashed {
    // one transition names a node several times, usually by the same object: reuse its key while
    // the object still holds the same identity (a mutated object is hashed again)
    const seen = this.#byObject.get(id);
    if (
      seen !== undefined &&
      seen.prefixRequest === id.prefixRequest &&
      seen.stepIdx === id.stepIdx &&
      seen.moduleId === id.moduleId &&
      seen.runId === id.runId &&
      seen.account === id.account &&
      seen.platform === id.platform
    ) {
      return seen;
    }
    const runId = requireString(PTM_KEY, 'runId', id.runId);
    const account = requireString(PTM_KEY, 'account', id.account);
    const platform = requireString(PTM_KEY, 'platform', id.platform);
    const moduleId = requireString(PTM_KEY, 'moduleId', id.moduleId);
    const step = stepText(id.stepIdx);
    const prefixRequest =
      typeof id.prefixRequest === 'string'
        ? id.prefixRequest
        : invalid(PTM_KEY, 'prefixRequest', 'a string', id.prefixRequest);
    // another object may name a node hashed before (a successor named by its parent's commit,
    // then by its own claim): hash each identity once. The cache is keyed by the fields
    // length-prefixed in UTF-16 code units (as unambiguous as the hashed encoding, and cheaper):
    // the scope's four, then the step (digits) and the prefix request
    const byStep = this.#scope(runId, account, platform, moduleId);
    const probe = `${step}|${prefixRequest}`;
    let known = byStep.get(probe);
    if (known === undefined) {
      const encoded =
        `${Buffer.byteLength(runId, 'utf8')}:${runId}|${Buffer.byteLength(account, 'utf8')}:${account}|` +
        `${Buffer.byteLength(platform, 'utf8')}:${platform}|${Buffer.byteLength(moduleId, 'utf8')}:${moduleId}|` +
        `${step.length}:${step}|${Buffer.byteLength(prefixRequest, 'utf8')}:${prefixRequest}|`;
      known = {
        key: hash('sha256', encoded, 'hex').slice(0, 32),
        stateTask: undefined,
        stateKey: '',
      };
      if (++this.#hashedCount > 4096) {
        this.#scopes.clear();
        this.#lastScope = undefined;
        this.#hashedCount = 1;
        this.#scope(runId, account, platform, moduleId).set(probe, known);
      } else byStep.set(probe, known);
    }
    const hashed: Hashed = {
      runId,
      account,
      platform,
      moduleId,
      stepIdx: id.stepIdx,
      prefixRequest,
      key: known.key,
      state: known,
    };
    // a small identity map, not a WeakMap (weak entries cost every garbage collection): it holds
    // the last few hundred identities only (a node's claim to its commit), so an identity that
    // carries a payload (a whole message) is not kept long
    if (this.#byObject.size >= BY_OBJECT_MAX) this.#byObject.clear();
    this.#byObject.set(id, hashed);
    return hashed;
  }

  /** The identities hashed lately in a scope, by step and prefix request. */
  #scope(runId: string, account: string, platform: string, moduleId: string): Map<string, PtmKey> {
    const last = this.#lastScope;
    if (
      last !== undefined &&
      last.runId === runId &&
      last.moduleId === moduleId &&
      last.account === account &&
      last.platform === platform
    )
      return last.byStep;
    const name =
      `${runId.length}:${runId}|${account.length}:${account}|${platform.length}:${platform}|` +
      `${moduleId.length}:${moduleId}`;
    let scope = this.#scopes.get(name);
    if (scope === undefined) {
      scope = { runId, account, platform, moduleId, byStep: new Map() };
      this.#scopes.set(name, scope);
    }
    this.#lastScope = scope;
    return scope.byStep;
  }
}

/** A hashed identity (the fields it was hashed from), and the state key last built from it. */
export interface Hashed extends PtmIdentity {
  readonly key: string;
  /** The identity's key and state key, shared by every object naming it. */
  readonly state: PtmKey;
}

/** The identities hashed in one run, account, platform and module (see `NodeIdentities.#scope`). */
interface PtmScope {
  readonly runId: string;
  readonly account: string;
  readonly platform: string;
  readonly moduleId: string;
  readonly byStep: Map<string, PtmKey>;
}

/** An identity's hash, and the state key last built from it (shared by every object naming it). */
export interface PtmKey {
  key: string;
  /** The task of `stateKey`. */
  stateTask: string | undefined;
  stateKey: string;
}

function stepText(stepIdx: unknown): string {
  if (typeof stepIdx !== 'number' || !Number.isSafeInteger(stepIdx) || stepIdx < 0) {
    invalid(PTM_KEY, 'stepIdx', 'an integer >= 0', stepIdx);
  }
  return String(stepIdx);
}

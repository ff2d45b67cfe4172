/**
 * The answer cache as a run sees it: the key of a request (from its images' own bytes and the
 * settings that prepare them, so a hit needs no decoder), a lookup before anything is prepared
 * or sent, a store after a whole answer, and within a run, one request for identical images.
 *
 * `--no-cache` (or `"cache": false`) loads nothing: the store (lmdb) is imported only when the
 * cache is used. `--refresh` asks again and replaces; `--cache-only` never asks.
 */
import type { Usage } from '../api/types.js';
import {
  createKeyer,
  hashBytes,
  preparationOf,
  type PreparationIdentity,
  requestIdentityOf,
  type ImageIdentity,
  type Keyer,
} from '../cache/key.js';
import { entryFor, type CacheEntry } from '../cache/entry.js';
import type { AnswerCache } from '../cache/store.js';
import { DescribeImageError, ExitCode } from '../errors.js';
import { presentAnswer } from './structured.js';
import { modelOf, type Answer, type Job, type LoadedImage, type RunContext } from './job.js';

/** `--cache-only`: an image with no stored answer. */
export class CacheMissError extends DescribeImageError {
  constructor(name: string) {
    super(
      `${name}: no stored answer (--cache-only asks nothing); run without --cache-only to ask`,
      ExitCode.CACHE_MISS,
    );
  }
}

/** An answer found in the cache, and when it was asked. */
export interface Hit {
  answer: Answer;
  askedAt: number;
}

export class CacheSession {
  /** Requests of this run in flight, by key: identical images are asked once. */
  private readonly inFlight = new Map<string, Promise<Answer>>();
  /** How this run prepares its images: one object, so its key part is serialised once. */
  private preparation: PreparationIdentity | undefined;

  private constructor(
    private readonly job: Job,
    private readonly ctx: RunContext,
    private readonly store: AnswerCache | undefined,
    private readonly keyer: Keyer | undefined,
  ) {}

  /** Opens the store for the run (nothing at all when the cache is off). */
  static async open(job: Job, ctx: RunContext): Promise<CacheSession> {
    if (job.cache === 'off') return new CacheSession(job, ctx, undefined, undefined);
    const keyer = createKeyer(requestIdentityOf(job, modelOf(job)));
    const { openAnswerCache } = await import('../cache/store.js');
    const store = await openAnswerCache(job.cacheDir, {
      warn: (message) => ctx.reporter.warn(message),
      now: () => ctx.deps.now(),
    });
    return new CacheSession(job, ctx, store, keyer);
  }

  /** Whether answers are looked up and stored. */
  get enabled(): boolean {
    return this.store?.enabled ?? false;
  }

  /** The key of a request for these images (`prompt` when it is not the run's own). */
  keyFor(images: readonly LoadedImage[], prompt?: string): string | undefined {
    if (!this.store) return undefined;
    const keyer =
      prompt === undefined || prompt === this.job.prompt
        ? this.keyer
        : createKeyer({ ...requestIdentityOf(this.job, modelOf(this.job)), prompt });
    return keyer?.(images.map((image) => this.identityOf(image)));
  }

  /**
   * The stored answer for `key` (none with --refresh). With --cache-only, a miss is a
   * `CacheMissError` naming `name`.
   */
  lookup(key: string | undefined, name: string): Hit | undefined {
    if (key !== undefined && this.store && this.job.cache !== 'refresh') {
      const entry = this.store.get(key);
      if (entry) {
        const answer = answerFromEntry(entry, this.job, Boolean(this.ctx.deps.stdout.isTTY));
        if (answer) return { answer, askedAt: entry.askedAt };
      }
    }
    if (this.job.cache === 'only') throw new CacheMissError(name);
    return undefined;
  }

  /**
   * Asks once for each key in this run: a second request with a key already being asked waits
   * for the first one's answer (and asks on its own if that one failed). `shared` says the
   * answer was another image's.
   */
  async once(
    key: string | undefined,
    ask: () => Promise<Answer>,
    waiting?: () => void,
  ): Promise<{ answer: Answer; shared: boolean }> {
    if (key === undefined || !this.store) return { answer: await ask(), shared: false };
    const running = this.inFlight.get(key);
    if (running) {
      // Told at once, so that nothing queued behind this image waits for the other's answer.
      waiting?.();
      try {
        return { answer: await running, shared: true };
      } catch {
        // The first one failed: this one asks for itself.
      }
    }
    const asking = ask();
    this.inFlight.set(key, asking);
    try {
      const answer = await asking;
      this.put(key, answer);
      return { answer, shared: false };
    } finally {
      if (this.inFlight.get(key) === asking) this.inFlight.delete(key);
    }
  }

  /** Stores a whole answer under `key` (refusals, cut or failed answers are not stored). */
  put(key: string | undefined, answer: Answer): void {
    if (key === undefined || !this.store) return;
    const entry = entryFor(
      {
        completion: answer.completion,
        usage: answer.usage,
        structured: this.job.structured ? { checked: true, value: answer.value } : undefined,
      },
      this.ctx.deps.now(),
    );
    if (entry) this.store.put(key, entry);
  }

  /** Writes what is queued and closes the store. */
  async close(): Promise<void> {
    await this.store?.close();
  }

  private identityOf(image: LoadedImage): ImageIdentity {
    if (image.bytes === undefined) return { url: image.url };
    return {
      sha256: hashBytes(image.bytes.data),
      // The model is in the key already, and with it the rule its images are scaled by.
      preparation: (this.preparation ??= preparationOf(this.job)),
    };
  }
}

/** A stored answer as the run's `Answer`: shown as a fresh one would be. */
function answerFromEntry(entry: CacheEntry, job: Job, tty: boolean): Answer | undefined {
  const stored = entry.answer;
  let json: unknown;
  let text: string;
  let value: unknown;
  if (stored.kind === 'structured') {
    if (!job.structured) return undefined;
    const shown = presentAnswer(job.structured, stored.value, tty);
    json = shown.json;
    text = shown.text;
    value = stored.value;
  } else {
    if (job.structured) return undefined;
    json = stored.text;
    text = stored.text;
  }
  const usage: Usage | undefined = entry.usage;
  return {
    completion: {
      id: entry.id,
      model: entry.model,
      text: stored.kind === 'text' ? stored.text : text,
      refusal: false,
      finishReason: 'stop',
      usage,
    },
    json,
    text,
    usage,
    value,
  };
}

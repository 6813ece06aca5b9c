/**
 * The one scrubber. Every secret value this process resolves (the inventory's
 * passwords, the sandbox's password) is registered here when it is read, and
 * every sink applies it: the state database (src/engine/store.ts) and the
 * CLI's stdout and stderr (src/cli/main.ts). A message can then come from
 * anywhere (a host command's stderr, a Redis error, a shell echoing
 * `-a <password>`): it is scrubbed where it is kept or shown, not at each
 * place that builds it.
 *
 * Every occurrence of every secret is replaced, overlapping secrets included.
 * Secrets shorter than MIN_SECRET_LENGTH are refused where they are resolved
 * (a usage error naming the reference): replacing every "a" or "1" in the
 * output would wreck it, and replacing only whole words would let `-ab`
 * through.
 */
export const REDACTED = '***';
export const MIN_SECRET_LENGTH = 3;

const known = new Set<string>();

/** Remember a secret value for the rest of the process: every sink scrubs it from then on. */
export function registerSecret(value: string | undefined): void {
  if (value) known.add(value);
}

export function knownSecrets(): string[] {
  return [...known];
}

/** Replace every occurrence of every known secret (and of `extra`) in the text. */
export function scrubText(text: string, extra: readonly (string | undefined)[] = []): string {
  if (!text) return text;
  const secrets = extra.length ? [...new Set([...known, ...extra.filter((s): s is string => !!s)])] : [...known];
  if (secrets.length === 0) return text;
  // Mark each character covered by any occurrence of any secret, then replace
  // each covered run once: two overlapping secrets ("abcd", "cdef" in "abcdef")
  // leave no piece of either behind, whatever order they are tried in.
  let covered: Uint8Array | undefined;
  for (const s of secrets) {
    if (!s) continue;
    for (let i = text.indexOf(s); i !== -1; i = text.indexOf(s, i + 1)) {
      covered ??= new Uint8Array(text.length);
      covered.fill(1, i, i + s.length);
    }
  }
  if (!covered) return text;
  let out = '';
  for (let i = 0; i < text.length;) {
    if (covered[i]) {
      out += REDACTED;
      while (i < text.length && covered[i]) i++;
    } else {
      const start = i;
      while (i < text.length && !covered[i]) i++;
      out += text.slice(start, i);
    }
  }
  return out;
}

/** A value with every string in it (object keys too) scrubbed, for JSON that is stored or printed. */
export function scrubValue<T>(value: T): T {
  if (known.size === 0) return value;
  return walk(value) as T;
}

function walk(v: unknown): unknown {
  if (typeof v === 'string') return scrubText(v);
  if (Array.isArray(v)) return v.map(walk);
  if (v && typeof v === 'object' && !Buffer.isBuffer(v) && !(v instanceof Date)) {
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [scrubText(k), walk(x)]));
  }
  return v;
}

/** JSON.stringify of the scrubbed value. */
export function scrubbedJson(value: unknown): string {
  return JSON.stringify(scrubValue(value));
}

/**
 * Scrub everything written to a stream (the CLI's stdout and stderr), whoever
 * writes it: console.log, progress lines, prompts, error printing.
 */
export function scrubStream(stream: NodeJS.WriteStream): void {
  const write = stream.write.bind(stream) as (...a: unknown[]) => boolean;
  stream.write = ((chunk: unknown, ...rest: unknown[]) => {
    if (typeof chunk === 'string') return write(scrubText(chunk), ...rest);
    if (chunk instanceof Uint8Array && known.size) {
      const s = Buffer.from(chunk).toString('utf8');
      const t = scrubText(s);
      if (t !== s) return write(t, ...rest.filter((r) => typeof r === 'function'));
    }
    return write(chunk, ...rest);
  }) as typeof stream.write;
}

/**
 * Secret masking. Every connection password (and every whole connection string) is registered
 * here as soon as the plan is loaded; everything pgshift prints, writes to a job summary or stores
 * in the journal passes through `redact`. The patterns below also catch credentials that were
 * never registered (a URL typed on a command line, a conninfo echoed in a server error).
 */
const registered = new Set<string>();
const listeners: Array<(secret: string) => void> = [];

export function registerSecret(secret: string | undefined | null): void {
  if (!secret || secret.length < 3 || registered.has(secret)) return;
  registered.add(secret);
  // A URL-encoded form may appear in a URL and a decoded form in a conninfo.
  try {
    const decoded = decodeURIComponent(secret);
    if (decoded !== secret) registered.add(decoded);
  } catch {
    /* not URL-encoded */
  }
  const encoded = encodeURIComponent(secret);
  if (encoded !== secret) registered.add(encoded);
  for (const listener of listeners) listener(secret);
}

/** Called for each secret registered from now on (the Actions entry forwards them to core.setSecret). */
export function onSecretRegistered(listener: (secret: string) => void): void {
  listeners.push(listener);
  for (const s of registered) listener(s);
}

const URL_CREDENTIALS = /\b(postgres(?:ql)?:\/\/[^:/@\s]*):([^@\s]*)@/gi;
// A quoted value may hold a quote as \' (libpq) or as '' (PgBouncer), and spaces.
const CONNINFO_PASSWORD = /\b(password\s*=\s*)('(?:[^'\\]|\\.|'')*'|[^\s]+)/gi;

export function redact(text: string): string {
  let out = text;
  // Longest first so that a secret containing another is masked whole.
  for (const secret of [...registered].sort((a, b) => b.length - a.length)) {
    out = out.split(secret).join('***');
  }
  return out.replace(URL_CREDENTIALS, '$1:***@').replace(CONNINFO_PASSWORD, '$1***');
}

/** Redact every string inside a JSON-able value (for --json output and journal details). */
export function redactDeep<T>(value: T): T {
  if (typeof value === 'string') return redact(value) as T;
  if (Array.isArray(value)) return value.map((v) => redactDeep(v)) as T;
  if (value && typeof value === 'object' && !(value instanceof Date)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = redactDeep(v);
    return out as T;
  }
  return value;
}

/** For tests: forget everything registered. */
export function resetSecretsForTests(): void {
  registered.clear();
}

/**
 * Extensions across majors. A newer server usually ships newer versions of the contrib
 * extensions (hstore 1.8 on 17 where 13 has 1.7) and still installs the older ones through its
 * update scripts; CREATE EXTENSION without a version takes the newest. pgshift installs the
 * source's version where the target offers it, else the nearest, and the schema tier then
 * compares versions by a rule the plan chooses: equal, or newer on the target where the plan
 * accepts it (extensions.acceptNewer).
 */

/** Compare two extension versions: numeric dotted parts numerically ('1.10' > '1.9'), the rest as text. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.-]/);
  const pb = b.split(/[.-]/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i];
    const y = pb[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    if (/^\d+$/.test(x) && /^\d+$/.test(y)) {
      const d = Number(x) - Number(y);
      if (d !== 0) return d < 0 ? -1 : 1;
    } else if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

export type VersionChoice =
  | { version: string; relation: 'same' }
  | { version: string; relation: 'newer' | 'older' }
  | { version: null; relation: 'unavailable' };

/**
 * The version to install on the target: the source's when the target offers it; else the
 * smallest newer one (the nearest upgrade); else the largest older one.
 */
export function chooseExtensionVersion(sourceVersion: string, available: readonly string[]): VersionChoice {
  if (available.includes(sourceVersion)) return { version: sourceVersion, relation: 'same' };
  const sorted = [...available].sort(compareVersions);
  const newer = sorted.find((v) => compareVersions(v, sourceVersion) > 0);
  if (newer) return { version: newer, relation: 'newer' };
  const older = sorted.filter((v) => compareVersions(v, sourceVersion) < 0).at(-1);
  if (older) return { version: older, relation: 'older' };
  return { version: null, relation: 'unavailable' };
}

/**
 * Extensions that are replication machinery on the source (DMS reads pglogical's replication sets),
 * not part of the application: never restored on the target, which usually cannot even load them.
 */
export const SOURCE_ONLY_EXTENSIONS = ['pglogical'];

/** extensions.acceptNewer: a list of names, or '*' for every extension. */
export type AcceptNewer = readonly string[] | '*';

export function acceptsNewer(accept: AcceptNewer, name: string): boolean {
  return accept === '*' || accept.includes(name);
}

/**
 * How the schema tier judges one extension present on both sides: undefined when it matches (the
 * same version, or a newer one on the target that the plan accepts), else the problem and its fix.
 */
export function extensionVersionProblem(name: string, source: string, target: string, accept: AcceptNewer): { problem: string; fix: string } | undefined {
  if (source === target) return undefined;
  const order = compareVersions(target, source);
  if (order > 0 && acceptsNewer(accept, name)) return undefined;
  if (order > 0) {
    return {
      problem: `version ${target} on the target, ${source} on the source`,
      fix: `read ${name}'s upgrade notes, then accept the newer version with extensions.acceptNewer: [${name}] in the plan (or '*' for every extension)`,
    };
  }
  return { problem: `version ${target} on the target is older than the source's ${source}`, fix: `ALTER EXTENSION ${name} UPDATE TO '${source}' on the target (when it offers that version)` };
}

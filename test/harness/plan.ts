import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parsePlan } from '../../src/config/load.js';
import type { Plan } from '../../src/config/schema.js';

/** A plan file for tests: URLs come through ${VAR} like a user's would. */
export function planYaml(extra = ''): string {
  return `version: 1
name: shop
source:
  url: \${SOURCE_URL}
target:
  url: \${TARGET_URL}
cutover:
  fence: roles
  roles: [shop_app]
${extra}`;
}

export function testPlan(sourceUrl: string, targetUrl: string, extra = ''): Plan {
  return parsePlan(planYaml(extra), 'migration.yml', { SOURCE_URL: sourceUrl, TARGET_URL: targetUrl });
}

export function writePlanFile(extra = ''): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgshift-plan-'));
  const file = path.join(dir, 'migration.yml');
  writeFileSync(file, planYaml(extra));
  return file;
}

/** The replication instance the DMS model (test/harness/fake-dms.ts) is created with. */
export const TEST_INSTANCE_ARN = 'arn:aws:dms:us-east-1:123456789012:rep:RI1';

/** A plan's cdc section for the DMS engine against the model: fast polls, thresholds out of the way. */
export function dmsCdcYaml(instanceArn: string, plugin: string): string {
  return `cdc:
  engine: dms
  dms:
    plugin: ${plugin}
    replicationInstanceArn: ${instanceArn}
    replicationInstanceIdentifier: pgshift-test-ri
    pollSeconds: 0
    readyTimeoutMinutes: 0.5
    thresholds: { warnLatencySeconds: 3600, failLatencySeconds: 7200 }`;
}

import { describe, expect, it } from 'vitest';
import { numberInput } from '../../src/core/errors.js';
import type { DmsStatus } from '../../src/phases/cdc-dms.js';
import { statusLag, statusProblems } from '../../src/phases/cdc.js';
import { cdcMarkdown } from '../../src/report/markdown.js';

/** The DMS status rendering and its summaries, from a hand-made status (no servers, no AWS). */
function status(tasks: number): DmsStatus {
  const at = (m: number) => `2026-11-25T10:0${m}:00.000Z`;
  return {
    engine: 'dms',
    healthy: false,
    tasks: Array.from({ length: tasks }, (_, i) => ({
      group: `g${i}`, stream: `g${i}`, role: 'task', identifier: `pgshift-m-g${i}`, arn: `arn:aws:dms:us-east-1:1:task:T${i}`, startLsn: '0/1', started: true,
      status: 'running', latencySourceSeconds: i, latencyTargetSeconds: 1, heartbeatLagSeconds: 0.5, incomingChanges: 3, tablesErrored: [],
      health: i === 0 ? 'failing' : 'ok', problems: i === 0 ? ['latency 700 s over 600 s'] : [],
    })),
    instance: { identifier: 'ri', cpuPercent: 95, freeableMemoryBytes: null, swapBytes: null, freeStorageBytes: 1e9, problems: ['replication instance CPU 95% over 90%'] },
    applyExceptions: [],
    slots: [{ slot: 'pgshift_m_g0', retainedBytes: 2048, active: true }, { slot: 'pgshift_m_g1', retainedBytes: null, active: false, problem: 'slot pgshift_m_g1 is missing on the source' }],
    latency: Array.from({ length: tasks }, (_, i) => ({ identifier: `pgshift-m-g${i}`, points: [1, 2, 3].map((m) => ({ at: at(m), seconds: m * (i + 1) })) })),
    ddl: [],
    ddlProblems: [],
  };
}

describe('DMS status rendering', () => {
  it('DDL recorded on the source is a problem of its own, listed with its statement', () => {
    const r = status(1);
    r.ddl = [{ id: 4, at: '2026-11-25 10:04:00+00', stream: null, command: 'ALTER TABLE', object: 'public.t', statement: 'ALTER TABLE t ADD c int', state: 'not carried', detail: 'the DMS tasks do not apply DDL' }];
    r.ddlProblems = ['DDL #4 on the source was not carried to the target'];
    expect(statusProblems(r)).toContainEqual({ where: 'DDL', problem: 'DDL #4 on the source was not carried to the target' });
    const md = cdcMarkdown(r);
    expect(md).toContain('- **DDL**: DDL #4 on the source was not carried to the target');
    expect(md).toMatch(/\| 4 \| 2026-11-25 10:04:00\+00 \| all \| ALTER TABLE \| public\.t \| \*\*not carried\*\* \| the DMS tasks do not apply DDL \|/);
  });

  it('one latency chart per task up to four, then one chart of the worst task per minute', () => {
    expect(cdcMarkdown(status(2)).match(/```mermaid/g)).toHaveLength(2);
    const many = cdcMarkdown(status(6));
    expect(many.match(/```mermaid/g)).toHaveLength(1);
    expect(many).toContain('title "CDC latency of the worst of 6 tasks (s, source + target)"');
    expect(many).toContain('line [6, 12, 18]');
  });

  it('problems name their task, instance or slot; lag is the worst of CloudWatch and the heartbeat', () => {
    const r = status(2);
    expect(statusProblems(r)).toEqual([
      { where: 'pgshift-m-g0', problem: 'latency 700 s over 600 s' },
      { where: 'ri', problem: 'replication instance CPU 95% over 90%' },
      { where: 'pgshift_m_g1', problem: 'slot pgshift_m_g1 is missing on the source' },
    ]);
    expect(statusLag(r)).toEqual({ bytes: 2048, seconds: 2 });
    expect(cdcMarkdown(r)).toContain('- **ri**: replication instance CPU 95% over 90%');
  });

  it('numeric inputs are refused with the input named (exit 2)', () => {
    expect(numberInput('15', '--watch', 1)).toBe(15);
    expect(() => numberInput('abc', '--watch', 1)).toThrow(/--watch must be a number of at least 1, not "abc"/);
    expect(() => numberInput('0', '--for', 1)).toThrow(expect.objectContaining({ exitCode: 2, code: 'input.for' }));
  });
});

import { inputError } from '../core/errors.js';
import type { Plan } from './schema.js';

/**
 * Settings that only one phase uses are required by that phase, not by loading the plan: a plan
 * with just `version`, `name`, `source` and `target` must be enough to assess, load, stream and
 * verify. The cut-over's fence is the case in point — its roles (or PgBouncer console) are needed
 * from `cutover` on, and a default fence must not block `assess`.
 *
 * Rules that hold for every phase (names unique, a paused-replica snapshot has its replica) stay
 * in the loader's cross-checks.
 */

/** What `cutover` and `rollback` need from cutover.*; refused (exit 2) before any connection is opened. */
export function requireCutoverSettings(plan: Plan, command: 'cutover' | 'rollback'): void {
  const settings = plan.cutover;
  const others = 'the other phases run without it';
  if (settings.fence === 'roles' && settings.roles.length === 0) {
    throw inputError(
      'plan.cutover.roles',
      `cutover.roles: pgshift ${command} fences writes by role (cutover.fence: roles) and the plan lists no application roles; ${others}`,
      'list the roles the application writes with (cutover: { roles: [app_rw] }) or choose cutover.fence: database',
    );
  }
  if (settings.fence === 'pgbouncer' && !settings.pgbouncer) {
    throw inputError(
      'plan.cutover.pgbouncer',
      `cutover.pgbouncer: pgshift ${command} fences writes at PgBouncer (cutover.fence: pgbouncer) and the plan names no admin console; ${others}`,
      'set cutover.pgbouncer.adminUrl and cutover.pgbouncer.database',
    );
  }
  if (settings.fence === 'pgbouncer' && settings.pgbouncer?.hardFence === 'roles' && settings.roles.length === 0) {
    throw inputError(
      'plan.cutover.roles',
      `cutover.roles: pgshift ${command} also fences direct connections by role (cutover.pgbouncer.hardFence: roles) and the plan lists no application roles; ${others}`,
      'list them (cutover: { roles: [app_rw] }) or set cutover.pgbouncer.hardFence: database',
    );
  }
}

/**
 * What the roles pgshift connects as must be allowed to do, from facts read off both servers.
 * One rule set for assess (which reports every finding) and for the phases that act (which refuse
 * with the first, exit 3, before anything is created).
 */
export interface RoleFacts {
  name: string;
  superuser: boolean;
  replication: boolean;
  rdsSuperuser: boolean;
  /** SUPERUSER or BYPASSRLS: no row-level security policy applies to what it reads. */
  bypassRowSecurity: boolean;
  /** Member of pg_create_subscription (PostgreSQL 16+). */
  createSubscription: boolean;
  /** CREATE on the connected database (schemas: pre-data, the control schema). */
  createOnDatabase: boolean;
}

export interface PrivilegeFinding {
  code: string;
  object: string;
  message: string;
  fix: string;
}

export function privilegeFindings(source: RoleFacts, target: RoleFacts, targetMajor: number, engine: 'native' | 'dms'): PrivilegeFinding[] {
  const out: PrivilegeFinding[] = [];
  if (!source.superuser && !source.replication && !source.rdsSuperuser) {
    out.push({
      code: 'source.privilege.replication',
      object: `source role ${source.name}`,
      message: 'cannot create replication slots (needs REPLICATION, superuser or rds_superuser)',
      fix: `ALTER ROLE ${source.name} REPLICATION (on RDS: GRANT rds_replication TO ${source.name})`,
    });
  }
  if (!target.superuser && !target.createOnDatabase) {
    out.push({
      code: 'target.privilege.create',
      object: `target role ${target.name}`,
      message: 'cannot create schemas in the target database (the schema restore and the control schema need CREATE)',
      fix: `GRANT CREATE ON DATABASE <target database> TO ${target.name}`,
    });
  }
  if (engine === 'native' && !(target.superuser || target.rdsSuperuser || (targetMajor >= 16 && target.createSubscription))) {
    out.push({
      code: 'target.privilege.subscription',
      object: `target role ${target.name}`,
      message: 'cannot create subscriptions on the target',
      fix: `connect as a superuser (RDS: rds_superuser)${targetMajor >= 16 ? ` or GRANT pg_create_subscription TO ${target.name}` : ''}`,
    });
  }
  return out;
}

/**
 * What a source server must be for logical decoding, as rules on settings already read. assess
 * reports them as findings; every phase that would create a slot refuses with the same words.
 */
export interface SettingProblem {
  code: string;
  message: string;
  fix: string;
}

/** wal_level (and on RDS, rds.logical_replication, which sets it): logical decoding needs logical. */
export function logicalDecodingProblem(settings: { wal_level?: string | null; 'rds.logical_replication'?: string | null }, isRds: boolean): SettingProblem | undefined {
  const rdsFlag = settings['rds.logical_replication'];
  if (isRds && rdsFlag != null && rdsFlag !== 'on') {
    return { code: 'source.rds_logical_replication', message: 'rds.logical_replication is off; logical decoding needs it on', fix: 'set rds.logical_replication = 1 in the parameter group and reboot the source' };
  }
  if (settings.wal_level !== 'logical') {
    return {
      code: 'source.wal_level',
      message: `wal_level is ${settings.wal_level ?? 'unknown'}; logical decoding needs wal_level = logical`,
      fix: 'set wal_level = logical (on RDS: rds.logical_replication = 1 in the parameter group) and restart the source',
    };
  }
  return undefined;
}

import { z } from 'zod';
import { parseSize } from './size.js';

/**
 * The migration plan (migration.yml). This schema is the single source of truth: the loader
 * validates against it, defaults come from it, and `npm run schema` turns it into the committed
 * JSON Schema (schema/migration.schema.json) that editors use.
 */

const size = z
  .union([z.string(), z.number()])
  .transform((v, ctx) => {
    const bytes = parseSize(v);
    if (bytes === undefined) {
      ctx.addIssue({ code: 'custom', message: `expected a size such as 512MB, 10GB or a number of bytes, got ${JSON.stringify(v)}` });
      return z.NEVER;
    }
    return bytes;
  })
  .meta({ description: 'A size: a number of bytes or a string such as "512MB" or "10GB".' });

export const sslModes = ['disable', 'require', 'verify-ca', 'verify-full'] as const;

const tls = z
  .strictObject({
    mode: z.enum(sslModes).describe('TLS mode. RDS wants verify-full with its CA bundle.'),
    ca: z.string().optional().describe('Path to a PEM CA bundle (for RDS: the region or global bundle).'),
  })
  .describe('TLS for this server; overrides sslmode/sslrootcert in the URL.');

const identifier = z
  .string()
  .regex(/^[a-z][a-z0-9_]{0,39}$/, 'use lower-case letters, digits and _ (at most 40 characters), starting with a letter');

const server = z.strictObject({
  url: z.string().describe('postgresql:// URL. Put the password in the environment: url: ${SOURCE_URL}.'),
  tls: tls.optional(),
});

const sourceServer = server.extend({
  replicaUrl: z.string().optional().describe('A physical replica to copy from in snapshot: paused-replica.'),
  subscriptionConninfo: z
    .string()
    .optional()
    .describe('How the target server reaches the source (native CDC), when it differs from url.'),
});

const dmsEndpoint = z.strictObject({
  serverName: z.string().optional().describe('Host name as the replication instance resolves it.'),
  port: z.number().int().optional(),
  sslMode: z.enum(['none', 'require', 'verify-ca', 'verify-full']).default('require'),
  secretsManagerSecretId: z.string().optional().describe('Credentials from Secrets Manager instead of the URL.'),
  secretsManagerAccessRoleArn: z.string().optional(),
});

const group = z.strictObject({
  name: identifier.describe('Group name; used in slot, publication and subscription names.'),
  tables: z.array(z.string()).min(1).describe('Tables as schema.table; * matches any run of characters.'),
  exclude: z.array(z.string()).default([]).describe('Tables left out of this group (same patterns).'),
});

export const fenceStrategies = ['roles', 'database', 'pgbouncer'] as const;

export const ddlModes = ['follow', 'detect', 'off'] as const;
export const unloggedModes = ['copy-at-cutover', 'make-logged', 'skip'] as const;
export type DdlMode = (typeof ddlModes)[number];

export const planSchema = z
  .strictObject({
    $schema: z.string().optional(),
    version: z.literal(1).describe('Plan file format version.'),
    name: identifier.describe('Migration name; prefixes every object pgshift creates.'),
    source: sourceServer,
    target: server,
    snapshot: z.enum(['exported', 'paused-replica']).default('exported'),
    groups: z
      .array(group)
      .min(1)
      .default([{ name: 'all', tables: ['*.*'], exclude: [] }])
      .describe('Table groups: each gets its own slot and CDC stream.'),
    fullLoad: z
      .strictObject({
        jobs: z.number().int().min(1).max(64).default(4).describe('Tables (or parts of split tables) copied at once.'),
        indexJobs: z.number().int().min(1).max(64).default(2).describe('Indexes built at once, beside the copies, as each table finishes.'),
        maintenanceWorkMem: z
          .string()
          .regex(/^\d+\s*(kB|MB|GB)$/)
          .default('512MB')
          .describe('maintenance_work_mem of the target sessions that build indexes (server memory, not pgshift\'s).'),
        splitTablesLargerThan: size.prefault('10GB'),
        maxPartsPerTable: z.number().int().min(1).max(256).default(16),
        copyFormat: z
          .enum(['auto', 'text'])
          .default('auto')
          .describe('auto: binary COPY for tables whose column types all allow it (built-in types, enums, citext, hstore, domains over those), text otherwise; text: always text.'),
        pgBinDir: z.string().optional().describe('Directory holding pg_dump and pg_restore (must be ≥ the source major).'),
        pausedReplica: z
          .strictObject({
            warnBytes: size.prefault('50GB').describe('Warn when this much WAL waits on the paused replica or is retained by the slots.'),
            stopBytes: size.prefault('200GB').describe('Stop the load (and resume replay) beyond this.'),
          })
          .prefault({})
          .describe('snapshot: paused-replica — limits while the replica is paused.'),
        ownership: z
          .enum(['keep', 'target-user'])
          .default('keep')
          .describe('keep: objects keep their owners and grants; target-user: everything belongs to the connecting user.'),
      })
      .prefault({}),
    roles: z
      .enum(['require', 'copy'])
      .default('require')
      .describe(
        "Roles the migrated objects need (owners, grantees incl. column grants, default-privilege and policy roles, user mappings, and the members of each) that the target lacks. require: assess lists them as a blocker and full-load refuses before anything is created; copy: full-load creates them before the schema with the attributes the target allows (SUPERUSER, REPLICATION and BYPASSRLS are dropped and named where the target's role may not give them), their memberships, ALTER ROLE/DATABASE … SET settings, and password hashes where the source's pg_authid is readable. Teardown leaves them: they own the migrated objects.",
      ),
    extensions: z
      .strictObject({
        acceptNewer: z
          .union([z.literal('*'), z.array(z.string())])
          .default([])
          .describe(
            "Extensions whose newer version on the target is accepted by verify's schema tier and the cut-over gate ('*': every extension). The full load installs the source's version where the target offers it; where it does not, the nearest newer one, which only this setting accepts. Without it a version difference is a schema difference.",
          ),
      })
      .prefault({})
      .describe('Extensions across majors.'),
    assess: z
      .strictObject({
        grouping: z.enum(['seed', 'balanced']).default('seed').describe('seed: the largest tables each in their own group, the rest in one; balanced: bin packing by size.'),
        largestOwnGroup: z.number().int().min(0).max(50).default(3).describe('seed rule: how many of the largest tables get their own group.'),
        balancedGroups: z.number().int().min(1).max(64).default(4).describe('balanced rule: number of groups.'),
        lobSampleRows: z.number().int().min(100).default(2000).describe('LOB sizing reads about this many rows of a larger table (TABLESAMPLE SYSTEM).'),
        lobExactBelow: size.prefault('1MB').describe('LOB sizing reads every row of tables estimated smaller than this (and of tables never analyzed).'),
        walSampleSeconds: z.number().min(0.5).max(120).default(3).describe('How long the WAL rate is sampled.'),
        longTransactionSeconds: z.number().min(1).default(60).describe('Transactions open longer than this are reported.'),
        copyRate: size.prefault('50MB').describe('Assumed full-load throughput per second, for the duration and WAL estimates.'),
      })
      .prefault({}),
    tables: z
      .record(
        z.string(),
        z.strictObject({
          lobMode: z.enum(['limited', 'unlimited']).optional().describe('DMS LOB mode for this table; unlimited never truncates.'),
          lobMaxSizeKb: z.number().int().min(1).optional().describe('DMS bulk-max-size for this table, in KB (3× the largest value).'),
          batchApply: z.boolean().optional().describe('Whether the table may go to a DMS task with batch apply.'),
        }),
      )
      .default({})
      .describe('Per-table settings, proposed by pgshift assess --write-plan; edits are kept.'),
    cdc: z
      .strictObject({
        engine: z.enum(['native', 'dms']).default('native'),
        heartbeatSeconds: z.number().min(1).max(3600).default(10).describe('How often the heartbeat row is updated.'),
        maxLagBytes: size.prefault('64MB').describe('cdc status fails above this lag.'),
        maxLagSeconds: z.number().min(0).default(300),
        minSafeWalFraction: z.number().min(0).max(1).default(0.5).describe('cdc status fails when a slot may fall less than this share of max_slot_wal_keep_size further behind.'),
        replicaIdentityFull: z
          .array(z.string())
          .default([])
          .describe('Tables (patterns) without a usable replica identity that pgshift may set to REPLICA IDENTITY FULL on the source before publishing them (native engine); without this consent such a table is refused, since publishing it would make its UPDATE and DELETE fail.'),
        ddl: z
          .enum(ddlModes)
          .optional()
          .describe(
            'Schema changes made on the source while CDC runs. follow (native default): replayed on the target in commit order with the rows around them; detect (dms default): recorded and shown by cdc status, refusing the cut-over until applied by hand; off: nothing installed, a change stops the stream. follow and detect install an event trigger on the source (superuser or rds_superuser).',
          ),
        ddlTrigger: z.boolean().optional().describe('Deprecated: true is cdc.ddl: detect, false is cdc.ddl: off.'),
        dms: z
          .strictObject({
            plugin: z.enum(['pglogical', 'test_decoding']).default('pglogical'),
            lobMaxSizeKb: z.number().int().min(1).default(32).describe('Task-level LimitedSizeLobMode LobMaxSize in KB.'),
            region: z.string().optional().describe('AWS region of the replication instance (default: the SDK chain).'),
            replicationInstanceArn: z.string().optional().describe('The provisioned replication instance (Serverless cannot start at an LSN).'),
            replicationInstanceIdentifier: z.string().optional().describe('Its name: the CloudWatch dimension of its metrics.'),
            targetEndpointArn: z.string().optional().describe('An existing target endpoint; without it pgshift creates one from target.url.'),
            sourceEndpoint: dmsEndpoint.prefault({}).describe('How DMS reaches the source (defaults: source.url).'),
            targetEndpoint: dmsEndpoint.prefault({}).describe('How DMS reaches the target (defaults: target.url).'),
            captureDdls: z.boolean().default(false).describe('DMS DDL capture artifacts on the source; off: freeze DDL instead.'),
            failOnLobTruncation: z.boolean().default(true).describe('FailTasksOnLobTruncation: a truncated LOB fails the task instead of a log line.'),
            heartbeatFrequencyMinutes: z.number().int().min(1).default(5),
            pollSeconds: z.number().min(0).default(15).describe('How often a task status is read while waiting.'),
            readyTimeoutMinutes: z.number().min(0.001).default(20),
            peekMaxChanges: z.number().int().min(1).default(1_000_000).describe('Bound of the start-LSN peek on each slot.'),
            thresholds: z
              .strictObject({
                warnLatencySeconds: z.number().min(0).default(60),
                failLatencySeconds: z.number().min(0).default(600),
                maxCpuPercent: z.number().min(0).max(100).default(90),
                minFreeStorageBytes: size.prefault('5GB'),
                minFreeableMemoryBytes: size.prefault('256MB'),
                maxSwapBytes: size.prefault('512MB'),
                maxRetainedWalBytes: size.prefault('100GB').describe('Retained WAL per slot on the source before status fails.'),
              })
              .prefault({}),
          })
          .prefault({})
          .describe('AWS DMS settings (engine: dms).'),
      })
      .prefault({}),
    unlogged: z
      .strictObject({
        mode: z
          .enum(unloggedModes)
          .optional()
          .describe(
            'What happens to UNLOGGED tables (their writes are not in the WAL, so nothing replicates them): copy-at-cutover copies them inside the cut-over window, writes fenced; make-logged runs ALTER TABLE … SET LOGGED on the source before the load (a rewrite under an exclusive lock), then they migrate like any table; skip leaves them empty on the target. Unset while unlogged tables exist: assess and full-load refuse, naming them.',
          ),
        skip: z.array(z.string()).default([]).describe('Unlogged tables (schema.table, * wildcards) left empty on the target knowingly, whatever the mode; with mode: skip every unlogged table must be listed.'),
      })
      .prefault({})
      .describe('UNLOGGED tables: never silently lost.'),
    verify: z
      .strictObject({
        chunkRows: z.number().int().min(100).default(100000).describe('Rows per chunk (boundaries come from the key).'),
        jobs: z.number().int().min(1).max(32).default(2).describe('Tables verified at once (each uses one session per side): the limit on source load.'),
        excludeTables: z.array(z.string()).default([]),
      })
      .prefault({}),
    cutover: z
      .strictObject({
        fence: z.enum(fenceStrategies).default('roles').describe('roles: listed roles read-only; database: the whole database read-only; pgbouncer: PAUSE at the pooler plus a hard fence for direct connections.'),
        roles: z.array(z.string()).default([]).describe('Application roles that write (fence: roles, and the hard fence of pgbouncer).'),
        pgbouncer: z
          .strictObject({
            adminUrl: z.string().describe('postgresql:// URL of the PgBouncer admin console (database pgbouncer).'),
            database: z.string().describe('The PgBouncer database name the application connects to.'),
            configFile: z.string().optional().describe('pgbouncer.ini to repoint at the target (then RELOAD); without it, repoint by other means.'),
            hardFence: z.enum(['roles', 'database']).default('roles').describe('Fence for connections that bypass the pooler.'),
          })
          .optional(),
        maxLagBytes: size.prefault('1MB').describe('The gate refuses above this lag.'),
        timeoutSeconds: z.number().min(1).max(3600).default(60).describe('Budget for the drain to the barrier.'),
        lockTimeoutSeconds: z.number().min(0.1).max(60).default(2).describe('How long one attempt of the window fence waits for a table lock; the application waits behind it that long at most.'),
        lockAttempts: z.number().int().min(1).max(20).default(5).describe('Attempts of the window fence before the cut-over gives up (nothing changed).'),
        guardSeconds: z.number().min(1).max(300).default(5).describe('If pgshift stops answering (machine or network lost), the source server ends the window fence after this long and the application writes again.'),
        sequenceSeconds: z.number().min(1).default(10).describe('Budget for carrying the sequences inside the window.'),
        unloggedSeconds: z.number().min(1).default(60).describe('Budget for copying the unlogged tables inside the window (unlogged.mode: copy-at-cutover).'),
        sequenceMargin: z.number().int().min(0).default(0).describe('Added to every sequence on the target.'),
        prebumpSequences: z.boolean().default(false).describe('Before the freeze, move target sequences ahead by the rate observed times the time budget.'),
        verifyMaxAgeMinutes: z.number().min(0).default(60).describe('The gate needs a verify that passed within this many minutes (0: not required).'),
        finalCheck: z.enum(['quick', 'none']).default('quick').describe('Inside the window: verify --mode quick (exact, writes fenced).'),
        finalCheckTables: z.array(z.string()).default([]).describe('Tables for the final check (empty: all).'),
        finalCheckSeconds: z.number().min(1).default(10).describe('Budget for the final check; over it the cut-over is undone.'),
        rollback: z.boolean().default(false).describe('Start reverse replication target → source at the switch, so pgshift rollback can move back.'),
        repoint: z
          .strictObject({
            ssmParameter: z.strictObject({ name: z.string(), region: z.string().optional() }).optional().describe('SSM parameter set to the target endpoint.'),
            secret: z.strictObject({ secretId: z.string(), region: z.string().optional() }).optional().describe('Secrets Manager secret whose host, port and dbname are set to the target.'),
            route53: z
              .strictObject({ hostedZoneId: z.string(), recordName: z.string(), ttl: z.number().int().min(0).default(30) })
              .optional()
              .describe('Route 53 CNAME pointed at the target host.'),
          })
          .default({}),
      })
      .prefault({}),
  })
  .describe('pgshift migration plan');

export type PlanInput = z.input<typeof planSchema>;
export type Plan = z.output<typeof planSchema>;
export type GroupPlan = Plan['groups'][number];
export type ServerPlan = Plan['target'];
export type TlsPlan = NonNullable<ServerPlan['tls']>;

/** What happens to DDL made on the source while CDC runs (cdc.ddl, or the deprecated cdc.ddlTrigger). */
export function ddlMode(plan: Plan): DdlMode {
  if (plan.cdc.ddl) return plan.cdc.ddl;
  if (plan.cdc.ddlTrigger !== undefined) return plan.cdc.ddlTrigger ? 'detect' : 'off';
  return plan.cdc.engine === 'dms' ? 'detect' : 'follow';
}

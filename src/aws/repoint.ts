import { ChangeResourceRecordSetsCommand, Route53Client } from '@aws-sdk/client-route-53';
import { GetSecretValueCommand, PutSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import type { Plan } from '../config/schema.js';
import type { ServerAddress } from '../config/url.js';
import { failure } from '../core/errors.js';

/**
 * Repointing the application at the target through AWS, as the plan chooses: an SSM parameter
 * holding the endpoint, a Secrets Manager secret in the RDS layout (host, port, dbname — its other
 * fields, the password among them, are kept), or a Route 53 CNAME. Credentials come from the SDK's
 * default chain (OIDC in Actions). Clients are created per call so tests can mock them.
 */
export interface RepointResult {
  kind: 'ssm' | 'secret' | 'route53';
  target: string;
}

type Repoint = Plan['cutover']['repoint'];

export function endpointText(a: Pick<ServerAddress, 'host' | 'port' | 'database'>): string {
  return `${a.host}:${a.port}/${a.database}`;
}

export async function repointAws(repoint: Repoint, to: Pick<ServerAddress, 'host' | 'port' | 'database'>): Promise<RepointResult[]> {
  const done: RepointResult[] = [];
  try {
    if (repoint.ssmParameter) {
      const ssm = new SSMClient({ region: repoint.ssmParameter.region });
      await ssm.send(new PutParameterCommand({ Name: repoint.ssmParameter.name, Value: endpointText(to), Type: 'String', Overwrite: true }));
      done.push({ kind: 'ssm', target: repoint.ssmParameter.name });
    }
    if (repoint.secret) {
      const sm = new SecretsManagerClient({ region: repoint.secret.region });
      const current = await sm.send(new GetSecretValueCommand({ SecretId: repoint.secret.secretId }));
      let value: Record<string, unknown> = {};
      try {
        value = JSON.parse(current.SecretString ?? '{}');
      } catch {
        throw failure('repoint.secret', `secret ${repoint.secret.secretId} is not JSON`, 'use the RDS secret layout: {"username", "password", "host", "port", "dbname"}');
      }
      const next = { ...value, host: to.host, port: to.port, dbname: to.database };
      await sm.send(new PutSecretValueCommand({ SecretId: repoint.secret.secretId, SecretString: JSON.stringify(next) }));
      done.push({ kind: 'secret', target: repoint.secret.secretId });
    }
    if (repoint.route53) {
      const r53 = new Route53Client({});
      await r53.send(
        new ChangeResourceRecordSetsCommand({
          HostedZoneId: repoint.route53.hostedZoneId,
          ChangeBatch: {
            Comment: 'pgshift cutover',
            Changes: [
              {
                Action: 'UPSERT',
                ResourceRecordSet: { Name: repoint.route53.recordName, Type: 'CNAME', TTL: repoint.route53.ttl, ResourceRecords: [{ Value: to.host }] },
              },
            ],
          },
        }),
      );
      done.push({ kind: 'route53', target: repoint.route53.recordName });
    }
  } catch (err) {
    const e = err as { name?: string; message?: string };
    if (e.name === 'PgshiftError') throw err;
    throw failure('repoint.aws', `repointing through AWS failed after ${done.map((d) => d.kind).join(', ') || 'nothing'}: ${e.name ?? 'error'}: ${e.message}`, e.name === 'AccessDeniedException' || e.name === 'AccessDenied' ? 'grant the role ssm:PutParameter / secretsmanager:PutSecretValue / route53:ChangeResourceRecordSets' : undefined, err);
  }
  return done;
}

import { ChangeResourceRecordSetsCommand, Route53Client } from '@aws-sdk/client-route-53';
import { GetSecretValueCommand, PutSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { repointAws } from '../../src/aws/repoint.js';

const ssm = mockClient(SSMClient);
const sm = mockClient(SecretsManagerClient);
const r53 = mockClient(Route53Client);
const to = { host: 'calls.abc123.us-east-1.rds.amazonaws.com', port: 5432, database: 'calls' };

afterEach(() => {
  ssm.reset();
  sm.reset();
  r53.reset();
});

describe('repointing through AWS at the switch', () => {
  it('sends exactly the documented requests', async () => {
    ssm.on(PutParameterCommand).resolves({ Version: 2 });
    sm.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify({ username: 'app', password: 'p@ss', host: 'old-host', port: 5432, dbname: 'calls', engine: 'postgres' }) });
    sm.on(PutSecretValueCommand).resolves({});
    r53.on(ChangeResourceRecordSetsCommand).resolves({ ChangeInfo: { Id: 'c1', Status: 'PENDING', SubmittedAt: new Date() } });
    const done = await repointAws(
      { ssmParameter: { name: '/calls/db/endpoint' }, secret: { secretId: 'calls/db' }, route53: { hostedZoneId: 'Z123', recordName: 'db.calls.internal', ttl: 30 } },
      to,
    );
    expect(done.map((d) => d.kind)).toEqual(['ssm', 'secret', 'route53']);
    expect(ssm.commandCalls(PutParameterCommand)[0].args[0].input).toEqual({ Name: '/calls/db/endpoint', Value: `${to.host}:5432/calls`, Type: 'String', Overwrite: true });
    const put = sm.commandCalls(PutSecretValueCommand)[0].args[0].input;
    expect(put.SecretId).toBe('calls/db');
    // The other fields of the secret, the password among them, are kept.
    expect(JSON.parse(put.SecretString!)).toEqual({ username: 'app', password: 'p@ss', host: to.host, port: 5432, dbname: 'calls', engine: 'postgres' });
    expect(r53.commandCalls(ChangeResourceRecordSetsCommand)[0].args[0].input).toEqual({
      HostedZoneId: 'Z123',
      ChangeBatch: {
        Comment: 'pgshift cutover',
        Changes: [{ Action: 'UPSERT', ResourceRecordSet: { Name: 'db.calls.internal', Type: 'CNAME', TTL: 30, ResourceRecords: [{ Value: to.host }] } }],
      },
    });
  });

  it('does nothing when the plan names no AWS target', async () => {
    expect(await repointAws({}, to)).toEqual([]);
    expect(ssm.calls()).toHaveLength(0);
  });

  it('names what failed and the permission to grant', async () => {
    const denied = Object.assign(new Error('User is not authorized to perform ssm:PutParameter'), { name: 'AccessDeniedException' });
    ssm.on(PutParameterCommand).rejects(denied);
    await expect(repointAws({ ssmParameter: { name: '/x' } }, to)).rejects.toMatchObject({
      code: 'repoint.aws',
      message: 'repointing through AWS failed after nothing: AccessDeniedException: User is not authorized to perform ssm:PutParameter',
      hint: expect.stringMatching(/ssm:PutParameter/),
    });
  });
});

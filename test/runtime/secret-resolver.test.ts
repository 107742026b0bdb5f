import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { AwsSecretsManagerResolver, FileSecretResolver, SecretResolutionError, StaticSecretResolver } from '../../lib/runtime/secret-resolver';

describe('StaticSecretResolver', () => {
  test('resolves from a map or a record, refuses unknown refs and malformed credentials', async () => {
    const r = new StaticSecretResolver({ a: { username: 'u', password: 'p' } });
    await expect(r.resolve('a')).resolves.toEqual({ username: 'u', password: 'p' });
    await expect(r.resolve('b')).rejects.toThrow('secret "b": not found');
    expect(() => new StaticSecretResolver(new Map([['x', { username: '', password: 'p' }]]))).toThrow(SecretResolutionError);
  });
});

describe('FileSecretResolver', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tenancy-secrets-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('reads the file on every resolve', async () => {
    const file = join(dir, 'secrets.json');
    writeFileSync(file, JSON.stringify({ 'local:app': { username: 'app', password: 'one' } }));
    const r = new FileSecretResolver(file);
    await expect(r.resolve('local:app')).resolves.toEqual({ username: 'app', password: 'one' });
    writeFileSync(file, JSON.stringify({ 'local:app': { username: 'app', password: 'two' } }));
    await expect(r.resolve('local:app')).resolves.toEqual({ username: 'app', password: 'two' });
    await expect(r.resolve('toString')).rejects.toThrow(/not found in/);
    writeFileSync(file, '[]');
    await expect(r.resolve('local:app')).rejects.toThrow(/is not a JSON object/);
    await expect(new FileSecretResolver(join(dir, 'missing.json')).resolve('x')).rejects.toThrow(/cannot read secrets file/);
  });
});

describe('AwsSecretsManagerResolver', () => {
  test('sends GetSecretValue for the ref and parses the RDS secret JSON', async () => {
    const sent: unknown[] = [];
    const client = {
      send: async (command: unknown) => {
        sent.push(command);
        return { SecretString: JSON.stringify({ engine: 'postgres', username: 'tenant_acme_app', password: 's3cret', host: 'ignored' }) };
      },
    };
    const r = new AwsSecretsManagerResolver({ client });
    const arn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:tenancy/tenants/acme/db-AbCdEf';
    await expect(r.resolve(arn)).resolves.toEqual({ username: 'tenant_acme_app', password: 's3cret' });
    expect(sent).toHaveLength(1);
    expect(sent[0]).toBeInstanceOf(GetSecretValueCommand);
    expect((sent[0] as GetSecretValueCommand).input).toEqual({ SecretId: arn });
  });

  test('errors name the secret and never include its value', async () => {
    const failing = new AwsSecretsManagerResolver({ client: { send: async () => Promise.reject(new Error('AccessDeniedException')) } });
    await expect(failing.resolve('arn:x')).rejects.toThrow('secret "arn:x": GetSecretValue failed: AccessDeniedException');
    const binary = new AwsSecretsManagerResolver({ client: { send: async () => ({}) } });
    await expect(binary.resolve('arn:y')).rejects.toThrow(/has no SecretString/);
    const notJson = new AwsSecretsManagerResolver({ client: { send: async () => ({ SecretString: 'hunter2' }) } });
    const error = await notJson.resolve('arn:z').catch((e) => e);
    expect(error.message).toBe('secret "arn:z": is not JSON with username and password');
    expect(error.message).not.toContain('hunter2');
  });
});

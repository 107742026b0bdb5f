import { randomBytes } from 'node:crypto';
import type { ClientConfig } from 'pg';
import { guardedClient } from '../db/lost-connections';
import { scramSha256Verifier } from '../db/scram';
import { quoteIdent, quoteLiteral } from '../db/sql';
import { parseDeployOutputs } from '../hooks/deploy-outputs';
import { platformNames } from '../naming';

/**
 * A local AWS API creates no databases: after a deploy against moto, one local PostgreSQL server
 * stands in for every RDS instance and Aurora cluster the outputs name. This creates, on that
 * server, each database and its master user as RDS would (a non-superuser with CREATEROLE and
 * CREATEDB owning the database), with the password of the master secret in the local Secrets
 * Manager. Several clusters share a master user name (tenancy_admin) but not a password: the first
 * secret seen sets the role's password and the others are updated to it (PutSecretValue; the master
 * secrets are RDS-managed, so Terraform does not track their value). Then run `tenancy post-apply`
 * with `--database-host-map` pointing the outputs' hosts at this server.
 *
 * Also creates the secret a platform team provides before the first pool tenant (the pool
 * application role's credentials, `<platform>/pool/app-credentials`) when missing.
 */

export interface LocalDatabasesOptions {
  /** AWS_ENDPOINT_URL of the local API. */
  readonly endpoint: string;
  readonly region: string;
  /** A superuser connection to the local server (e.g. over its Unix socket). */
  readonly admin: ClientConfig;
  /** The outputs of the deployed stacks (`{ "<stack>": { … } }`, merged). */
  readonly outputs: Record<string, unknown>;
}

export interface LocalDatabase {
  readonly database: string;
  readonly masterUser: string;
  readonly secretRef: string;
}

type Secrets = {
  get(id: string, inRegion?: string): Promise<string | undefined>;
  put(id: string, value: string): Promise<void>;
  create(name: string, value: string, inRegion?: string): Promise<void>;
};

/** Secrets Manager of the local API; an ARN is read in its own region, a name in `region`. */
async function localSecrets(endpoint: string, region: string): Promise<Secrets> {
  const sdk = await import('@aws-sdk/client-secrets-manager');
  const clients = new Map<string, InstanceType<typeof sdk.SecretsManagerClient>>();
  const client = (id: string, inRegion = region) => {
    const r = /^arn:aws[a-z-]*:secretsmanager:([a-z0-9-]+):/.exec(id)?.[1] ?? inRegion;
    if (!clients.has(r)) clients.set(r, new sdk.SecretsManagerClient({ endpoint, region: r, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } }));
    return clients.get(r)!;
  };
  return {
    async get(id, inRegion) {
      try {
        return (await client(id, inRegion).send(new sdk.GetSecretValueCommand({ SecretId: id }))).SecretString;
      } catch (e) {
        if ((e as { name?: string }).name === 'ResourceNotFoundException') return undefined;
        throw e;
      }
    },
    async put(id, value) {
      await client(id).send(new sdk.PutSecretValueCommand({ SecretId: id, SecretString: value }));
    },
    async create(name, value, inRegion) {
      await client(name, inRegion).send(new sdk.CreateSecretCommand({ Name: name, SecretString: value }));
    },
  };
}

/** Creates the databases and master users the outputs name on the local server (idempotent). */
export async function prepareLocalDatabases(options: LocalDatabasesOptions): Promise<LocalDatabase[]> {
  const outputs = parseDeployOutputs(options.outputs, '<deploy outputs>');
  const wanted: LocalDatabase[] = [];
  for (const p of outputs.platforms.values()) {
    for (const c of [p.bridge, p.pool, p.controlPlane]) if (c) wanted.push({ database: c.database, masterUser: '', secretRef: c.masterSecretArn });
  }
  for (const t of outputs.tenants) if (t.model === 'silo') wanted.push({ database: t.db_name, masterUser: '', secretRef: t.db_master_secret_arn });

  const secrets = await localSecrets(options.endpoint, options.region);
  const admin = guardedClient(options.admin);
  await admin.connect();
  const passwords = new Map<string, string>();
  const done: LocalDatabase[] = [];
  try {
    for (const w of wanted) {
      const raw = await secrets.get(w.secretRef);
      if (!raw) throw new Error(`master secret ${w.secretRef} of database ${w.database} is not in the local Secrets Manager`);
      const value = JSON.parse(raw) as { username?: string; password?: string };
      if (!value.username || !value.password) throw new Error(`master secret ${w.secretRef} has no username/password`);
      const known = passwords.get(value.username);
      if (known === undefined) {
        passwords.set(value.username, value.password);
        const exists = (await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [value.username])).rowCount! > 0;
        await admin.query(`${exists ? 'ALTER' : 'CREATE'} ROLE ${quoteIdent(value.username)} WITH LOGIN CREATEROLE CREATEDB NOSUPERUSER PASSWORD ${quoteLiteral(scramSha256Verifier(value.password))}`);
      } else if (known !== value.password) {
        await secrets.put(w.secretRef, JSON.stringify({ ...value, password: known }));
      }
      const db = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [w.database]);
      if (db.rowCount === 0) await admin.query(`CREATE DATABASE ${quoteIdent(w.database)} OWNER ${quoteIdent(value.username)}`);
      done.push({ ...w, masterUser: value.username });
    }
    // The pool application role's secret, which the platform team creates before the first pool tenant.
    for (const t of outputs.tenants) {
      if (t.model !== 'pool') continue;
      const platformName = /^(.+)-pool$/.exec(t.cluster_identifier)?.[1];
      if (!platformName) continue;
      const name = platformNames(platformName).poolAppSecretName;
      if ((await secrets.get(name, t.region)) === undefined) await secrets.create(name, JSON.stringify({ username: t.app_role, password: randomBytes(24).toString('hex') }), t.region);
    }
  } finally {
    await admin.end();
  }
  return done;
}

/**
 * Creates a secret holding `{ username, password }` in the local Secrets Manager (e.g. the master
 * secret of a database the test provides itself instead of deploying a platform stack); resolves to its ARN.
 */
export async function createLocalSecret(endpoint: string, region: string, name: string, value: { username: string; password: string }): Promise<string> {
  const sdk = await import('@aws-sdk/client-secrets-manager');
  const client = new sdk.SecretsManagerClient({ endpoint, region, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
  const created = await client.send(new sdk.CreateSecretCommand({ Name: name, SecretString: JSON.stringify(value) }));
  return created.ARN!;
}

/**
 * Stand-in outputs of a region's platform stack when it is not deployed (it takes minutes on a
 * local AWS API): its three clusters by the private DNS names the stack gives them
 * (`<cluster>.db.<platform>.internal`, port 5432; map them with `--database-host-map
 * '*.db.<platform>.internal=…'`), each with a master secret created in the local Secrets Manager.
 */
export async function standInPlatformOutputs(endpoint: string, region: string, platformName = 'tenancy'): Promise<Record<string, unknown>> {
  const names = platformNames(platformName);
  const clusters = [
    { key: 'bridge', identifier: names.bridgeCluster, host: names.bridgeHost, database: names.bridgeDatabase, user: 'bridge_admin' },
    { key: 'pool', identifier: names.poolCluster, host: names.poolHost, database: names.poolDatabase, user: 'pool_admin' },
    { key: 'control_plane', identifier: names.controlPlaneCluster, host: names.controlPlaneHost, database: names.controlPlaneDatabase, user: 'control_plane_admin' },
  ];
  const outputs: Record<string, unknown> = {};
  for (const c of clusters) {
    const arn = await createLocalSecret(endpoint, region, `rds!cluster-${c.identifier}`, { username: c.user, password: randomBytes(18).toString('hex') });
    Object.assign(outputs, {
      [`${c.key}_cluster_identifier`]: c.identifier,
      [`${c.key}_endpoint`]: c.host,
      [`${c.key}_port`]: 5432,
      [`${c.key}_database`]: c.database,
      [`${c.key}_master_secret_arn`]: arn,
    });
  }
  return outputs;
}

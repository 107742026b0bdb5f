// `npm run schema`: regenerates the JSON Schemas editors use to validate the YAML files.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { PlatformSchema } from '../lib/registry/platform-schema';
import { tenantJsonSchema } from '../lib/registry/tenant-schema';

export const schemaFiles = (root: string): [string, unknown][] => [
  [join(root, 'tenants', 'tenant.schema.json'), tenantJsonSchema()],
  [join(root, 'platform.schema.json'), { ...z.toJSONSchema(PlatformSchema, { io: 'input' }), title: 'Platform' }],
];

if (require.main === module) {
  for (const [file, schema] of schemaFiles(process.cwd())) {
    writeFileSync(file, `${JSON.stringify(schema, null, 2)}\n`);
    console.log(`wrote ${file}`);
  }
}
